"""Consent first after a restart, on the real broker (``streamseg.consentfirst``).

The worker is stopped; meanwhile customers withdraw consent and then buy (a backlog on
the consent and the purchases topics). A restarted worker is handed whichever records
its fetches return first: without reading consent first, purchases made after a
withdrawal were profiled and published (an operator's review: 20 acted-on changes for
24 customers, one producer partitioner). Defaults: RocksDB, 4 partitions, murmur2 keys.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from kafka_helpers import produce
from test_partitioners import consent
from worker_proc import T0, Tail, Workers, _event, first_purchases, make_settings

from streamseg.app import ensure_topics
from streamseg.config import DAY
from streamseg.partitions import home

PARTITIONS = 4


def ts_of(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def one_per_partition(prefix: str) -> list[str]:
    """A customer id on each input partition (murmur2)."""
    out: dict[int, str] = {}
    i = 0
    while len(out) < PARTITIONS:
        cid = f"{prefix}{i}"
        out.setdefault(home(cid.encode(), PARTITIONS), cid)
        i += 1
    return [out[p] for p in sorted(out)]


@pytest.mark.parametrize("elsewhere", [False, True], ids=["same-partition", "next-partition"])
async def test_after_a_restart_the_consent_backlog_is_read_before_inputs(
    tmp_path: Path, broker_url: str, bootstrap_servers: str, elsewhere: bool
) -> None:
    """``next-partition``: each withdrawal on the partition after its customer's (another
    producer partitioner): it reaches the customer through a copy the worker writes as it
    reads the backlog (a diff review: 13 and 17 of 24 published before the wait for the
    copies)."""
    settings = make_settings("consentfirst", tmp_path / "data", broker_url,
                             partitions=PARTITIONS)
    await ensure_topics(settings)
    ids = [f"cf{i}" for i in range(24)]
    barrier = one_per_partition("cfb")
    b = bootstrap_servers
    with Workers(broker_url, tmp_path) as workers:
        w = workers.new("w", settings)
        await w.start().ready()
        await first_purchases(b, settings, ids)
        assert w.stop() == 0
        # while the worker is down: the withdrawals, then purchases made after them
        for p in range(PARTITIONS):
            mine = [c for c in ids
                    if (home(c.encode(), PARTITIONS) + (1 if elsewhere else 0)) % PARTITIONS == p]
            await produce(b, settings.topic_consent,
                          [consent(c, f"{c}-w", "consent_withdrawn", T0 + DAY)[1:]
                           for c in mine], partition=p)
        await produce(b, settings.topic_purchases,
                      [_event("purchase", c, f"{c}-2", T0 + 2 * DAY)[1:] for c in ids])
        # last on each partition: a new customer's purchase (its change shows the rest read)
        await produce(b, settings.topic_purchases,
                      [_event("purchase", c, f"{c}-1", T0 + 2 * DAY)[1:] for c in barrier])
        async with Tail(b, settings.topic_changes) as changes:
            await w.start().ready()
            assert await changes.until(
                lambda t: {v["customer_id"] for v in t.values()
                           if v.get("kind") == "change"} >= set(barrier),
                timeout=90, settle=3.0), w.tail()
            values = changes.values()
        log = w.run_log()
    acted = sorted((v["customer_id"], v["segmenter"], v["to_segment"]) for v in values
                   if v.get("kind") == "change" and v["customer_id"] in ids
                   and ts_of(v["event_time"]) >= T0 + DAY)
    assert acted == [], f"changes published for customers who had withdrawn: {acted}"
    assert "reading consent first" in log
