"""The behavioural-cluster features of a customer (see ``segmenters.clusters``).

All but ``recency`` are fixed between the customer's events; ``recency`` is
the only one the event-time clock moves.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from streamseg.config import DAY
from streamseg.engine.clusternames import NAMES
from streamseg.engine.features import CustomerState

MIN_EXPOSURE_DAYS = 14.0  # rates of a younger history are taken over two weeks
GRACE_DAYS = 30.0  # default ``cluster_recency_grace_days``


def exposure_days(state: CustomerState, half_life_days: float) -> float:
    """Decayed length of the customer's history (days), at least :data:`MIN_EXPOSURE_DAYS`.

    Dividing a decayed count by it gives a rate that does not grow with the
    length of the history: a new customer and an old one with the same habits
    look alike.

    >>> s = CustomerState.new("c", 0.0)
    >>> s.decay_ts = 300 * DAY
    >>> round(exposure_days(s, 30.0), 3), exposure_days(CustomerState.new("d", 0.0), 30.0)
    (43.239, 14.0)
    """
    span = max(0.0, state.decay_ts - state.first_seen) / DAY
    window = half_life_days / math.log(2.0) * (1.0 - math.pow(0.5, span / half_life_days))
    return max(MIN_EXPOSURE_DAYS, window)


def static(state: CustomerState, half_life_days: float = 30.0) -> list[float]:
    """The clock-free features of ``state`` (all but recency), in feature order.

    Rates are per 30 days of (decayed) history, as of the customer's latest event.
    """
    sessions = state.d_sessions
    devices = state.d_devices
    total = devices[0] + devices[1] + devices[2] + devices[3]
    per = 30.0 / exposure_days(state, half_life_days)
    return [
        math.log1p(state.d_purchases * per),
        math.log1p(state.monetary / state.purchases) if state.purchases else math.nan,
        math.log1p(max(0.0, sessions - state.d_purchases) * per),
        math.log1p(state.d_page_views / sessions) if sessions > 0.0 else 0.0,
        min(1.0, state.d_purchases / state.d_cart_adds) if state.d_cart_adds > 0.0 else 0.0,
        devices[0] / total if total else 0.0,
    ]


def recency(last_seen: float, now: float, grace_days: float = GRACE_DAYS) -> float:
    """log(1 + days idle beyond ``grace_days``) at event time ``now`` (0 within the grace).

    >>> recency(0.0, 10 * DAY), round(recency(0.0, 40 * DAY), 6)
    (0.0, 2.397895)
    """
    return math.log1p(max(0.0, (now - last_seen) / DAY - grace_days))


def recencies(last_seen: NDArray[np.float64], now: float,
              grace_days: float = GRACE_DAYS) -> list[float]:
    """:func:`recency` of many last-seen times, bit for bit (a refit's whole sample).

    The arithmetic is vectorised; the logarithm stays :func:`math.log1p`, so
    the values equal :func:`recency`'s exactly on every platform (numpy's own
    ``log1p`` may differ in the last bits).

    >>> t = np.array([0.0, 35 * DAY, -10 * DAY])
    >>> recencies(t, 40 * DAY) == [recency(x, 40 * DAY) for x in t.tolist()]
    True
    """
    idle = (now - last_seen) / DAY - grace_days
    return list(map(math.log1p, np.where(idle > 0.0, idle, 0.0).tolist()))


def vector(state: CustomerState, now: float, grace_days: float = GRACE_DAYS,
           half_life_days: float = 30.0) -> list[float]:
    """The raw clustering features of ``state`` at event time ``now``, in feature order."""
    return [*static(state, half_life_days), recency(state.last_seen, now, grace_days)]


def features(state: CustomerState, now: float, grace_days: float = GRACE_DAYS) -> dict[str, float]:
    """:func:`vector` by feature name, without the unknown (NaN) values."""
    return {n: v for n, v in zip(NAMES, vector(state, now, grace_days), strict=True) if v == v}
