"""One stray old purchase does not end the warm-up of RFM or of the value model.

Code review 2, finding 5: the warm-up compared the newest purchase with the *earliest*
one seen, so one customer's purchase 100 days back (a till with a reset clock, a test
order imported from years ago) ended it while the other 20 buyers had all bought that
morning: they were labelled ``lost`` / ``hibernating`` hours after their first order,
and the value model was fitted on one week. The span now counts from the
``min_customers``-th earliest first purchase (:class:`streamseg.engine.population.WarmUp`).
"""

from __future__ import annotations

import orjson

from streamseg.config import DAY, Settings
from streamseg.engine.events import format_ts
from streamseg.replay import Replayer

T0 = 1_767_268_800.0  # 2026-01-01T12:00:00Z


def purchase(cid: str, day: float, amount: float) -> bytes:
    return orjson.dumps({"type": "purchase", "customer_id": cid, "event_id": f"{cid}-{day}",
                         "order_id": f"{cid}-{day}", "ts": format_ts(T0 + day * DAY),
                         "amount": amount, "currency": "EUR"})


def replay(lines: list[bytes], settings: Settings) -> tuple[Replayer, list[dict[str, object]]]:
    rep = Replayer(settings)
    out: list[dict[str, object]] = []
    for line in lines:
        got = rep.feed(line)
        assert isinstance(got, list), got
        out += got
    return rep, out


def test_one_old_purchase_does_not_end_the_rfm_warm_up() -> None:
    lines = [purchase("old", 0, 40.0)]
    lines += [purchase(f"c{i:02d}", 100 + i / 48, 40.0 + i) for i in range(20)]
    _, out = replay(lines, Settings())
    assert [c for c in out if c.get("segmenter") == "rfm"] == []
    # the same buyers, 90 days on, with their own history: RFM scores them
    lines += [purchase(f"c{i:02d}", 191 + i / 48, 10.0) for i in range(20)]
    _, out = replay(lines, Settings())
    assert len({c["customer_id"] for c in out if c.get("segmenter") == "rfm"}) >= 20


def test_one_old_purchase_does_not_let_the_value_model_fit() -> None:
    settings = Settings(value_min_customers=20)
    lines = [purchase("old", 0, 40.0)]
    lines += [purchase(f"c{i:02d}", 100 + i / 4, 40.0 + i) for i in range(20)]
    lines += [purchase(f"c{i:02d}", 107 + i / 4, 20.0) for i in range(20)]  # a week later
    rep, out = replay(lines, settings)
    assert [c for c in out if c.get("segmenter") == "value"] == []
    assert all(getattr(seg, "model", None) is None for seg in rep.engine.segmenters
               if seg.name == "value")


def test_erased_buyers_do_not_count_toward_the_warm_up() -> None:
    """Diff review, finding 5: three buyers of day 0 erased, three new ones on day 100:
    the span counted the erased customers' first purchases and RFM scored the new ones."""
    settings = Settings(rfm_min_samples=3, rfm_warmup_days=90)
    lines = [purchase(f"e{i}", 0, 10.0) for i in range(3)]
    lines += [orjson.dumps({"type": "erasure_requested", "customer_id": f"e{i}",
                            "event_id": f"x{i}", "ts": format_ts(T0 + DAY)}) for i in range(3)]
    lines += [purchase(f"n{i}", 100 + i / 24, 10.0 * (i + 1)) for i in range(3)]
    _, out = replay(lines, settings)
    assert [c for c in out if c.get("segmenter") == "rfm"] == []
