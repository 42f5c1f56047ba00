"""The event-time clock: the highest event time seen, less an allowed lateness.

Time-driven transitions (``lapsed`` with no new event) are evaluated on this
clock, never on the machine's wall clock, so a replay gives the same answer.

The wall clock is only an upper bound: an event dated ahead of it (a device with a
wrong clock) is applied to its customer, but moves the clock no further than the
wall clock (:func:`bounded`), so one such event does not age every other customer,
and does not widen the accepted window for the next one. Data behind the wall
clock (every replay of a history) never meets the bound.

Examples
--------
>>> c = EventClock(allowed_lateness_s=60.0)
>>> c.now() is None
True
>>> c.observe(1000.0); c.observe(900.0)
>>> c.now()
940.0
>>> EventClock.from_dict(c.to_dict()) == c
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def bounded(ts: float, current: float | None, wall: float | None) -> float:
    """The event time an event at ``ts`` may move a clock at ``current`` to.

    ``ts`` itself, unless it lies ahead of the wall clock ``wall`` while the clock
    does not (or has no value yet): then ``wall``. So data dated in the future (a
    simulation of next year) runs on a clock stopped at the wall clock, and events more
    than ``max_future_skew_s`` ahead of it are dead-lettered. A clock that is already
    ahead (persisted before the wall clock was set back) follows the events.

    >>> bounded(100.0, 50.0, 200.0), bounded(300.0, 50.0, 200.0), bounded(300.0, None, 200.0)
    (100.0, 200.0, 200.0)
    >>> bounded(300.0, 250.0, 200.0), bounded(300.0, 50.0, None)
    (300.0, 300.0)
    """
    if wall is None or ts <= wall or (current is not None and current > wall):
        return ts
    return wall


@dataclass(slots=True)
class EventClock:
    """Monotone watermark over observed event times."""

    allowed_lateness_s: float = 0.0
    max_seen: float | None = None

    def observe(self, ts: float) -> None:
        """Advance the clock with an event time (older times do not move it back)."""
        if self.max_seen is None or ts > self.max_seen:
            self.max_seen = ts

    def now(self) -> float | None:
        """The watermark, or None before any event."""
        if self.max_seen is None:
            return None
        return self.max_seen - self.allowed_lateness_s

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for the edge to persist the clock per partition."""
        return {"allowed_lateness_s": self.allowed_lateness_s, "max_seen": self.max_seen}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventClock:
        """Inverse of :meth:`to_dict`."""
        seen = data.get("max_seen")
        return cls(float(data.get("allowed_lateness_s", 0.0)),
                   None if seen is None else float(seen))

    def restore(self, max_seen: float | None) -> None:
        """Merge a persisted watermark (the clock never moves back)."""
        if max_seen is not None:
            self.observe(max_seen)


class SourceWatermark:
    """How far in event time the *slowest* active input source has got.

    The event clock is the highest event time seen on any source. When a worker
    catches up on a backlog, one source (say the purchases of a partition) can be
    read days of event time ahead of another (its clicks): the clock then passes
    moments whose events are still unread, and time-driven moves (a demotion, a
    lapse) are published before the purchase that would have prevented them. So
    clock-driven evaluation is capped at the progress of the slowest source that is
    still delivering (:meth:`cap`, Flink-style: the minimum over the inputs, idle
    ones left out). A source is *active* from its assignment until it has
    delivered no valid event for ``idle_s`` seconds (monotonic time, not event
    time); before its first event it holds the clock where it is (its progress is
    unknown). A source that only delivers bad input goes idle: it never holds the
    clock for good.

    Examples
    --------
    >>> w = SourceWatermark(idle_s=5.0)
    >>> w.assign(["clicks-0", "purchases-0"], at=0.0)
    >>> w.observe("purchases-0", 1000.0, at=1.0)
    >>> w.cap(at=1.0)  # clicks-0 unknown yet: hold the clock where it is
    -inf
    >>> w.observe("clicks-0", 400.0, at=2.0)
    >>> w.cap(at=2.0)  # the clicks are behind: the clock may not pass 400
    400.0
    >>> w.cap(at=6.5)  # purchases idle since 1.0: only the clicks count
    400.0
    >>> w.cap(at=8.0) is None  # both idle: no cap
    True
    >>> w.assign(["clicks-0", "purchases-0"], at=60.0)  # a rebalance: active again
    >>> w.cap(at=60.0)
    400.0
    """

    __slots__ = ("idle_s", "sources")

    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        # source -> [highest event time seen (None: none yet), monotonic time of the last one]
        self.sources: dict[Any, list[Any]] = {}

    def assign(self, sources: Any, at: float) -> None:
        """The sources this worker now reads, each active again from ``at``.

        New ones start with unknown progress. One this worker read before keeps
        its progress (its events up to there were applied) but not its idleness:
        after a rebalance, reading resumes from the committed offset, and a
        source that was quiet while the group re-formed (waiting out a killed
        member's session, say) may have a backlog now. Counted as idle from its
        last event before the rebalance, it let the clock demote customers whose
        purchases it had not delivered yet.
        """
        self.sources = {s: [(self.sources.get(s) or [None])[0], at] for s in sources}

    def touch(self, source: Any, at: float) -> None:
        """``source`` delivered input whose event time does not count as progress
        (held back by the rebalance gate, say): it is not idle."""
        entry = self.sources.get(source)
        if entry is not None:
            entry[1] = at

    def observe(self, source: Any, ts: float, at: float) -> None:
        """A valid event of ``source`` with event time ``ts``, delivered at ``at``."""
        entry = self.sources.get(source)
        if entry is None:
            self.sources[source] = [ts, at]
            return
        if entry[0] is None or ts > entry[0]:
            entry[0] = ts
        entry[1] = at

    def cap(self, at: float) -> float | None:
        """Event time the clock may not pass at ``at``: the lowest progress of the active
        sources (``-inf`` while one of them has delivered nothing yet); None: no cap."""
        out: float | None = None
        horizon = at - self.idle_s
        for seen, last in self.sources.values():
            if last < horizon:
                continue  # idle: caught up, or stalled; it does not hold the clock
            if seen is None:
                return -math.inf
            if out is None or seen < out:
                out = seen
        return out
