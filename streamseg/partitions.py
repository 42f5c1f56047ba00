"""Partition bookkeeping of the edge: where a customer's state lives, and in what order.

Partitioning is the producers' choice (murmur2 for Java clients, CRC32 for
librdkafka ones, or no key at all), so the worker never assumes a customer's
partition from its own hash. Nothing here creates a Faust object:

* :func:`home` -- the murmur2 partition the Java default (and aiokafka) picks
  for a key; input found elsewhere is only *counted* (a foreign partitioner).
* :class:`Gate` -- after an assignment, events delivered ahead of the committed
  offset (before Faust's seek) are held back until the stream is back at the
  committed position, so they are never applied out of order.
* :func:`position_key` / :func:`replayed` -- the per-customer backstop: a state
  records the last applied offset per input partition; an input at or before it
  is a re-delivery and is not applied again.
* :class:`PartitionState` -- per partition: its idle-customer schedule, its
  event-clock high-water mark and the customers to re-evaluate at the next tick.

Examples
--------
>>> home(b"c1", 4), home(b"c1", 4) == home(b"c1", 4)
(3, True)
>>> g = Gate(hold_s=5.0)
>>> g.assigned({("clicks", 0): 10, ("clicks", 1): None}, now=0.0)
>>> g.admit("clicks", 0, 12, now=0.1), g.admit("clicks", 1, 99, now=0.1)
('hold', 'hold')
>>> g.admit("clicks", 1, 0, now=0.2)  # no commit yet: the partition starts at 0
'apply'
>>> g.admit("clicks", 0, 10, now=0.2), g.admit("clicks", 0, 12, now=0.3)
('apply', 'apply')
>>> positions = {position_key("clicks", 0): 12}
>>> replayed(positions, "clicks", 0, 12), replayed(positions, "clicks", 0, 13)
(True, False)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import murmur2

from streamseg.app import input_topics
from streamseg.config import Settings
from streamseg.engine.scheduler import Schedule

log = logging.getLogger(__name__)

TP = tuple[str, int]
Verdict = Literal["apply", "hold", "reseek"]


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
    last = positions.get(position_key(topic, partition))
    return last is not None and offset <= last


class Gate:
    """Hold events delivered ahead of the committed offset right after an assignment.

    faust-streaming can hand the agent records fetched from the consumer's old
    position before it seeks to the committed offsets (issues #216, #221, #236);
    applying them first, then the earlier ones after the seek, applies a
    customer's events out of order. Per partition, from an assignment on: an
    event at or before the committed offset means the stream is where it must
    be (the gate opens); an event beyond it is held (not applied, not
    acknowledged: the seek delivers it again). If the stream is not back within
    ``hold_s`` (Faust did not seek, or the committed offset is a gap such as a
    transaction marker) the agent seeks to the committed offset itself, once
    (``"reseek"``); after that re-read, the first event at or before the lowest
    held offset opens the gate (a re-read starts there at the latest). The
    per-customer positions stay as the backstop.
    """

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self.committed: dict[TP, int] = {}  # closed partitions -> offset that opens them
        self.since: dict[TP, float] = {}  # first hold per closed partition (monotonic s)
        self.lowest: dict[TP, int] = {}  # lowest held offset
        self.reseeked: set[TP] = set()

    def assigned(self, committed: Mapping[TP, int | None], now: float) -> None:
        """A new assignment: close every assigned partition at its committed offset.

        A partition with no commit yet (the group's first run on it, or a worker
        killed before its first commit) starts at its beginning, offset 0: the
        stream must deliver from there too before anything later is applied.
        """
        self.committed = {tp: 0 if off is None else off for tp, off in committed.items()}
        self.since, self.lowest, self.reseeked = {}, {}, set()

    def admit(self, topic: str, partition: int, offset: int, now: float) -> Verdict:
        """``apply`` the event, ``hold`` it, or ``reseek`` (hold it and seek to the commit)."""
        tp = (topic, partition)
        start = self.committed.get(tp)
        if start is None:
            return "apply"
        if offset <= start:
            self._open(tp)
            return "apply"
        self.lowest[tp] = min(offset, self.lowest.get(tp, offset))
        if tp not in self.since:
            log.info("holding %s[%d] from offset %d: ahead of the committed offset %d",
                     topic, partition, offset, start)
        first = self.since.setdefault(tp, now)
        if now - first < self.hold_s:
            return "hold"
        if tp in self.reseeked:  # re-read once already: give up holding (backstop only)
            self._open(tp)
            return "apply"
        self.reseeked.add(tp)
        self.since[tp] = now
        return "reseek"

    def overdue(self, now: float) -> list[TP]:
        """Held partitions whose hold ran out with no later event to notice it: to re-read.

        :meth:`admit` decides on the next event of a held partition, but the stream
        may bring none (everything fetched was held, and a producer waits for the
        worker's output): the gate timer asks here. A partition re-read once already
        is opened instead (as :meth:`admit` does), so the next events apply.

        >>> g = Gate(hold_s=3.0)
        >>> g.assigned({("t", 0): 0}, now=0.0)
        >>> g.admit("t", 0, 41, now=1.0)
        'hold'
        >>> g.overdue(now=3.5), g.overdue(now=4.0)  # held since 1.0: re-read at 4.0, once
        ([], [('t', 0)])
        >>> g.threshold("t", 0), g.overdue(now=6.0), g.overdue(now=7.0), g.closed()
        (0, [], [], 0)
        """
        out: list[TP] = []
        for tp, first in list(self.since.items()):
            if now - first < self.hold_s:
                continue
            if tp in self.reseeked:
                self._open(tp)
                continue
            self.reseeked.add(tp)
            self.since[tp] = now
            out.append(tp)
        return out

    def threshold(self, topic: str, partition: int) -> int | None:
        """Offset to seek to (``reseek``); from then on the lowest held one opens the gate."""
        tp = (topic, partition)
        start = self.committed.get(tp)
        if start is not None and tp in self.reseeked:
            self.committed[tp] = max(start, self.lowest.get(tp, start))
        return start

    def _open(self, tp: TP) -> None:
        self.committed.pop(tp, None)
        self.since.pop(tp, None)
        self.lowest.pop(tp, None)

    def closed(self) -> int:
        """Partitions still waiting for the committed position."""
        return len(self.committed)


@dataclass
class PartitionState:
    """What the worker keeps in memory for one assigned partition."""

    schedule: Schedule = field(default_factory=Schedule)
    ready: set[str] = field(default_factory=set)  # due at the last timer run
    rescore: set[str] = field(default_factory=set)  # "re-evaluate these customers now"
    clock: float | None = None  # highest event time seen on this partition
    stored_clock: float | None = None  # as last written to the clock table
    clock_loaded: bool = False


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
