"""Purchase-frequency tiers: high (weekly+), medium (2-4 weeks), low (rarer), lapsed.

The effective purchase interval is the larger of the moving-average gap
between purchases and the time since the last purchase, so a customer who
stops buying slides down the tiers on the event-time clock with no new event.

Examples
--------
>>> from streamseg.config import Settings
>>> seg = FrequencySegmenter(Settings())
>>> s = CustomerState.new("c", 0.0)
>>> seg.assign(s, 0.0).segment
'prospect'
>>> s.purchases, s.last_purchase, s.gap_days = 5, 0.0, 6.0
>>> seg.assign(s, 2 * DAY)
Assignment(segment='high', reason='buys every 6.0 days', margin=None, model_version=None)
>>> [seg.assign(s, d * DAY).segment for d in (20, 60, 181)]
['medium', 'low', 'lapsed']
"""

from __future__ import annotations

from streamseg.config import DAY, Settings
from streamseg.engine.features import CustomerState
from streamseg.engine.segmenters.base import Assignment

NAMES = {
    "prospect": "No purchase yet",
    "high": "High frequency (weekly or more)",
    "medium": "Medium frequency (every 2-4 weeks)",
    "low": "Low frequency (monthly or rarer)",
    "lapsed": "Lapsed buyer",
}


class FrequencySegmenter:
    """Rule segmenter over purchase frequency; thresholds from :class:`Settings`."""

    name = "frequency"

    def __init__(self, settings: Settings) -> None:
        self.high = settings.freq_high_max_days
        self.medium = settings.freq_medium_max_days
        self.lapsed = settings.lapsed_days

    def assign(self, state: CustomerState, now: float) -> Assignment | None:
        if state.last_purchase is None:
            return Assignment("prospect", "no purchase yet")
        since = max(0.0, now - state.last_purchase) / DAY
        if since > self.lapsed:
            return Assignment("lapsed", f"no purchase for {since:.0f} days")
        if state.gap_days is None:
            return Assignment("low", "one purchase so far")
        interval = max(state.gap_days, since)
        why = (
            f"buys every {state.gap_days:.1f} days"
            if interval == state.gap_days
            else f"last purchase {since:.1f} days ago"
        )
        if interval <= self.high:
            return Assignment("high", why)
        if interval <= self.medium:
            return Assignment("medium", why)
        return Assignment("low", why)

    def learn(self, state: CustomerState, now: float) -> None:
        return None

    def describe(self, segment: str) -> str:
        return NAMES.get(segment, segment)
