"""Scale-out: two workers in one consumer group over a multi-partition topic.

A second worker joins while events are flowing (partitions and their state
move to it) and leaves again (SIGTERM) before the stream ends. Every change
the pure engine publishes must be published, and a subscriber that drops
duplicates by ``change_id`` must see each customer's changes in sequence order.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections import Counter
from pathlib import Path

from worker_proc import (
    Feeder,
    Tail,
    Workers,
    change_ids,
    make_settings,
    reference_changes,
    story,
)

from streamseg.app import ensure_topics


def assigned_partitions(log: str, topic: str) -> set[int]:
    """Partitions of ``topic`` a worker was assigned, from Faust's tables (``{0-1, 3}``)."""
    parts: set[int] = set()
    for block in re.findall(rf"{re.escape(topic)}\s*\|\s*\{{([0-9, -]+)\}}", log):
        for item in block.split(","):
            lo, _, hi = item.strip().partition("-")
            parts.update(range(int(lo), int(hi or lo) + 1))
    return parts


async def test_worker_joins_and_leaves_mid_stream_nothing_lost_or_reordered(
    tmp_path: Path, broker_url: str, bootstrap_servers: str
) -> None:
    settings = make_settings("scale", tmp_path / "a", broker_url, partitions=4)
    await ensure_topics(settings)
    messages = story(customers=48, events_per_customer=10, seed=5)
    expected = set(change_ids(reference_changes(settings, messages)))

    with Workers(broker_url, tmp_path) as workers:
        a = workers.new("worker-a", settings)
        b = workers.new("worker-b", dataclasses.replace(settings, data_dir=str(tmp_path / "b")))
        await a.start().ready()
        async with Tail(bootstrap_servers, settings.topic_changes) as tail:
            feeder = Feeder(bootstrap_servers, settings, messages, rate=30.0)
            feeder.gate = 120  # the rest waits until b is up (however slow the machine)
            feeder.start()
            await feeder.until(60)
            await b.start().ready(timeout=90)  # joins: the group rebalances
            feeder.gate = len(messages)
            joined_at = len(tail.records)
            end = time.monotonic() + 3.0
            while time.monotonic() < end or len(tail.records) == joined_at:
                await tail.poll(0.1)
            assert set(change_ids(tail.values())) < expected, "b must join mid-stream"
            assert b.stop() == 0  # leaves gracefully: the group rebalances again
            await feeder.done()
            complete = await tail.until(
                lambda t: set(change_ids(t.values())) >= expected, timeout=90, settle=3.0
            )

        b_parts = assigned_partitions(b.log_path.read_text(), settings.topic_purchases)
        assert b_parts, "worker b was never assigned a partition"
        values = tail.values()
        got = change_ids(values)
        assert complete and set(got) == expected
        duplicates = sum(n - 1 for n in Counter(got).values())
        print(f"changes={len(expected)} published={len(got)} duplicates={duplicates} "
              f"b_partitions={sorted(b_parts)}")
        # per customer and segmenter, first occurrences come in sequence order
        seen: set[str] = set()
        order: dict[tuple[str, str], list[int]] = {}
        for v in values:
            if v["change_id"] not in seen:
                seen.add(v["change_id"])
                order.setdefault((v["customer_id"], v["segmenter"]), []).append(v["sequence"])
        assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in order.values())
        assert not a.crashes() and not b.crashes()
