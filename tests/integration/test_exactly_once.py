"""Exactly-once setting (STREAMSEG_PROCESSING_GUARANTEE=exactly_once) under kill -9.

The kill -9 scenario of test_crash_recovery runs once with Faust's
exactly-once processing guarantee on; the subscriber reads segment-changes
with ``isolation_level="read_committed"``. Two tests judge the same run:

* ``test_exactly_once_guarantee`` states the claim (no change lost, no change
  id twice). It does NOT hold with Faust 0.15.3 + aiokafka 0.14 + Kafka 4.1.1
  and is a strict xfail: if Faust starts to deliver it, the xfail turns into a
  failure and the documentation (docs/RELIABILITY.md) must be updated.
* ``test_exactly_once_documented_behaviour`` pins down why, with evidence from
  the topics themselves: the state changelog *is* written in Kafka
  transactions (aborted records are hidden from read_committed readers), but
  the records the agent sends with ``topic.send()`` to segment-changes are not
  (no transaction markers, read_committed sees exactly what read_uncommitted
  sees), so work redone after a crash is published twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka_helpers import partitions_of
from worker_proc import KillRun, Workers, kill_scenario, make_settings, story

from streamseg.app import ensure_topics

KILLS = [(1.5, False), (0.5, True)]
pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Offsets:
    """What a reader sees of a topic with each isolation level, and its end offsets."""

    committed: int
    uncommitted: int
    end: int
    gaps: int  # holes in the offsets a read_uncommitted reader sees (transaction markers)


async def offsets(bootstrap: str, topic: str) -> Offsets:
    counts: dict[str, int] = {}
    gaps = end_total = 0
    for iso in ("read_committed", "read_uncommitted"):
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    isolation_level=iso)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            seen: dict[TopicPartition, list[int]] = {tp: [] for tp in tps}
            idle = 0
            while idle < 5:
                batch = await consumer.getmany(timeout_ms=200)
                idle = 0 if batch else idle + 1
                for tp, msgs in batch.items():
                    seen[tp] += [m.offset for m in msgs]
            counts[iso] = sum(len(o) for o in seen.values())
            if iso == "read_uncommitted":
                end_total = sum(ends.values())
                gaps = sum(b - a - 1 for o in seen.values() for a, b in pairwise(o))
        finally:
            await consumer.stop()
    return Offsets(counts["read_committed"], counts["read_uncommitted"], end_total, gaps)


@dataclass
class EosRun:
    run: KillRun
    changes: Offsets
    changelog: Offsets


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def eos(tmp_path_factory: pytest.TempPathFactory, broker_url: str,
              bootstrap_servers: str) -> EosRun:
    tmp: Path = tmp_path_factory.mktemp("eos")
    settings = make_settings("eos", tmp / "data", broker_url, partitions=3,
                             processing_guarantee="exactly_once")
    await ensure_topics(settings)
    messages = story(customers=36, events_per_customer=10, seed=11)
    with Workers(broker_url, tmp) as workers:
        run = await kill_scenario(settings, workers, bootstrap_servers, KILLS, messages,
                                  timeout=30.0)
        assert "Crashed" not in run.worker.run_log()
    result = EosRun(
        run,
        await offsets(bootstrap_servers, settings.topic_changes),
        await offsets(bootstrap_servers, f"{settings.app_id}-customer-state-changelog"),
    )
    print(f"\nEOS: changes={len(run.expected)} published={len(run.got)} "
          f"missing={len(run.missing)} duplicates={run.duplicates} extra={len(run.extra)}; "
          f"segment-changes {result.changes}; changelog {result.changelog}")
    for cid in sorted(set(run.mismatched())):
        ref = run.reference[cid]
        got = [v for v in run.values if v["change_id"] == cid]
        print("EOS re-published with other content:", ref, got)
    return result


@pytest.mark.xfail(
    strict=True,
    reason="Faust 0.15.3 exactly_once: records sent by the agent with topic.send() are not "
    "part of the per-partition transaction (only changelog writes and offsets are), so "
    "after kill -9 the redone work is published again and read_committed subscribers see "
    "duplicate change ids; with the RocksDB data dir kept, changes were also lost or "
    "re-published with other content in some runs (see docs/RELIABILITY.md)",
)
async def test_exactly_once_guarantee(eos: EosRun) -> None:
    assert eos.run.complete and not eos.run.missing
    assert eos.run.duplicates == 0
    assert eos.run.mismatched() == []


async def test_exactly_once_documented_behaviour(eos: EosRun) -> None:
    # the state changelog is transactional: the kills aborted some of its records
    assert eos.changelog.uncommitted > eos.changelog.committed
    assert eos.changelog.gaps > 0
    # segment-changes is not: no markers, nothing hidden from read_committed
    assert eos.changes.committed == eos.changes.uncommitted == eos.changes.end
    assert eos.changes.gaps == 0
    # so a read_committed subscriber sees work redone after the kills twice
    assert eos.run.duplicates > 0
    # Not asserted: whether every id is one the engine makes for these events.
    # With the RocksDB data dir kept, an aborted transaction rolls back the
    # changelog but not the local store, and some runs published ids the
    # reference does not have (docs/RELIABILITY.md); the run above prints them.
