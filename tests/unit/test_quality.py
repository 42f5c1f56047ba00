"""``streamseg quality``: the batch reference (exact, by hand) and the engine-side figures."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from streamseg import codec
from streamseg.__main__ import main
from streamseg.config import DAY, Settings
from streamseg.engine.events import format_ts
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine
from streamseg.tools.quality import _changes, agreement, engine_labels, measure
from streamseg.tools.qualityrun import EngineRun, no_hysteresis, run_engine, verdict
from streamseg.tools.reference import events_frame, reference

NOW = 400 * DAY
# customer -> purchase days (the clock is day 400); defaults: high <= 7, medium <= 28,
# lapsed > 180, new <= 30, at_risk > 90, reactivated <= 30 days
BUYERS = {
    "hi": [390, 393, 396],  # gap 3, tenure 10 / 3 -> high; first 10 days ago -> new
    "edge7": [386, 393],  # gap 7, tenure 14 / 2 = 7 -> high (<=); first 14 days ago -> new
    "med": [300, 320, 340, 360, 380],  # gap 20, tenure 100 / 5 = 20 -> medium; active
    # every 6 days, none for 16 days: tenure 70 / 10 = 7 -> still high; active
    "skip": [330 + 6 * i for i in range(10)],
    "stops": [300, 306, 312, 318, 324],  # gap 6, tenure 100 / 5 = 20 -> medium; active
    "low": [200, 300],  # gap 100 -> low; 100 days since > 90 -> at_risk
    "one": [350],  # one purchase -> one_time; 50 days ago -> active
    "lapsed": [219],  # 181 days -> lapsed (both), before one_time
    "b180": [220],  # exactly 180 days: not lapsed (strict) -> one_time; at_risk
    "react": [100, 250, 380],  # latest purchase after a > 90-day gap: 20 days ago -> reactivated
    "react_old": [200, 320, 330, 395],  # that purchase was 80 days ago -> active; gap 65 -> low
}
VISITORS = {"vis": 350, "vis_old": 300}  # idle 50 -> prospect; idle 100 -> inactive_prospect


def frame() -> pd.DataFrame:
    rows = [(c, "purchase", d * DAY, 10.0) for c, days in BUYERS.items() for d in days]
    rows += [(c, "page_view", d * DAY, 0.0) for c, d in VISITORS.items()]
    rows.append(("one", "page_view", 399 * DAY, 0.0))  # clicks do not move buyers
    return events_frame(rows)


def test_frequency_and_lifecycle_follow_the_definitions() -> None:
    ref = reference(frame(), Settings(), NOW)
    assert ref["frequency"].to_dict() == {
        "b180": "one_time", "edge7": "high", "hi": "high", "lapsed": "lapsed", "low": "low",
        "med": "medium", "one": "one_time", "react": "low", "react_old": "low",
        "skip": "high", "stops": "medium", "vis": "prospect", "vis_old": "prospect",
    }
    assert ref["lifecycle"].to_dict() == {
        "b180": "at_risk", "edge7": "new", "hi": "new", "lapsed": "lapsed", "low": "at_risk",
        "med": "active", "one": "active", "react": "reactivated", "react_old": "active",
        "skip": "active", "stops": "active", "vis": "prospect", "vis_old": "inactive_prospect",
    }


def engine_frequency(buys: list[tuple[str, float]], settings: Settings,
                     now: float) -> dict[str, str | None]:
    """Replay purchases ``(customer, time)`` in time order; each customer's raw frequency
    verdict at ``now``."""
    rows = [line(type="purchase", event_id=f"{c}{i}", customer_id=c, order_id=f"{c}{i}",
                 amount=5.0, currency="USD", ts=format_ts(t))
            for i, (c, t) in enumerate(sorted(buys, key=lambda b: b[1]))]
    run = run_engine(rows, settings)
    seg = run.engine.segmenter("frequency")
    assert seg is not None
    return {c: None if (v := seg.assign(st, now)) is None else v.segment
            for c, st in run.states.items()}


def test_frequency_counts_buying_days_in_the_reference_and_the_engine() -> None:
    """Orders on one UTC day are one buying day, in pandas and in the segmenter alike."""
    days = {"burst": [380, 380.1, 380.2, 385], "same_day": [390, 390.2], "apart": [390, 391]}
    ev = events_frame([(c, "purchase", d * DAY, 10.0) for c, ds in days.items() for d in ds])
    ref = reference(ev, Settings(), NOW)
    # burst: 2 buying days, gap 5, tenure 20 / 2 = 10 -> medium (4 orders: 20 / 4 = 5, high)
    assert ref["frequency"].to_dict() == {
        "apart": "high", "burst": "medium", "same_day": "one_time"}
    buys = [(c, d * DAY) for c, ds in days.items() for d in ds]
    assert engine_frequency(buys, Settings(hysteresis=False), NOW) == ref["frequency"].to_dict()


def test_high_from_a_number_of_buying_days_in_the_reference_and_the_engine() -> None:
    """``STREAMSEG_FREQ_HIGH_MIN_DAYS=3``: one gap between two buying days is no pace yet
    (``medium``, not ``high``, and the clock has no ``high`` to take back later), in pandas
    and in the segmenter alike; 2 (the default) gives ``high`` at the second buying day."""
    days = {"two": [392, 393], "three": [391, 392, 393], "slow_two": [380, 390]}
    ev = events_frame([(c, "purchase", d * DAY, 10.0) for c, ds in days.items() for d in ds])
    buys = [(c, d * DAY) for c, ds in days.items() for d in ds]
    for least, two in ((2, "high"), (3, "medium")):
        settings = Settings(hysteresis=False, freq_high_min_days=least)
        ref = reference(ev, settings, NOW)["frequency"].to_dict()
        assert ref == {"two": two, "three": "high", "slow_two": "medium"}
        assert engine_frequency(buys, settings, NOW) == ref


@pytest.mark.parametrize(("start_h", "expected"), [(0.0, "high"), (9.0, "one_time")])
def test_the_reference_and_the_engine_share_the_buying_day_start(start_h: float,
                                                                 expected: str) -> None:
    """Baskets at 23:30 and 00:30 UTC: two buying days from midnight (gap 1 h: ``high``),
    one from 09:00 UTC (``one_time``), in pandas and in the segmenter alike."""
    times = [20 * DAY - 1800.0, 20 * DAY + 1800.0]
    settings = Settings(hysteresis=False, buying_day_start_h=start_h)
    ref = reference(events_frame([("c", "purchase", t, 5.0) for t in times]), settings,
                    21 * DAY)
    got = engine_frequency([("c", t) for t in times], settings, 21 * DAY)
    assert (got["c"], ref.loc["c", "frequency"]) == (expected, expected)


def test_a_purchase_inside_the_allowed_lateness_counts_as_zero_days_ago() -> None:
    ev = events_frame([("a", "purchase", 0.0, 1.0), ("a", "purchase", 10 * DAY, 1.0)])
    ref = reference(ev, Settings(), now=10 * DAY - 3600)
    assert ref.loc["a", "frequency"] == "medium"  # gap 10, since max(0, -1 h) = 0


def rfm_frame() -> pd.DataFrame:
    last_day = [1, 1, 1, 2, 3, 4, 5, 6, 7, 7]
    amount = [10, 10, 20, 30, 30, 30, 40, 50, 60, 70]
    return events_frame((f"c{i}", "purchase", d * DAY, float(a))
                        for i, (d, a) in enumerate(zip(last_day, amount, strict=True)))


def test_rfm_scores_ties_share_the_lowest_score() -> None:
    # (the span counts from the min_samples-th earliest first purchase: 1 -> days 1..7)
    ref = reference(rfm_frame(), Settings(), 8 * DAY, warmup_days=5, min_samples=1)
    # score = 1 + floor(5 * below / 10), below = customers with a strictly worse value
    assert ref["r"].tolist() == [1, 1, 1, 2, 3, 3, 4, 4, 5, 5]
    assert ref["f"].tolist() == [1] * 10  # everybody bought once: all tied at the bottom
    assert ref["m"].tolist() == [1, 1, 2, 2, 2, 2, 4, 4, 5, 5]
    assert ref["rfm"].tolist() == ["lost"] * 3 + ["hibernating"] + ["about_to_sleep"] * 2 + [
        "potential_loyalist"] * 4


def test_rfm_abstains_until_the_purchases_span_the_warmup() -> None:
    ref = reference(rfm_frame(), Settings(), 8 * DAY)  # 6 days of purchases < 90
    assert ref["rfm"].isna().all() and ref["r"].isna().all()


def test_agreement_and_confusion_matrix() -> None:
    ref = pd.Series({"a": "x", "b": "y", "c": "y", "d": None, "e": None})
    pub = pd.Series({"a": "x", "b": "x", "c": "y", "d": "z", "e": None})
    assert agreement(ref, pub) == {
        "compared": 4, "agree": 2, "pct": 50.0,
        "confusion": {"(none)": {"z": 1}, "x": {"x": 1}, "y": {"x": 1, "y": 1}},
    }


def test_verdict_fallback_separates_held_from_stale() -> None:
    eng = Engine(Settings())
    old = SimpleNamespace(segmenter=eng.segmenter, settings=eng.settings)  # no .verdict
    state = CustomerState.new("c", 0.0)
    state.purchases, state.first_purchase, state.last_purchase = 1, 0.0, 0.0
    state.segments["frequency"] = ["high", 0.0, 1, None]
    assert verdict(old, state, "frequency", 200 * DAY) == ("lapsed", False)  # type: ignore[arg-type]
    state.pending["frequency"] = ["lapsed", 190 * DAY]  # a dwell is running for it
    assert verdict(old, state, "frequency", 200 * DAY) == ("lapsed", True)  # type: ignore[arg-type]


def change(cid: str, seg: str, frm: str | None, to: str, day: float,
           version: int | None = None) -> dict[str, Any]:
    return {"customer_id": cid, "segmenter": seg, "from_segment": frm, "to_segment": to,
            "event_time": format_ts(day * DAY), "model_version": version, "trigger": "clock"}


def test_flaps_changes_per_customer_and_untrained_labels() -> None:
    states = {c: CustomerState.new(c, 0.0) for c in ("a", "b")}
    states["a"].segments = {"rfm": ["lost", 0.0, 2, None], "cluster": ["1", 0.0, 1, 4]}
    states["b"].segments = {"rfm": ["new", 0.0, 1, 0]}
    run = EngineRun(Engine(Settings()), changes=[
        change("a", "rfm", None, "new", 1, None),
        change("a", "rfm", "new", "lost", 2, None),
        change("a", "rfm", "lost", "new", 10, 5),  # reverted within 14 days: a flap
        change("b", "rfm", None, "new", 1, 0),
        change("a", "cluster", None, "1", 1, 4),
        change("b", "frequency", None, "low", 1),
        change("b", "frequency", "low", "high", 3),
        change("b", "frequency", "high", "low", 30),  # 27 days later: not a flap
    ], states=states)
    got = _changes(run, Settings())
    # ... but reverted within twice the window (a hold that ends with the window can move a
    # revert to just after it: the report shows both)
    assert got["flaps"] == {
        "frequency": {"changes": 2, "reverted": 0, "rate": 0.0, "reverted_2w": 1, "rate_2w": 0.5},
        "rfm": {"changes": 2, "reverted": 1, "rate": 0.5, "reverted_2w": 1, "rate_2w": 0.5}}
    assert got["changes_per_customer"] == {"cluster": 0.0, "frequency": 1.0, "rfm": 1.0}
    assert got["untrained"] == {"rfm": {"changes": 3, "current": 2},
                                "cluster": {"changes": 0, "current": 0}}


def line(**fields: Any) -> bytes:
    return codec.dumps(fields)


BASE = 1767225600.0  # 2026-01-01


def lines() -> list[bytes]:
    """c1 buys, goes quiet for 200 days (c2's clicks move the clock), buys again."""
    def at(day: float) -> str:
        return format_ts(BASE + day * DAY)

    out = [line(event_id="p1", customer_id="c1", ts=at(0), order_id="o1", amount=20.0,
                currency="EUR")]
    out += [line(event_id=f"v{d}", customer_id="c2", type="page_view", ts=at(d))
            for d in range(5, 201, 5)]
    out.append(line(event_id="p2", customer_id="c1", ts=at(201), order_id="o2", amount=30.0,
                    currency="EUR"))
    out.append(b'{"event_id": "bad"')
    return out


def test_a_purchase_earned_move_is_published_at_the_purchase_without_hysteresis() -> None:
    settings = no_hysteresis(Settings(allowed_lateness_s=0.0))
    run = run_engine(lines(), settings)
    assert (run.lines, run.dead_letters, run.now) == (43, 1, BASE + 201 * DAY)
    assert run.latencies["lifecycle"] == [0.0]  # lapsed -> reactivated at p2
    q = measure(run, settings)
    assert q["customers"] == 2 and q["latency_s"]["lifecycle"]["max"] == 0.0
    assert q["stale"]["lifecycle"] == {"labels": 2, "stale": 0, "held": 0}


def test_cli_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "events.jsonl"
    src.write_bytes(b"\n".join(lines()) + b"\n")
    assert main(["quality", str(src), "--json", "--no-hysteresis"]) == 0
    q = json.loads(capsys.readouterr().out)
    assert (q["file"], q["hysteresis"], q["customers"], q["dead_letters"]) == (
        str(src), False, 2, 1)
    assert set(q["agreement"]) == {"frequency", "lifecycle", "rfm", "rfm_r", "rfm_f", "rfm_m"}
    # the reference side of the confusion matrix is exact whatever the engine says
    assert sorted(k for k, v in q["agreement"]["lifecycle"]["confusion"].items()
                  for _ in v) == ["prospect", "reactivated"]
    assert main(["quality", str(src)]) == 0
    assert "Agreement with the batch reference" in capsys.readouterr().out


def test_cli_a_file_without_an_accepted_event_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_bytes(b'{"event_id": "x1", "customer_id": "A", "type": "purchase"}\n')
    # it says why, with the file, line and field (a new user's Ta-Feng run without its FX
    # rates: "no accepted events (119578 lines, 119578 dead letters)" and nothing more)
    why = (f"streamseg: error: {src}: no accepted events (1 lines, 1 dead letters)\n"
           "dead letters by reason: schema_invalid 1\n"
           f"  {src}:1: field ts: \"ts\" is a required property (schema_invalid)\n")
    assert main(["quality", str(src)]) == 2
    got = capsys.readouterr()
    assert (got.out, got.err) == ("", why)
    assert main(["quality", str(src), "--json"]) == 2
    got = capsys.readouterr()
    assert json.loads(got.out) == {
        "customers": 0, "dead_letters": 1, "file": str(src), "hysteresis": True, "lines": 1,
        "dead_letter_reasons": {"schema_invalid": 1},
        "first_dead_letters": [{"line": 1, "reason": "schema_invalid", "field": "ts",
                                "message": '"ts" is a required property'}]}
    assert got.err == why


def test_engine_scores_compare_as_integers_even_when_some_customers_have_none() -> None:
    run = run_engine(lines(), no_hysteresis(Settings(allowed_lateness_s=0.0)))
    labels = engine_labels(run, BASE + 201 * DAY)
    assert str(labels["r"].dtype) == "Int64"
    ref = pd.Series([1, None], dtype="Int64")
    assert agreement(ref, pd.Series([1, None], dtype="Int64"))["agree"] == 1


def test_rfm_recency_bands_when_the_settings_ask_for_them() -> None:
    settings = SimpleNamespace(**{f: getattr(Settings(), f) for f in (
        "lapsed_days", "at_risk_days", "new_days", "reactivated_days", "freq_high_max_days",
        "freq_high_min_days", "freq_medium_max_days")}, rfm_recency="bands",
        rfm_bands=lambda: [1.0, 2.0, 3.0, 4.0])
    ref = reference(rfm_frame(), settings, 8 * DAY, warmup_days=5,  # type: ignore[arg-type]
                    min_samples=1)
    # days since the last purchase: 7 7 7 6 5 4 3 2 1 1
    assert ref["r"].tolist() == [1, 1, 1, 1, 1, 2, 3, 4, 5, 5]


def test_raw_verdict_agreement_is_reported_next_to_the_published_one() -> None:
    settings = no_hysteresis(Settings(allowed_lateness_s=0.0))
    q = measure(run_engine(lines(), settings), settings)
    # c1 reactivated by its purchase at the clock, c2 a visitor: whatever the engine's
    # rules, with hysteresis off the published label is the raw verdict
    for name in ("frequency", "lifecycle"):
        assert q["agreement"][name]["verdict_pct"] == q["agreement"][name]["pct"]


def test_the_report_says_why_value_abstains() -> None:
    from streamseg.engine.segmenters.value import ValueSegmenter
    from streamseg.tools.quality import _value_model
    from streamseg.tools.report import render

    cfg = Settings()
    seg = ValueSegmenter(cfg)
    assert _value_model(Engine(cfg, [])) == {}
    assert "warming up" in _value_model(Engine(cfg, [seg]))["value_model"]["abstains"]
    seg.failed = 2
    got = _value_model(Engine(cfg, [seg]))["value_model"]
    assert got["failed_fits"] == 2 and got["abstains"].startswith("every fit failed")
    seg.rejected = 3
    got = _value_model(Engine(cfg, [seg]))["value_model"]
    assert got["version"] is None and got["rejected_fits"] == 3
    assert got["abstains"].startswith("every fit rejected: a repeat purchase lowered")
    q = {"lines": 1, "dead_letters": 0, "customers": 1, "excluded_no_consent": 0,
         "clock": 0.0, "verdict_source": "Engine.verdict", "agreement": {}, "stale": {},
         "flaps": {}, "changes_per_customer": {}, "untrained": {}, "latency_s": {},
         "moves_not_published": {}, "value_model": got}
    assert "value abstains (no label): every fit rejected" in render(q, confusion=False)


def test_a_demotion_held_at_the_purchase_is_not_counted_as_good_news_held_back() -> None:
    """Review 18 (Instacart): the purchase -> change latency counted demotions that the
    frequency band holds at the purchase (p99 50.6 days) as purchase-earned moves
    published late. A weekly buyer who slows to every 10 days: the purchases that raise
    the mean gap over 7 days earn no good news; the band holds `high` until the clock
    moves it. That move's latency is reported apart."""
    days = [7 * i for i in range(10)] + [63 + 10 * k for k in range(1, 8)]
    out = [line(event_id=f"p{i}", customer_id="c1", ts=format_ts(BASE + d * DAY),
                order_id=f"o{i}", amount=10.0, currency="EUR") for i, d in enumerate(days)]
    out += [line(event_id=f"v{d}", customer_id="c2", type="page_view",
                 ts=format_ts(BASE + d * DAY)) for d in range(1, 160, 3)]
    out.sort(key=lambda raw: codec.loads(raw)["ts"])
    run = run_engine(out, Settings(allowed_lateness_s=0.0))
    assert run.latencies["frequency"] == [0.0]  # one_time -> high at the second purchase
    assert run.held_latencies["frequency"] == [39 * DAY + 1.0]  # high -> medium by the clock
    q = measure(run, Settings(allowed_lateness_s=0.0))
    assert q["latency_s"]["frequency"]["max"] == 0.0
    assert q["held_latency_s"]["frequency"]["n"] == 1


def idle_buyers(seed: int) -> list[bytes]:
    """240 buyers with their own rhythms who stop buying between day 20 and 150, and a
    visitor whose page views move the clock to day 300 (seeded)."""
    import random

    rng = random.Random(seed)
    timed: list[tuple[float, dict[str, Any]]] = []
    for i in range(240):
        gap, end = rng.uniform(2, 25), rng.uniform(20, 150)
        t = rng.uniform(0, 10) * DAY
        while t < end * DAY:
            n = len(timed)
            timed.append((t, {"event_id": f"p{n}", "customer_id": f"c{i}", "type": "purchase",
                              "ts": format_ts(t), "order_id": f"o{n}", "currency": "EUR",
                              "amount": round(rng.uniform(5, 200), 2)}))
            t += rng.expovariate(1 / (gap * DAY))
    for d in range(0, 300, 2):
        timed.append((d * DAY, {"event_id": f"v{d}", "customer_id": "clock", "page": "/",
                                "type": "page_view", "ts": format_ts(d * DAY),
                                "session_id": f"s{d}"}))
    timed.sort(key=lambda x: x[0])
    return [codec.dumps(r) for _, r in timed]


def test_with_hysteresis_off_no_label_is_held_or_stale() -> None:
    """``--no-hysteresis`` publishes raw verdicts. A new user's run on Complete Journey
    found 93 stale cluster labels: the cluster's idle dwell still delayed the due times of
    idle customers (on these 240 buyers: 1)."""
    settings = no_hysteresis(Settings())
    q = measure(run_engine(idle_buyers(3), settings), settings)
    assert q["stale"]["cluster"]["labels"] > 200
    assert {k: (v["stale"], v["held"]) for k, v in q["stale"].items()} == dict.fromkeys(
        q["stale"], (0, 0))
