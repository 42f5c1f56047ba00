"""The worker's population hook: customers RFM re-scores get a ``population`` tick.

With the real ``Ingest`` glue over in-memory topics (no Kafka): a purchase
moves the ranks of other customers; the next clock run sends them a tick
``{"now": ..., "population": true}``; handling it publishes their new RFM
label with trigger ``population``, so the published labels equal the
verdicts. A restarted worker rebuilds the population from its table.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from unit.ingest_harness import Harness

from streamseg import codec
from streamseg.config import DAY, Settings
from streamseg.engine.segmenters.rfm import RFMSegmenter

CFG = Settings(max_future_skew_s=365 * DAY, allowed_lateness_s=0.0, rfm_warmup_days=0.0,
               rfm_min_samples=5, rfm_hold_margin=0.0)
BASE = datetime(2026, 1, 1, tzinfo=UTC)


def buy(eid: str, cid: str, days: float, amount: float) -> dict[str, Any]:
    return {"event_id": eid, "customer_id": cid, "ts": (BASE + timedelta(days=days)).isoformat(),
            "order_id": eid, "amount": amount, "currency": "EUR"}


def clock(h: Harness) -> list[tuple[bytes, Any]]:
    ticks = h.ingest.due_ticks()
    for key, value in ticks:
        h.send("tick", key, value)
    return [(k, codec.loads(v)) for k, v in ticks]


def rfm_labels(h: Harness) -> dict[str, str]:
    out = {}
    for cid in ("c1", "c2", "c3", "c4", "c5", "c6"):
        st = h.state(cid)
        if st is not None and "rfm" in st.segments:
            out[cid] = st.segments["rfm"][0]
    return out


def test_population_ticks_keep_published_labels_current() -> None:
    h = Harness(CFG)
    try:
        for i in range(1, 5):
            h.send_json("purchase", buy(f"e{i}", f"c{i}", float(i), 10.0 * i))
        for j in range(3):
            h.send_json("purchase", buy(f"e5{j}", "c5", 5.0 + j / 10, 50.0))
            clock(h)
        assert rfm_labels(h)["c5"] == "champions"
        h.send_json("purchase", buy("e6", "c6", 6.0, 5.0))  # c6 is the latest buyer: c5 is R4
        sent = clock(h)
        assert (b"c5", {"now": BASE.timestamp() + 6 * DAY, "population": True}) in sent
        last = [v for v in h.app.changes.values() if v["customer_id"] == "c5"][-1]
        assert (last["trigger"], last["to_segment"]) == ("population", "loyal")
        eng = h.ingest.engine
        now = BASE.timestamp() + 6 * DAY
        for cid, label in rfm_labels(h).items():
            st = h.state(cid)
            assert st is not None and eng.verdict(st, "rfm", now) == (label, False)
        # a restarted worker (empty engine) rebuilds the same population from the table
        fresh = Harness(CFG)
        try:
            fresh.app.state.update(h.app.state)
            fresh.ingest.clock.observe(now)
            clock(fresh)
            old, new = eng.segmenter("rfm"), fresh.ingest.engine.segmenter("rfm")
            assert isinstance(old, RFMSegmenter) and isinstance(new, RFMSegmenter)
            assert new.values == old.values and new.cuts() == old.cuts()
            assert fresh.app.changes.values() == []  # re-scored, nothing moved
        finally:
            fresh.close()
    finally:
        h.close()
