"""Lifecycle stage, with a separate track for visitors who never bought.

Definition (the batch reference implements the same independently), in order:

* buyers: ``lapsed`` (last purchase > ``lapsed_days`` ago) > ``at_risk``
  (> ``at_risk_days``) > ``reactivated`` (the latest purchase that followed a
  gap > ``at_risk_days`` since the previous purchase was made <=
  ``reactivated_days`` ago) > ``new`` (first purchase <= ``new_days`` ago) >
  ``active``;
* never-purchased visitors: ``prospect`` (last activity <= ``at_risk_days``
  ago), ``inactive_prospect`` (older).

Hysteresis (:meth:`LifecycleSegmenter.hold`): a demotion to ``at_risk`` or
``inactive_prospect`` is held until the silence exceeds ``at_risk_days +
lifecycle_margin_days``. Nothing else is held: ``new -> active`` and
``reactivated -> active`` are ageing, and a purchase always publishes at once.

Examples
--------
>>> from streamseg.config import Settings
>>> seg = LifecycleSegmenter(Settings())
>>> s = CustomerState.new("c", 0.0)
>>> seg.assign(s, 10 * DAY) is None  # no event yet (a profile or consent record only)
True
>>> s.events = 1
>>> seg.assign(s, 10 * DAY).segment, seg.assign(s, 91 * DAY).segment
('prospect', 'inactive_prospect')
>>> s.purchases, s.first_purchase, s.last_purchase = 3, 0.0, 50 * DAY
>>> [seg.assign(s, d * DAY).segment for d in (10, 60, 150, 231)]
['new', 'active', 'at_risk', 'lapsed']
>>> s.reactivated_at = s.last_purchase = 300 * DAY
>>> seg.assign(s, 310 * DAY).segment, seg.assign(s, 331 * DAY).segment
('reactivated', 'active')
"""

from __future__ import annotations

from streamseg.config import DAY, Settings
from streamseg.engine.features import CustomerState
from streamseg.engine.segmenters.base import (
    STEP_S,
    Assignment,
    NoPopulation,
    Trigger,
    days,
    first_after,
)

NAMES = {
    "prospect": "Prospect (visits, no purchase yet)",
    "inactive_prospect": "Inactive prospect (no purchase, no recent visit)",
    "new": "New customer",
    "active": "Active customer",
    "at_risk": "At risk of churning",
    "lapsed": "Lapsed customer",
    "reactivated": "Reactivated customer",
}
BUYING = frozenset({"new", "active", "reactivated"})


class LifecycleSegmenter(NoPopulation):
    """Rule segmenter over the customer's lifecycle stage."""

    name = "lifecycle"

    def __init__(self, settings: Settings) -> None:
        self.new_s = settings.new_days * DAY
        self.at_risk_s = settings.at_risk_days * DAY
        self.lapsed_s = settings.lapsed_days * DAY
        self.reactivated_s = settings.reactivated_days * DAY
        margin = settings.lifecycle_margin_days if settings.hysteresis else 0.0
        self.held_s = (settings.at_risk_days + margin) * DAY

    def assign(self, state: CustomerState, now: float) -> Assignment | None:
        lp = state.last_purchase
        if lp is None:
            if not state.events:  # known only from a profile (or consent) record: no activity
                return None
            idle = now - state.last_seen
            if idle > self.at_risk_s:
                return Assignment("inactive_prospect", f"no visit for {days(idle / DAY)}")
            return Assignment("prospect", "visits, no purchase yet")
        since = now - lp
        if since > self.lapsed_s:
            return Assignment("lapsed", f"no purchase for {days(since / DAY)}")
        if since > self.at_risk_s:
            return Assignment("at_risk", f"no purchase for {days(since / DAY)}")
        if state.reactivated_at is not None and now - state.reactivated_at <= self.reactivated_s:
            return Assignment("reactivated", "purchased again after a long silence")
        first = state.first_purchase if state.first_purchase is not None else lp
        if now - first <= self.new_s:
            return Assignment("new", "first purchase recently")
        # a move from ``new`` happens when the first purchase is ``new_days`` old: say both
        return Assignment("active", f"first purchase {days((now - first) / DAY)} ago, "
                                    f"last {days(since / DAY)} ago")

    def due(self, state: CustomerState, after: float) -> float | None:
        """Next threshold an idle customer crosses (incl. the end of a held demotion)."""
        lp = state.last_purchase
        if lp is None:
            if not state.events:
                return None
            ref = state.last_seen
            return first_after(after, [ref + self.at_risk_s + STEP_S, ref + self.held_s + STEP_S])
        times = [lp + self.at_risk_s, lp + self.held_s, lp + self.lapsed_s]
        if state.first_purchase is not None:
            times.append(state.first_purchase + self.new_s)
        if state.reactivated_at is not None:
            times.append(state.reactivated_at + self.reactivated_s)
        return first_after(after, [t + STEP_S for t in times])

    def hold(
        self, state: CustomerState, current: str, verdict: Assignment, now: float,
        trigger: Trigger,
    ) -> bool:
        """Hold ``-> at_risk`` and ``-> inactive_prospect`` up to ``at_risk_days`` + margin."""
        if verdict.segment == "at_risk" and current in BUYING:
            ref = state.last_purchase
        elif verdict.segment == "inactive_prospect" and current == "prospect":
            ref = state.last_seen
        else:
            return False
        return ref is not None and now - ref <= self.held_s

    def describe(self, segment: str) -> str:
        return NAMES.get(segment, segment)

    def segments(self) -> tuple[str, ...]:
        return tuple(NAMES)
