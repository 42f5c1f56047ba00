"""Buying days: distinct days with a purchase, each starting at a configured UTC hour.

``frequency`` divides time by buying days, not orders (several orders on one day are
one shopping occasion), and the value model counts its repeat purchases in them.
:func:`count_day` keeps ``CustomerState.purchase_days`` and ``recent_days`` exact for
purchases in time order or at most :data:`RECENT_DAYS` buying days late.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from streamseg.config import DAY

if TYPE_CHECKING:
    from streamseg.engine.features import CustomerState

HOUR = 3600.0
RECENT_DAYS = 8  # buying days kept per customer to recognise a late purchase


def buying_day(ts: float, start_s: float = 0.0) -> int:
    """The buying day of event time ``ts``: whole days since the epoch, each starting
    ``start_s`` seconds after UTC midnight.

    >>> buying_day(DAY + 3 * HOUR), buying_day(DAY + 3 * HOUR, start_s=9 * HOUR)
    (1, 0)
    """
    return int((ts - start_s) // DAY)


def buying_days(state: CustomerState) -> int:
    """Distinct days with a purchase (``purchase_days``, kept by :func:`count_day`); the
    order count for a state saved before buying days were counted and not bought from
    since.

    >>> from streamseg.engine.features import CustomerState
    >>> s = CustomerState.new("c", 0.0)
    >>> s.purchases, s.purchase_days = 3, 2
    >>> buying_days(s), buying_days(CustomerState.from_dict({**s.to_dict(), "purchase_days": 0}))
    (2, 3)
    """
    return state.purchase_days if state.purchase_days > 0 else state.purchases


def count_day(state: CustomerState, ts: float, first: float | None, last: float | None,
              start_s: float) -> None:
    """Count the buying day of a purchase at ``ts`` (``first`` / ``last``: the purchase
    times before it; ``purchases`` already counts it) in ``purchase_days`` unless that
    day was counted already.

    Exact while purchases arrive in time order or at most ``RECENT_DAYS`` buying days
    late; a purchase later than that counts as a new day unless it falls on the first
    buying day (documented approximation). A state saved before buying days were
    counted (``purchase_days`` 0 with purchases) starts from one day per order.

    >>> from streamseg.engine.features import CustomerState
    >>> s = CustomerState.new("c", 0.0)
    >>> for hours in (12, 23.5, 24.2, 23.8):  # the last one arrives late, on day 0
    ...     s.purchases += 1
    ...     count_day(s, hours * HOUR, s.first_purchase, s.last_purchase, 0.0)
    ...     s.first_purchase = min(s.first_purchase or 1e18, hours * HOUR)
    ...     s.last_purchase = max(s.last_purchase or 0.0, hours * HOUR)
    >>> s.purchase_days, s.recent_days
    (2, [0, 1])
    """
    day = buying_day(ts, start_s)
    days = state.recent_days
    if first is None or last is None:
        state.purchase_days, days[:] = 1, [day]
        return
    if not days:  # a state from before recent_days (or before purchase_days) was kept
        if state.purchase_days <= 0:  # one day per earlier order: the best guess left
            state.purchase_days = state.purchases - 1
        days.extend(sorted({buying_day(first, start_s), buying_day(last, start_s)}))
    if day in days or day == buying_day(first, start_s):
        return
    state.purchase_days += 1
    bisect.insort(days, day)
    if len(days) > RECENT_DAYS:
        del days[0]
