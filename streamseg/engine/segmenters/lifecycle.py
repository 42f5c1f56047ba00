"""Lifecycle stage: new, active, at_risk, lapsed, reactivated.

Recency is measured from the last purchase (from first sight for customers
who never bought). A purchase after a silence longer than ``at_risk_days``
starts a ``reactivated`` window of ``reactivated_days``.

Examples
--------
>>> from streamseg.config import Settings
>>> seg = LifecycleSegmenter(Settings())
>>> s = CustomerState.new("c", 0.0)
>>> seg.assign(s, 10 * DAY).segment, seg.assign(s, 40 * DAY).segment
('new', 'at_risk')
>>> s.purchases, s.first_purchase, s.last_purchase = 3, 0.0, 50 * DAY
>>> [seg.assign(s, d * DAY).segment for d in (60, 150, 231)]
['active', 'at_risk', 'lapsed']
>>> s.reactivated_at = s.last_purchase = 300 * DAY
>>> seg.assign(s, 310 * DAY).segment, seg.assign(s, 331 * DAY).segment
('reactivated', 'active')
"""

from __future__ import annotations

from streamseg.config import DAY, Settings
from streamseg.engine.features import CustomerState
from streamseg.engine.segmenters.base import Assignment

NAMES = {
    "new": "New customer",
    "active": "Active customer",
    "at_risk": "At risk of churning",
    "lapsed": "Lapsed customer",
    "reactivated": "Reactivated customer",
}


class LifecycleSegmenter:
    """Rule segmenter over the customer's lifecycle stage."""

    name = "lifecycle"

    def __init__(self, settings: Settings) -> None:
        self.new_s = settings.new_days * DAY
        self.at_risk_s = settings.at_risk_days * DAY
        self.lapsed_s = settings.lapsed_days * DAY
        self.reactivated_s = settings.reactivated_days * DAY

    def assign(self, state: CustomerState, now: float) -> Assignment | None:
        if state.last_purchase is None:
            if now - state.first_seen <= self.new_s:
                return Assignment("new", "first seen recently, no purchase yet")
            idle = now - state.last_seen
            if idle > self.lapsed_s:
                return Assignment("lapsed", f"no activity for {idle / DAY:.0f} days")
            return Assignment("at_risk", "never purchased")
        since = now - state.last_purchase
        if since > self.lapsed_s:
            return Assignment("lapsed", f"no purchase for {since / DAY:.0f} days")
        if since > self.at_risk_s:
            return Assignment("at_risk", f"no purchase for {since / DAY:.0f} days")
        if state.reactivated_at is not None and now - state.reactivated_at <= self.reactivated_s:
            return Assignment("reactivated", "purchased again after a long silence")
        first = state.first_purchase if state.first_purchase is not None else state.first_seen
        if now - first <= self.new_s:
            return Assignment("new", "first purchase recently")
        return Assignment("active", f"last purchase {since / DAY:.0f} days ago")

    def learn(self, state: CustomerState, now: float) -> None:
        return None

    def describe(self, segment: str) -> str:
        return NAMES.get(segment, segment)
