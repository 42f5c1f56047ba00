"""Partition bookkeeping of the edge: where a customer's state lives, and in what order.

Partitioning is the producers' choice (murmur2 for Java clients, CRC32 for
librdkafka ones, or no key at all), so the worker never assumes a customer's
partition from its own hash. Nothing here creates a Faust object:

* :func:`home` -- the murmur2 partition the Java default (and aiokafka) picks
  for a key; input found elsewhere is only *counted* (a foreign partitioner).
* the rebalance gate (:mod:`streamseg.gate`) keeps a partition's input in offset
  order after an assignment; :func:`log_spans` tells :mod:`streamseg.consentfirst`
  where the consent backlog of an assignment ends;
* :func:`position_key` / :func:`replayed` -- the per-customer backstop: a state
  records the last applied offset per input partition; an input at or before it
  is a re-delivery and is not applied again.
* :class:`PartitionState` -- per partition: its idle-customer schedule, its
  event-clock high-water mark and the customers to re-evaluate at the next tick.

Examples
--------
>>> home(b"c1", 4), home(b"c1", 4) == home(b"c1", 4)
(3, True)
>>> positions = {position_key("clicks", 0): 12}
>>> replayed(positions, "clicks", 0, 12), replayed(positions, "clicks", 0, 13)
(True, False)
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import murmur2

from streamseg.app import input_topics
from streamseg.config import Settings
from streamseg.engine.scheduler import Schedule


@lru_cache(maxsize=1 << 16)
def home(key: bytes, partitions: int) -> int:
    """The partition murmur2 (the Java client's and aiokafka's default) picks for ``key``.

    Cached: aiokafka's murmur2 is pure Python (several microseconds a key), and the
    agent asks for every input.
    """
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def position_key(topic: str, partition: int) -> str:
    """Key of an input partition in a state's position record (topic names have no ``:``)."""
    return f"{topic}:{partition}"


def replayed(positions: Mapping[str, int], topic: str, partition: int, offset: int) -> bool:
    """Whether the input at ``offset`` is at or before the last one applied to this state."""
    return handled(positions, position_key(topic, partition), offset)


def handled(positions: Mapping[str, int], source: str, offset: int) -> bool:
    """:func:`replayed` for a source given by its :func:`position_key`."""
    last = positions.get(source)
    return last is not None and offset <= last


@dataclass
class PartitionState:
    """What the worker keeps in memory for one assigned partition."""

    schedule: Schedule = field(default_factory=Schedule)
    ready: set[str] = field(default_factory=set)  # due at the last timer run
    # "re-evaluate these customers now", oldest first (take_rescore)
    rescore: dict[str, None] = field(default_factory=dict)
    behind: bool = False  # a tick left some of ``rescore`` for the next (take_rescore)
    quick_sent: bool = False  # a quick tick for the rest is sent and not read yet
    clock: float | None = None  # highest event time seen on this partition
    stored_clock: float | None = None  # as last written to the clock table
    clock_loaded: bool = False


RESCORE_ALL = 64  # a partition tick re-scores every pending customer up to this many,
RESCORE_SHARE = 4  # else this share of them (at least RESCORE_ALL): see take_rescore


def take_rescore(part: PartitionState) -> set[str]:
    """The customers a partition tick re-scores now (trigger ``population``); the rest
    stay in ``part.rescore`` and ``part.behind`` is set (the next tick comes sooner).

    All of them up to :data:`RESCORE_ALL`, else ``1/RESCORE_SHARE`` of them (at least
    :data:`RESCORE_ALL`), the longest pending first: a new cluster version that moved
    277 customers made one batch of 100 ms, the events behind it waiting (p99 event ->
    change at 2,000 events/s). Every tick takes a share, so a customer waits a bounded
    number of ticks however fast population models add others (a helper's review: in
    id order, one whose id sorts last waited forever behind 80 new ids a tick), and the
    pending set stays under about four times what arrives per tick.

    >>> part = PartitionState(rescore=dict.fromkeys(f"c{i:03d}" for i in range(300)))
    >>> len(take_rescore(part)), len(part.rescore), part.behind, next(iter(part.rescore))
    (75, 225, True, 'c075')
    >>> [len(take_rescore(part)) for _ in range(4)], part.rescore, part.behind
    ([64, 64, 64, 33], {}, False)
    """
    pending = part.rescore
    if len(pending) <= RESCORE_ALL:
        part.rescore, part.behind = {}, False
        return set(pending)
    now = list(itertools.islice(pending, max(RESCORE_ALL, -(-len(pending) // RESCORE_SHARE))))
    for cid in now:
        del pending[cid]
    part.behind = True
    return set(now)


async def committed_offsets(
    settings: Settings, assigned: Any
) -> dict[tuple[str, int], int | None]:
    """The group's committed offset of each assigned input partition (None: none committed)."""
    inputs = input_topics(settings)
    tps = {(tp.topic, tp.partition) for tp in assigned or () if tp.topic in inputs}
    out: dict[tuple[str, int], int | None] = dict.fromkeys(tps)
    if not tps:
        return out
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.app_id)
    finally:
        await admin.close()
    for tp, meta in offsets.items():
        if (tp.topic, tp.partition) in out and meta.offset >= 0:
            out[tp.topic, tp.partition] = meta.offset
    return out


async def log_spans(settings: Settings, assigned: Any,
                    topic: str) -> dict[tuple[str, int], tuple[int, int]]:
    """(log start, end offset) of each assigned partition of ``topic``, from the broker
    (:mod:`streamseg.consentfirst`: consent, then ticks). The end is the next offset to be
    written; below the start, retention deleted the records."""
    tps = [TopicPartition(tp.topic, tp.partition) for tp in assigned or ()
           if tp.topic == topic]
    if not tps:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {(tp.topic, tp.partition): (int(starts[tp]), int(ends[tp])) for tp in tps}
