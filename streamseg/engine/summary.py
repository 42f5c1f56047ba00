"""The feature summary of a customer: what a segment decision used, for humans.

Change records and lookup answers carry :func:`summary` (names, units and
meanings in :data:`FEATURES`); rule audiences read :func:`share` too. Pure
reads of a :class:`~streamseg.engine.features.CustomerState`.

Examples
--------
>>> from streamseg.config import Settings
>>> from streamseg.engine.events import Event
>>> from streamseg.engine.features import update
>>> cfg = Settings(half_life_days=30)
>>> s = CustomerState.new("c1", 0.0)
>>> update(s, Event("purchase", "purchase", "e1", "c1", 0.0, amount=100.0), cfg)
>>> update(s, Event("purchase", "purchase", "e2", "c1", 30 * 86400.0, amount=50.0), cfg)
>>> mean_gap_days(s)
30.0
>>> f = summary(s, 30 * 86400.0)
>>> f["avg_order_value_base"], f["days_since_last_purchase"], f["purchases_weighted"]
(75.0, 0.0, 1.5)
>>> f["currency"], sorted(f) == sorted(FEATURES)
('EUR', True)
"""

from __future__ import annotations

from typing import Any

from streamseg.config import DAY
from streamseg.engine.features import CHANNELS, CustomerState, mean_gap_days


def share(values: list[float], labels: tuple[str, ...]) -> tuple[str | None, float]:
    """The dominant label of a decayed mix and its share.

    >>> share([1.0, 3.0, 0.0, 0.0], ("mobile", "desktop", "tablet", "other"))
    ('desktop', 0.75)
    >>> share([0.0] * 4, ("mobile", "desktop", "tablet", "other"))
    (None, 0.0)
    """
    total = sum(values)
    if total <= 0.0:
        return None, 0.0
    best = max(range(len(values)), key=values.__getitem__)
    return labels[best], values[best] / total


# Name -> (unit, meaning) of every feature in a change event's ``features`` and a
# lookup answer's ``features`` (documented in streamseg/schemas/segment-change.schema.json
# and the README; a unit test keeps the three in step).
FEATURES: dict[str, tuple[str, str]] = {
    "currency": ("ISO 4217 code", "the base currency of every *_base amount"),
    "days_since_last_purchase": ("days", "event time since the last purchase; null: none yet"),
    "days_since_last_seen": ("days", "event time since the last event of any kind"),
    "purchases_total": ("count", "purchases so far"),
    "purchases_weighted": ("count, decayed", "purchases weighted by 0.5^(age / half-life)"),
    "total_spend_base": ("base currency", "paid amounts so far, converted at STREAMSEG_FX_RATES"),
    "avg_order_value_base": ("base currency", "total_spend_base / purchases_total (0: none)"),
    "avg_days_between_purchases": (
        "days", "mean gap between purchases: (last - first purchase) / (purchases - 1); "
        "null: fewer than two purchases"),
    "sessions_total": ("count", "sessions so far"),
    "page_views_weighted": ("count, decayed", "page and product views, decayed like purchases"),
    "cart_adds_weighted": ("count, decayed", "add-to-cart events, decayed like purchases"),
    "cart_conversion_ratio": ("ratio 0..1", "decayed purchases / decayed cart adds, capped at 1"),
    "mobile_share": ("ratio 0..1", "decayed share of events from a mobile device"),
    "top_channel": ("channel name", "the channel with the largest decayed share; null: none"),
    "p_alive": ("probability 0..1", "BG/NBD probability that the customer is still active "
                "(segmenter value); null: no fitted model yet or no purchase"),
    "expected_purchases": ("count", "BG/NBD expected purchases in the next "
                           "STREAMSEG_VALUE_HORIZON_DAYS; null: as p_alive"),
}


def summary(
    state: CustomerState, now: float, half_life_days: float = 30.0, currency: str = "EUR"
) -> dict[str, Any]:
    """The features a segment decision used, as a flat mapping (rounded for humans).

    The names, units and meanings are :data:`FEATURES`. Money is in the base
    ``currency`` (amounts were converted at ingestion); decayed values are
    reported as of ``now`` without mutating ``state``.
    """
    factor = 0.5 ** (max(0.0, now - state.decay_ts) / (half_life_days * DAY))
    last = state.last_purchase
    device_total = sum(state.d_devices)
    top_channel, _ = share(state.d_channels, CHANNELS)
    conversion = state.d_purchases / state.d_cart_adds if state.d_cart_adds > 0 else 0.0
    gap = mean_gap_days(state)
    return {
        "currency": currency,
        "days_since_last_purchase": None if last is None else round(
            max(0.0, now - last) / DAY, 3),
        "days_since_last_seen": round(max(0.0, now - state.last_seen) / DAY, 3),
        "purchases_total": state.purchases,
        "purchases_weighted": round(state.d_purchases * factor, 4),
        "total_spend_base": round(state.monetary, 2),
        "avg_order_value_base": round(state.monetary / state.purchases, 2)
        if state.purchases else 0.0,
        "avg_days_between_purchases": None if gap is None else round(gap, 3),
        "sessions_total": state.sessions,
        "page_views_weighted": round(state.d_page_views * factor, 4),
        "cart_adds_weighted": round(state.d_cart_adds * factor, 4),
        "cart_conversion_ratio": round(min(1.0, conversion), 4),
        "mobile_share": round(state.d_devices[0] / device_total, 4) if device_total else 0.0,
        "top_channel": top_channel,
        "p_alive": None,  # filled by the engine from the value model (Engine.features)
        "expected_purchases": None,
    }
