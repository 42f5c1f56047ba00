"""Consent first: after an assignment, inputs wait until the consent backlog is read.

Consent events and a customer's other events come on different topics, and Kafka
orders records within a partition only. After a restart or a rebalance the worker
finds a backlog on every topic, and Faust hands the agent whichever records its
fetches returned first: a purchase made *after* a withdrawal could be read *before*
it, profiled and published (a change acted on for a customer who had withdrawn;
measured on the real broker, restart with a backlog: 20 such changes for 24
customers). The engine's consent log (:mod:`streamseg.engine.consentlog`) handles
the other order (a withdrawal read after inputs that followed it).

So, per assignment, :class:`ConsentFirst` waits in two stages:

1. **consent**: until the agent has read each assigned consent partition to where it
   ended at the assignment (its end offset, read from the broker);
2. **copies**: then until it has read each assigned ticks partition to where it ends
   once those consent records are applied: a consent record whose customer lives on
   another partition (another producer partitioner) reaches it as a copy on the ticks
   topic, which the worker writes as it reads the backlog (a review: 13-17 of 24
   customers published after a restart when the withdrawals came through another
   partitioner). Copies that *another* worker writes are not waited for.

Meanwhile an input event (clickstream, purchase, profile) is not applied: the ingest
defers its partition (:meth:`streamseg.gate.Gate.defer`: not acknowledged, re-read
from that event on) and re-reads the deferred partitions when the wait is over; no
clock tick is sent meanwhile. Reading starts at the committed offset, or at the log
start if retention deleted past it. With no record of the awaited partitions read for
``give_up_s / 9`` since the wait began or the last one, a partition behind by its last
offset alone that the consumer's position has passed is read (:meth:`at_marker`: a
transaction's commit marker); at ``give_up_s`` (three times
``STREAMSEG_GATE_HOLD_S``) the partitions still behind are re-read from their next
offset (a review: a consent partition with no commit was never fetched after a kill -9
and a rebalance); at twice that the wait ends with a warning.

Only the backlog present at the assignment is read first; after that, consent and
inputs are applied as they come (what the engine's log covers, and what it does not:
docs/RELIABILITY.md, "Consent by event time").

Examples
--------
>>> cf = ConsentFirst(give_up_s=9.0)
>>> cf.assigned({("consent", 0): 5, ("consent", 1): None}, {("consent", 0): 8, ("consent", 1): 0})
>>> cf.stage, sorted(cf.behind)  # consent[0] has 5..7 unread, consent[1] nothing
('consent', [('consent', 0)])
>>> cf.read("ticks", 2, 40, now=0.0)  # read meanwhile: the copies stage starts after it
>>> cf.read("consent", 0, 7, now=0.1)
>>> cf.behind, cf.stage
({}, 'consent')
>>> cf.copies({("ticks", 2): 40}, {("ticks", 2): 44})
>>> cf.stage, cf.behind
('copies', {('ticks', 2): (41, 44)})
>>> cf.assigned({("consent", 0): 8}, None)  # end offsets unknown: nothing to wait for
>>> cf.stage, cf.behind
(None, {})
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

log = logging.getLogger(__name__)

TP = tuple[str, int]


class ConsentFirst:
    """Whether inputs must wait for the consent backlog (and its copies) of the assignment."""

    def __init__(self, give_up_s: float) -> None:
        self.give_up_s = give_up_s
        self.stage: str | None = None  # "consent", "copies", None: not waiting
        self.behind: dict[TP, tuple[int, int]] = {}  # tp -> (next offset to read, end)
        self.seen: dict[TP, int] = {}  # next offset after the last record read, any tp
        self.last_read: float | None = None  # the last awaited record, or the wait's start
        self.sought = False  # the behind partitions were re-read once (stalled)
        self.starts: dict[TP, int] = {}  # where each awaited partition's backlog started
        self.committed: set[TP] = set()  # awaited partitions the group had committed on

    def assigned(self, committed: Mapping[TP, int | None], ends: Mapping[TP, int] | None,
                 firsts: Mapping[TP, int] | None = None) -> None:
        """A new assignment: the consent partitions' committed and end offsets (and log
        starts: retention may have deleted past the committed offset).

        ``ends`` None (the broker could not say): nothing is waited for.
        """
        self.seen = {}
        self.stage = None
        self._wait("consent", committed, ends or {}, firsts or {})

    def copies(self, committed: Mapping[TP, int | None], ends: Mapping[TP, int],
               firsts: Mapping[TP, int] | None = None) -> None:
        """Consent is read: wait for the ticks partitions to ``ends`` (the copies written)."""
        self._wait("copies", committed, ends, firsts or {})

    def _wait(self, stage: str, committed: Mapping[TP, int | None],
              ends: Mapping[TP, int], firsts: Mapping[TP, int]) -> None:
        self.last_read = None
        self.sought = False
        self.behind, self.starts, self.committed = {}, {}, set()
        for tp, end in ends.items():
            start = max(committed.get(tp) or 0, firsts.get(tp, 0), self.seen.get(tp, 0))
            if start < end:
                self.behind[tp] = (start, end)
                self.starts[tp] = start
                if committed.get(tp) is not None:
                    self.committed.add(tp)
        if self.behind:
            self.stage = stage
            log.info("reading %s first: inputs wait until %s", stage, ", ".join(
                f"{t}[{p}] is read to offset {end - 1}"
                for (t, p), (_, end) in sorted(self.behind.items())))

    def took(self, now: float) -> None:
        """The worker is taking events at ``now`` (a batch; the timer once the tables are
        restored): the stall clock runs from the first time."""
        if self.last_read is None:
            self.last_read = now

    def read(self, topic: str, partition: int, offset: int, now: float) -> None:
        """The agent read record ``offset`` of ``topic[partition]`` (consent or ticks) at
        ``now``, while waiting."""
        tp = (topic, partition)
        if offset + 1 > self.seen.get(tp, 0):
            self.seen[tp] = offset + 1
        pos = self.behind.get(tp)
        if pos is None:
            return
        self.last_read = now
        if offset + 1 >= pos[1]:
            self.reached(tp)
        elif offset + 1 > pos[0]:
            self.behind[tp] = (offset + 1, pos[1])

    def reached(self, tp: TP) -> None:
        """``tp`` is read to its end (or past it: the consumer's position)."""
        if self.behind.pop(tp, None) is not None and not self.behind:
            log.info("%s read up to date", self.stage)

    def at_marker(self, now: float) -> list[tuple[TP, int]]:
        """(partition, end) for each partition behind by its last offset alone (with a
        record of its backlog read, or a committed offset to start from), with no
        awaited record for ``give_up_s / 9`` (the gate's timer period): if the consumer's
        position has passed the end, that offset is a transaction's commit marker, never
        delivered, and the partition is read (:meth:`reached`). One behind by more is
        not judged by the position, nor one with no commit and nothing read: after a kill
        -9 and a rebalance a consent partition with no commit had its position at its
        end with none of its records delivered (review 34).

        >>> cf = ConsentFirst(give_up_s=9.0)
        >>> cf.assigned({}, {("consent", 0): 4, ("consent", 1): 9})
        >>> cf.took(now=0.0)
        >>> cf.read("consent", 0, 2, now=0.5)
        >>> cf.at_marker(now=1.0), cf.at_marker(now=1.5)
        ([], [(('consent', 0), 4)])
        """
        if not self._quiet(now, self.give_up_s / 9):
            return []
        return [(tp, end) for tp, (nxt, end) in sorted(self.behind.items())
                if nxt >= end - 1 and (nxt > self.starts[tp] or tp in self.committed)]

    def _quiet(self, now: float, seconds: float) -> bool:
        """Waiting, and no awaited record for ``seconds`` since the wait's clock started."""
        return bool(self.behind) and self.last_read is not None \
            and now - self.last_read >= seconds

    def stalled(self, now: float) -> list[tuple[TP, int]]:
        """The partitions to re-read (topic-partition, from offset) when no awaited record
        has come for ``give_up_s``; at twice that the wait ends (a warning), ``[]``.

        >>> cf = ConsentFirst(give_up_s=3.0)
        >>> cf.assigned({}, {("consent", 0): 4})
        >>> cf.stalled(now=1.0)  # nothing taken yet (tables being restored)
        []
        >>> cf.took(now=2.0)
        >>> cf.read("consent", 0, 1, now=3.0)
        >>> cf.stalled(now=5.0), cf.stalled(now=6.0)
        ([], [(('consent', 0), 2)])
        >>> cf.stalled(now=8.9), cf.stalled(now=9.0), cf.behind
        ([], [], {})
        """
        if not self._quiet(now, self.give_up_s):
            return []
        waited = ", ".join(f"{t}[{p}] (read to {nxt - 1} of {end - 1})"
                           for (t, p), (nxt, end) in sorted(self.behind.items()))
        if not self.sought:
            self.sought, self.last_read = True, now
            log.warning("no record read for %.1f s while inputs waited for %s; "
                        "re-reading them", self.give_up_s, waited)
            return [(tp, nxt) for tp, (nxt, _) in sorted(self.behind.items())]
        log.warning("no record read for %.1f s after a re-read of %s; applying "
                    "inputs as they come", self.give_up_s, waited)
        self.behind = {}
        return []
