"""What a rule audience can read of a customer: its features, by how they move with time.

* ``STATIC``: a getter; the value does not move between events;
* ``SINCE``: an anchor time; value = (now - anchor) / 86400, rising with the clock;
* ``DECAYED``: the decayed value at ``state.decay_ts``; it halves every half-life.

Exact values (not the rounded ``features`` of a change record); documented in
docs/AUDIENCES.md.

Examples
--------
>>> s = CustomerState.new("c", 0.0)
>>> s.purchases, s.monetary = 2, 30.0
>>> STATIC["avg_order_value_base"](s), SINCE["days_since_last_purchase"](s)
(15.0, None)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamseg.engine.events import CLICK_TYPES
from streamseg.engine.features import CHANNELS, DEVICES, CustomerState, mean_gap_days
from streamseg.engine.summary import share


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


# name -> getter; these do not move between events
STATIC: dict[str, Callable[[CustomerState], Any]] = {
    "purchases_total": lambda s: s.purchases,
    "total_spend_base": lambda s: s.monetary,
    "avg_order_value_base": lambda s: _ratio(s.monetary, s.purchases),
    "avg_days_between_purchases": mean_gap_days,
    "sessions_total": lambda s: s.sessions,
    "events_total": lambda s: s.events,
    "cart_conversion_ratio": lambda s: min(1.0, _ratio(s.d_purchases, s.d_cart_adds)),
    "mobile_share": lambda s: _ratio(s.d_devices[0], sum(s.d_devices)),
    "top_channel": lambda s: share(s.d_channels, CHANNELS)[0],
    "top_device": lambda s: share(s.d_devices, DEVICES)[0],
}
# name -> anchor time; value = (now - anchor) / DAY, rising with the clock
SINCE: dict[str, Callable[[CustomerState], float | None]] = {
    "days_since_last_purchase": lambda s: s.last_purchase,
    "days_since_first_purchase": lambda s: s.first_purchase,
    "days_since_last_seen": lambda s: s.last_seen,
    "days_since_first_seen": lambda s: s.first_seen,
}
# name -> decayed value at state.decay_ts; value halves every half-life
DECAYED: dict[str, Callable[[CustomerState], float]] = {
    "purchases_weighted": lambda s: s.d_purchases,
    "page_views_weighted": lambda s: s.d_page_views,
    "cart_adds_weighted": lambda s: s.d_cart_adds,
    "sessions_weighted": lambda s: s.d_sessions,
}
EVENT_TYPES = CLICK_TYPES | {"purchase"}
FEATURE_NAMES = frozenset(STATIC) | frozenset(SINCE) | frozenset(DECAYED)
# name feature -> the names it can take (a closed set: the input schemas' enums)
TEXT_FEATURES: dict[str, tuple[str, ...]] = {"top_channel": CHANNELS, "top_device": DEVICES}
