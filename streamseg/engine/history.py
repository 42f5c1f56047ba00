"""A compact, bounded per-customer event history for trailing windows (rule audiences).

Events are counted in **UTC-day buckets of event time** per event type: for
each type the state keeps ``[day, count, amount]`` rows (``day`` =
``floor(ts / 86400)``), ascending, and only the last ``horizon_days`` days
before the customer's latest event (the longest window of the audiences file):
at most ``horizon_days`` rows per tracked type, whatever the traffic.

A window of ``N`` days at event time ``now`` covers the UTC day of ``now`` and
the ``N - 1`` days before it: an event of day ``d`` counts while
``now < (d + N) * 86400``. So a window's verdict can only change at an event or
at one of those day boundaries (:func:`exits`), which makes due times exact.

Only the event types an audiences file reads are tracked (:class:`History`), and
nothing at all without an audiences file, so the default replay speed is kept.

Examples
--------
>>> from streamseg.engine.events import Event
>>> from streamseg.engine.features import CustomerState
>>> h = History(frozenset({"add_to_cart", "purchase"}), horizon_days=7)
>>> s = CustomerState.new("c", 0.0)
>>> h.record(s, Event("click", "add_to_cart", "e1", "c", 0.5 * DAY))
>>> h.record(s, Event("purchase", "purchase", "e2", "c", 2.5 * DAY, amount=30.0))
>>> h.record(s, Event("click", "page_view", "e3", "c", 2.6 * DAY))  # not tracked
>>> s.history
{'add_to_cart': [[0, 1, 0.0]], 'purchase': [[2, 1, 30.0]]}
>>> count(s, "add_to_cart", 7, 6.9 * DAY), count(s, "add_to_cart", 7, 7.0 * DAY)
(1, 0)
>>> amount(s, "purchase", 3, 4.0 * DAY), exits(s, "add_to_cart", 7, 0.0) / DAY
(30.0, 7.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from streamseg.config import DAY
from streamseg.engine.events import Event
from streamseg.engine.features import CustomerState


@dataclass(frozen=True, slots=True)
class History:
    """Which event types to bucket, and for how many days (0: track nothing)."""

    types: frozenset[str]
    horizon_days: int

    def record(self, state: CustomerState, event: Event) -> None:
        """Add ``event`` to its day bucket (if its type is tracked) and prune old buckets."""
        if event.type not in self.types or self.horizon_days <= 0:
            return
        day = math.floor(event.ts / DAY)
        oldest = math.floor(state.last_seen / DAY) - self.horizon_days + 1
        if day < oldest:
            return  # too late to matter in any window
        rows = state.history.setdefault(event.type, [])
        i = len(rows)
        while i > 0 and rows[i - 1][0] > day:
            i -= 1
        if i > 0 and rows[i - 1][0] == day:
            row = rows[i - 1]
            row[1] += 1
            row[2] += event.amount
        else:
            rows.insert(i, [day, 1, float(event.amount)])
        for rows_of in state.history.values():
            while rows_of and rows_of[0][0] < oldest:
                del rows_of[0]


def _first_day(days: int, now: float) -> int:
    return math.floor(now / DAY) - days + 1


def count(state: CustomerState, type_: str, days: int, now: float) -> int:
    """Events of ``type_`` in the ``days``-day window ending at ``now``."""
    first = _first_day(days, now)
    n = 0
    for row in reversed(state.history.get(type_, ())):  # newest first, stop at the window
        if row[0] < first:
            break
        n += row[1]
    return int(n)


def amount(state: CustomerState, type_: str, days: int, now: float) -> float:
    """Summed ``amount`` (base currency) of ``type_`` events in the window ending at ``now``."""
    first = _first_day(days, now)
    total = 0.0
    for row in reversed(state.history.get(type_, ())):
        if row[0] < first:
            break
        total += row[2]
    return total


def exits(state: CustomerState, type_: str, days: int, after: float) -> float | None:
    """The first day boundary > ``after`` at which a bucket of ``type_`` leaves the window."""
    for row in state.history.get(type_, ()):
        t = float((row[0] + days) * DAY)
        if t > after:
            return t
    return None
