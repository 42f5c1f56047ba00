"""The rebalance gate: after an assignment, a partition's input is applied in offset order.

faust-streaming (0.15.3 here) can hand the agent a partition's records out of
order, or skip some, right after an assignment:

* **ahead** -- records fetched from the consumer's old position before Faust
  seeks to the committed offsets arrive first (Faust issues #216, #221, #236);
* **skipped** -- after a restore from the changelog, ``Recovery`` resumes the
  stream partitions *before* it seeks to the committed offsets. Records fetched
  in that window are handed to the stream queues, which are cleared when flow
  control resumes; the fetch batch being handed over goes on after the seek,
  so Faust's read offset moves past the seek target, the re-fetched records
  are dropped as already read, and Faust records the skipped offsets as a gap
  that it commits past. Measured in the kill -9 test (data dir wiped): the
  agent got offset 38, then 60, and events 39-59 were lost for good.

Per partition, from an assignment on, the gate is **closed** at the committed
offset: an event at or before it opens the gate; an event beyond it is held
(not applied, not acknowledged: a re-read delivers it again). Once open, the
partition is **watched**: each event must follow the previous one. A jump
(offset ``n + k`` after ``n``) closes the gate again at once and the agent
re-reads from ``n + 1``; if the re-read shows the same jump, the offsets in
between hold no records (transaction markers, say), so one re-read per
partition and assignment is enough and the watch ends there. A closed
partition is sought again when its hold runs out with no re-read seen (the
batch being handed over can undo a seek the same way), at most
:data:`MAX_SEEKS` times; then the gate gives up and opens (logged as an
error), leaving the per-customer input positions as the backstop.

The same hold serves consent first (:mod:`streamseg.consentfirst`): while the consent
backlog of an assignment is read, an input partition is **deferred** at its first
event (:meth:`Gate.defer`), held whatever comes, and re-read from that event when
released (:meth:`Gate.release`), not on a timer.

A re-read queues behind what was fetched before its seek: up to ``ahead``
events (the stream buffer and a batch or two). So a seek counts as failed only
once its hold ran out **and** those events have gone through: the worker took
``ahead`` events since (:meth:`Gate.progress`), or took a batch that emptied its
queue, or has been idle for the hold. Counting seconds alone, a backlog of transactional
input (a marker offset makes every partition jump) gave up while the re-read
was still queued, and the events held until then were lost
(``tests/integration/test_gate_backlog.py``).

Examples
--------
>>> g = Gate(hold_s=3.0)
>>> g.assigned({("t", 0): 38})
>>> [g.admit("t", 0, o, now=0.1) for o in (40, 38)]  # 40 is ahead: held
['hold', 'apply']
>>> g.admit("t", 0, 60, now=0.2)  # 39-59 skipped: re-read from 39 at once
'reseek'
>>> g.seek("t", 0, now=0.2), g.admit("t", 0, 61, now=0.3)  # 61: stale, held
(39, 'hold')
>>> [g.admit("t", 0, o, now=0.4) for o in (39, 40, 60, 61, 75)]  # re-read; watch ended
['apply', 'apply', 'apply', 'apply', 'apply']
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

TP = tuple[str, int]
Verdict = Literal["apply", "hold", "reseek"]

#: Seeks of one closed partition before the gate gives up and opens it.
MAX_SEEKS = 5


@dataclass
class Closed:
    """A partition waiting for its input from ``target`` on."""

    opens: int  # an event at or before this offset opens the gate
    target: int  # where a re-read starts
    since: float | None = None  # first hold, or the last seek (monotonic s)
    seeks: int = 0
    lowest: int | None = None  # lowest held offset
    taken_at_seek: int = 0  # events the worker had taken at the last seek
    deferred: bool = False  # held for consent first (:meth:`Gate.defer`): re-read on release


class Gate:
    """Hold or re-read a partition's input until it arrives in offset order (module doc)."""

    def __init__(self, hold_s: float, ahead: int = 0) -> None:
        self.hold_s = hold_s
        self.ahead = ahead  # events that may be queued ahead of a seek's re-read
        self.taken = 0  # events the worker has taken (progress)
        self.active = float("-inf")  # when it last took any (monotonic s)
        self.emptied = float("-inf")  # when a batch last left nothing queued
        self.closed: dict[TP, Closed] = {}
        self.watch: dict[TP, int] = {}  # open partitions -> next expected offset
        self.settled: set[TP] = set()  # re-read once for a jump: no longer watched

    def progress(self, events: int, now: float, emptied: bool = False) -> None:
        """The worker took ``events`` more input events (a batch) at ``now``;
        ``emptied``: nothing else was queued (a batch below its size limit)."""
        self.taken += events
        self.active = now
        if emptied:
            self.emptied = now

    def assigned(self, committed: Mapping[TP, int | None]) -> None:
        """A new assignment: close every assigned partition at its committed offset.

        A partition with no commit yet (the group's first run on it, or a worker
        killed before its first commit) starts at its beginning, offset 0.
        """
        self.closed = {tp: Closed(opens=off or 0, target=off or 0)
                       for tp, off in committed.items()}
        self.watch, self.settled = {}, set()

    def admit(self, topic: str, partition: int, offset: int, now: float) -> Verdict:
        """``apply`` the event, ``hold`` it, or ``reseek`` (hold it; re-read via :meth:`seek`)."""
        tp = (topic, partition)
        closed = self.closed.get(tp)
        if closed is None:
            expected = self.watch.get(tp)
            if expected is None or offset < expected:  # not watched, or a re-delivery
                return "apply"
            if offset == expected:
                self.watch[tp] = offset + 1
                return "apply"
            del self.watch[tp]  # a jump: re-read what was skipped, once
            self.settled.add(tp)
            log.warning("%s[%d]: offset %d follows %d; re-reading from %d", topic, partition,
                        offset, expected - 1, expected)
            self.closed[tp] = Closed(opens=offset, target=expected, since=now, lowest=offset)
            return "reseek"
        if closed.deferred:  # until released, whatever its offset
            closed.lowest = offset if closed.lowest is None else min(closed.lowest, offset)
            return "hold"
        if offset <= closed.opens:
            self._open(tp, offset)
            return "apply"
        closed.lowest = offset if closed.lowest is None else min(closed.lowest, offset)
        if closed.since is None:
            log.info("holding %s[%d] from offset %d: ahead of offset %d",
                     topic, partition, offset, closed.opens)
            closed.since = now
        return self._due(tp, closed, closed.since, now)

    def defer(self, topic: str, partition: int, offset: int, now: float) -> Verdict:
        """Hold an event to re-read its partition from it later (:meth:`release`):
        consent is read first (:mod:`streamseg.consentfirst`).

        An event the gate would hold anyway is held as before.

        >>> g = Gate(hold_s=3.0)
        >>> g.assigned({("t", 0): 38})
        >>> g.defer("t", 0, 38, now=0.1), g.admit("t", 0, 39, now=0.2), g.overdue(now=9.0)
        ('hold', 'hold', [])
        >>> g.release(now=9.0), g.seek("t", 0, now=9.0), g.admit("t", 0, 38, now=9.1)
        ([('t', 0)], 38, 'apply')
        """
        tp = (topic, partition)
        closed = self.closed.get(tp)
        if closed is not None and (closed.deferred or offset > closed.opens):
            return self.admit(topic, partition, offset, now)  # held
        expected = self.watch.pop(tp, None)  # watched: re-read from the next expected offset
        target = offset if expected is None else min(offset, expected)
        self.closed[tp] = Closed(opens=offset, target=target, lowest=offset, deferred=True)
        return "hold"

    def release(self, now: float) -> list[TP]:
        """The deferred partitions, to be re-read now (:meth:`seek`); held as usual
        from here on if the re-read does not come."""
        out = [tp for tp, closed in self.closed.items() if closed.deferred]
        for tp in out:
            closed = self.closed[tp]
            closed.deferred, closed.since = False, now
        return out

    def seek(self, topic: str, partition: int, now: float) -> int | None:
        """Offset to re-read the partition from (None: it is open); counts the seek."""
        closed = self.closed.get((topic, partition))
        if closed is None:
            return None
        closed.seeks += 1
        closed.since = now
        closed.taken_at_seek = self.taken
        if closed.lowest is not None:  # the committed offset may be a gap (a marker)
            closed.opens = max(closed.opens, closed.lowest)
        return closed.target

    def overdue(self, now: float) -> list[TP]:
        """Held partitions due a (new) re-read with no later event to notice it (timer).

        >>> g = Gate(hold_s=3.0)
        >>> g.assigned({("t", 0): 0})
        >>> g.admit("t", 0, 41, now=1.0)
        'hold'
        >>> g.overdue(now=3.5), g.overdue(now=4.0)  # held since 1.0: re-read at 4.0
        ([], [('t', 0)])
        >>> g.seek("t", 0, now=4.0), g.overdue(now=4.5), g.overdue(now=5.0)  # then every 1 s
        (0, [], [('t', 0)])
        """
        out: list[TP] = []
        for tp, closed in list(self.closed.items()):
            if (closed.since is not None and not closed.deferred
                    and self._due(tp, closed, closed.since, now) == "reseek"):
                out.append(tp)
        return out

    def _due(self, tp: TP, closed: Closed, since: float, now: float) -> Verdict:
        wait = self.hold_s if closed.seeks == 0 else self.hold_s / 3
        if now - since < wait:
            return "hold"
        if closed.seeks and not self._drained(closed, now, wait):
            return "hold"  # the re-read may still be queued behind what came before it
        if closed.seeks >= MAX_SEEKS:
            log.error("%s[%d]: no re-read from offset %d after %d seeks; applying input as it "
                      "comes", tp[0], tp[1], closed.target, closed.seeks)
            self._open(tp, None)
            return "apply"
        return "reseek"

    def _drained(self, closed: Closed, now: float, wait: float) -> bool:
        """Whether what was queued ahead of the last seek has gone through."""
        assert closed.since is not None  # the last seek
        return (self.taken - closed.taken_at_seek >= self.ahead
                or self.emptied > closed.since or now - self.active >= wait)

    def _open(self, tp: TP, offset: int | None) -> None:
        del self.closed[tp]
        if offset is not None and tp not in self.settled:
            self.watch[tp] = offset + 1
