"""``streamseg quality`` while RFM abstains: the reference abstains like the engine.

RFM abstains unless the purchases seen span ``rfm_warmup_days`` (90) AND there are
``rfm_min_samples`` (20) buyers; the batch reference checks both from the events. The
span runs from the ``rfm_min_samples``-th earliest first purchase of a customer to the
newest purchase (one stray old order does not make it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamseg import codec
from streamseg.__main__ import main
from streamseg.config import DAY, Settings
from streamseg.engine.events import format_ts
from streamseg.tools.quality import measure
from streamseg.tools.qualityrun import no_hysteresis, run_engine
from streamseg.tools.reference import events_frame, reference, rfm_warmup

BASE = 1767225600.0  # 2026-01-01
SETTINGS = no_hysteresis(Settings(allowed_lateness_s=0.0))
RFM_ROWS = ("rfm", "rfm_r", "rfm_f", "rfm_m")


def buyers(n: int, span_days: int = 100) -> list[bytes]:
    """``n`` buyers, customer i buys on day i / 5 and on day ``span_days`` - i, for
    10 * (i + 1) each time; one visitor clicks on the last day."""
    out = []
    for i in range(n):
        for k, day in enumerate((i / 5, span_days - i)):
            out.append(codec.dumps({
                "event_id": f"p{i}-{k}", "customer_id": f"c{i:02d}", "type": "purchase",
                "ts": format_ts(BASE + day * DAY), "order_id": f"o{i}-{k}",
                "amount": 10.0 * (i + 1), "currency": "EUR"}))
    out.append(codec.dumps({"event_id": "v", "customer_id": "visitor", "type": "page_view",
                            "ts": format_ts(BASE + span_days * DAY)}))
    return out


def quality(lines: list[bytes]) -> dict[str, Any]:
    return measure(run_engine(lines, SETTINGS), SETTINGS)


def test_reference_abstains_below_the_buyer_count_and_the_span() -> None:
    ev = events_frame([(f"c{i}", "purchase", 0.0, 1.0) for i in range(20)]
                      + [("c0", "purchase", 19 * DAY, 1.0)])
    # purchases span 19 days: warm with warm-up 19 days and 20 buyers, not with 21 buyers
    assert reference(ev, Settings(), 30 * DAY, warmup_days=19)["rfm"].notna().all()
    assert reference(ev, Settings(), 30 * DAY, warmup_days=19, min_samples=21)["rfm"].isna().all()
    assert reference(ev, Settings(), 30 * DAY, warmup_days=19.5)["rfm"].isna().all()
    assert reference(ev, Settings(rfm_warmup_days=19.0, rfm_min_samples=21), 30 * DAY)[
        ["rfm", "r", "f", "m"]].isna().all().all()
    got = rfm_warmup(ev, Settings(rfm_warmup_days=19.0))
    assert (got["buyers"], got["min_samples"], got["warm"], got["reason"]) == (20, 20, True, None)
    # 20 buyers of one day and a 21st whose only order is 100 days older: not warm
    old = events_frame([(f"c{i}", "purchase", 0.0, 1.0) for i in range(20)]
                       + [("old", "purchase", -100 * DAY, 1.0)])
    assert not rfm_warmup(old, Settings(rfm_warmup_days=19.0))["warm"]


def test_fewer_buyers_than_min_samples_both_abstain_and_agree() -> None:
    q = quality(buyers(12))
    assert q["rfm_warmup"] == {"buyers": 12, "min_samples": 20, "span_days": 97.8,
                               "warmup_days": 90.0, "warm": False,
                               "reason": "12 buyers < 20 (STREAMSEG_RFM_MIN_SAMPLES)"}
    for name in RFM_ROWS:
        a = q["agreement"][name]
        assert (a["compared"], a["agree"], a["pct"]) == (13, 13, 100.0), name
        assert a["confusion"] == {"(none)": {"(none)": 13}}
        assert a["abstained"] == "12 buyers < 20 (STREAMSEG_RFM_MIN_SAMPLES)"
    assert q["agreement"]["rfm"]["verdict_pct"] == 100.0
    assert "abstained" not in q["agreement"]["frequency"]


def test_enough_buyers_compare_labels_as_before() -> None:
    q = quality(buyers(20))
    assert q["rfm_warmup"]["warm"] and q["rfm_warmup"]["reason"] is None
    for name in RFM_ROWS:
        a = q["agreement"][name]
        assert "abstained" not in a
        # only buyers are compared (the visitor has no label on either side), and agree
        assert (a["compared"], a["agree"], a["pct"]) == (20, 20, 100.0), name
    confusion = q["agreement"]["rfm"]["confusion"]
    assert "(none)" not in confusion and len(confusion) >= 4  # real, varied labels
    assert all(set(row) == {ref} for ref, row in confusion.items())


def test_the_text_report_says_rfm_abstains(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "events.jsonl"
    src.write_bytes(b"\n".join(buyers(12, span_days=30)) + b"\n")
    assert main(["quality", str(src), "--no-hysteresis"]) == 0
    text = capsys.readouterr().out
    assert "rfm        13         13     100.0 (both abstain)  100.0 (both abstain)" in text
    assert ("RFM abstains: purchases span 27.8 d < 90 d (STREAMSEG_RFM_WARMUP_DAYS); "
            "12 buyers < 20 (STREAMSEG_RFM_MIN_SAMPLES).") in text
    assert main(["quality", str(src), "--json"]) == 0
    q = json.loads(capsys.readouterr().out)
    assert q["agreement"]["rfm"]["pct"] == 100.0 and not q["rfm_warmup"]["warm"]



def withdrawn_on(day: float) -> list[bytes]:
    """20 buyers (warm from day 94: 90 days after c19's first purchase, the 20th);
    c19 withdraws on ``day``."""
    lines = buyers(20)
    lines.append(codec.dumps({"event_id": "w", "customer_id": "c19", "type": "consent_withdrawn",
                              "ts": format_ts(BASE + day * DAY)}))
    return sorted(lines, key=lambda raw: codec.loads(raw)["ts"])


def test_a_consent_withdrawal_is_not_a_segment_change() -> None:
    """The suppression notice a withdrawal publishes is not a move (it used to crash the
    report: a notice has no ``segmenter``); the withdrawn buyer leaves both populations:
    19 buyers before the warm-up ends, so RFM never warms up."""
    run = run_engine(withdrawn_on(50), SETTINGS)
    assert all("segmenter" in c for c in run.changes)
    q = measure(run, SETTINGS)
    assert q["excluded_no_consent"] == 1 and q["rfm_warmup"]["buyers"] == 19
    assert q["agreement"]["rfm"]["pct"] == 100.0 and q["agreement"]["rfm"]["abstained"]


def test_once_warm_rfm_stays_warm_after_a_withdrawal() -> None:
    """19 buyers at the end, but 20 when the warm-up ended: both sides keep scoring."""
    q = quality(withdrawn_on(96))
    assert (q["rfm_warmup"]["buyers"], q["rfm_warmup"]["warm"]) == (19, True)
    for name in RFM_ROWS:
        a = q["agreement"][name]
        assert "abstained" not in a and (a["compared"], a["pct"]) == (19, 100.0), name
