"""A compact, bounded per-customer event history for trailing windows (rule audiences).

Events are counted in **day buckets of event time** per event type, the days
of :func:`~streamseg.engine.buyingdays.buying_day` (each starts ``day_s``
seconds after UTC midnight: ``STREAMSEG_BUYING_DAY_START_H``, default 0, so
UTC days): for each type the state keeps ``[day, count, amount]`` rows
(``day`` = ``floor((ts - day_s) / 86400)``), ascending, and only the last
``horizon_days`` days before the customer's latest event (the longest window of
the audiences file): at most ``horizon_days`` rows per tracked type, whatever
the traffic.

A window of ``N`` days at event time ``now`` covers the day of ``now`` and
the ``N - 1`` days before it: an event of day ``d`` counts while
``now < (d + N) * 86400 + day_s``. So a window's verdict can only change at an
event or at one of those day boundaries (:func:`exits`), which makes due times
exact.

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

With days that start at 06:00 UTC, a cart added at 03:00 UTC on day 1 belongs to
day 0, and leaves a 1-day window at 06:00 UTC on day 1:

>>> h6 = History(frozenset({"add_to_cart"}), horizon_days=7, day_s=0.25 * DAY)
>>> s6 = CustomerState.new("c", 0.0)
>>> h6.record(s6, Event("click", "add_to_cart", "e1", "c", 1.125 * DAY))
>>> s6.history, exits(s6, "add_to_cart", 1, 1.125 * DAY, h6.day_s) / DAY
({'add_to_cart': [[0, 1, 0.0]]}, 1.25)
"""

from __future__ import annotations

from dataclasses import dataclass

from streamseg.config import DAY
from streamseg.engine.buyingdays import buying_day
from streamseg.engine.events import Event
from streamseg.engine.features import CustomerState


@dataclass(frozen=True, slots=True)
class History:
    """Which event types to bucket, and for how many days (0: track nothing)."""

    types: frozenset[str]
    horizon_days: int
    day_s: float = 0.0  # days start this long after UTC midnight (buying_day_start_h)

    def record(self, state: CustomerState, event: Event) -> None:
        """Add ``event`` to its day bucket (if its type is tracked) and prune old buckets."""
        if event.type not in self.types or self.horizon_days <= 0:
            return
        day = buying_day(event.ts, self.day_s)
        oldest = buying_day(state.last_seen, self.day_s) - self.horizon_days + 1
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


def _first_day(days: int, now: float, day_s: float) -> int:
    return buying_day(now, day_s) - days + 1


def count(state: CustomerState, type_: str, days: int, now: float, day_s: float = 0.0) -> int:
    """Events of ``type_`` in the ``days``-day window ending at ``now``."""
    first = _first_day(days, now, day_s)
    n = 0
    for row in reversed(state.history.get(type_, ())):  # newest first, stop at the window
        if row[0] < first:
            break
        n += row[1]
    return int(n)


def amount(state: CustomerState, type_: str, days: int, now: float,
           day_s: float = 0.0) -> float:
    """Summed ``amount`` (base currency) of ``type_`` events in the window ending at ``now``."""
    first = _first_day(days, now, day_s)
    total = 0.0
    for row in reversed(state.history.get(type_, ())):
        if row[0] < first:
            break
        total += row[2]
    return total


def exits(state: CustomerState, type_: str, days: int, after: float,
          day_s: float = 0.0) -> float | None:
    """The first day boundary > ``after`` at which a bucket of ``type_`` leaves the window."""
    for row in state.history.get(type_, ()):
        t = float((row[0] + days) * DAY + day_s)
        if t > after:
            return t
    return None
