"""Consent by event time on the real broker (docs/RELIABILITY.md, "Consent by event time").

One partitioner (murmur2, the README's) for everything, a live worker with the defaults
(RocksDB, 4 partitions). A purchase, an erasure, a new consent; then a purchase dated
*before the erasure* arrives (an offline till, or the purchases topic read behind the
consent topic in a backlog). It is the erased person's own pre-erasure behaviour: it must
not be profiled into the fresh profile and published with the new epoch, which a
subscriber keeps. (An operator's review found it published for 4 of 4 customers.)
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from kafka_helpers import produce
from test_partitioners import consent
from worker_proc import T0, Tail, Workers, _event, make_settings

from streamseg.app import ensure_topics
from streamseg.config import DAY


def ts_of(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


async def test_an_event_dated_before_the_erasure_does_not_come_back_after_a_regrant(
    tmp_path: Path, broker_url: str, bootstrap_servers: str
) -> None:
    settings = make_settings("consentorder", tmp_path / "data", broker_url, partitions=4)
    await ensure_topics(settings)
    ids = [f"oe{i}" for i in range(4)]
    b = bootstrap_servers
    with Workers(broker_url, tmp_path) as workers:
        w = workers.new("w", settings)
        await w.start().ready()
        async with Tail(b, settings.topic_segments) as segments:
            await produce(b, settings.topic_purchases,
                          [_event("purchase", c, f"{c}-1", T0)[1:] for c in ids])
            assert await segments.until(lambda t: len(t.records) >= len(ids), timeout=60)
            await produce(b, settings.topic_consent,
                          [consent(c, f"{c}-x", "erasure_requested", T0 + DAY)[1:] for c in ids])
            await produce(b, settings.topic_consent,
                          [consent(c, f"{c}-g", "consent_granted", T0 + 2 * DAY)[1:]
                           for c in ids])
            assert await segments.until(
                lambda t: sum(v is None for v in t.values()) >= len(ids), timeout=60,
                settle=3.0)
        async with Tail(b, settings.topic_changes) as changes:
            # the late purchase, dated half a day before the erasure; then one after the
            # grant, which is profiled (the barrier: its change shows the first was read)
            await produce(b, settings.topic_purchases,
                          [_event("purchase", c, f"{c}-late", T0 + DAY / 2)[1:] for c in ids])
            await produce(b, settings.topic_purchases,
                          [_event("purchase", c, f"{c}-new", T0 + 3 * DAY)[1:] for c in ids])
            assert await changes.until(
                lambda t: {v["customer_id"] for v in t.values()
                           if v["kind"] == "change" and v.get("epoch") == 1} >= set(ids),
                timeout=60, settle=2.0)
            values = changes.values()
    fresh = [v for v in values if v["kind"] == "change" and v.get("epoch", 0) >= 1]
    revived = [(v["customer_id"], v["to_segment"], v["event_time"]) for v in fresh
               if ts_of(v["event_time"]) < T0 + DAY]
    assert revived == [], f"pre-erasure purchases published in the fresh profile: {revived}"
    # the fresh profile holds the one purchase after the grant, not the pre-erasure one
    spend = {v["customer_id"]: v["features"]["total_spend_base"] for v in fresh}
    assert len(spend) == len(ids) and all(s > 0 for s in spend.values())
    assert all(v["features"]["purchases_total"] == 1 for v in fresh), fresh
