"""Purchase-frequency tiers: prospect, one_time, high, medium, low, lapsed.

Definition (the batch reference implements the same independently):

* ``prospect``: no purchase yet;
* ``lapsed``: the last purchase is more than ``lapsed_days`` before the clock;
* ``one_time``: purchases on one buying day only, not lapsed;
* otherwise the *interval* is ``max(mean gap, tenure interval)`` in days, with
  mean gap = (last - first purchase time) / (buying days - 1) and tenure
  interval = (clock - first purchase time) / buying days; ``high`` if
  interval <= ``freq_high_max_days`` on at least ``freq_high_min_days`` buying
  days (2 by default), ``medium`` if <= ``freq_medium_max_days``, else ``low``.

``freq_high_min_days=3`` is for shops of occasional buyers: two orders on
consecutive days "buy every 1.0 days", and a review's 45-day shop log had 11,633
promotions to ``high`` at a second order, 6,865 of them taken back by the clock
13-39 days later (two emails for one repeat order). With 3, such a customer is
``medium``. Not the default: on weekly grocery baskets (Complete Journey) it adds a
``medium`` step before ``high`` for most households (16% more frequency changes).

*Buying days* are the distinct days with a purchase
(:func:`streamseg.engine.buyingdays.buying_days`; a day starts
at ``STREAMSEG_BUYING_DAY_START_H`` UTC, midnight by default: set it to a quiet hour of
the shop's own time zone, e.g. 9 for 4 am in New York, or an evening's baskets on either
side of UTC midnight count as two days):
several orders on one day are one shopping occasion, not a sign of high
frequency. Counting orders, a household with three baskets on one afternoon
was ``high`` ("buys every 0.0 days") for three weeks and a second basket an
hour after the first made a ``one_time`` buyer a repeat one; on Complete
Journey a burst of same-day baskets after a long gap promoted a customer the
clock had just demoted (most frequency flaps). ``one_time`` is therefore one
buying day.

The tenure interval counts the open gap since the last purchase as one more
interval once that gap is longer than the mean gap: a customer who stops buying
slides down the tiers on the event-time clock with no new event, but one late
or skipped purchase moves a long purchase history only a little (a weekly
buyer with ten purchases who skips a week has an interval of 7.7 days, not 14).
At a purchase the interval is the mean gap. For an idle customer the interval
crosses a mark ``m >= mean gap`` at ``first purchase + buying days * m`` days.

Hysteresis (:meth:`FrequencySegmenter.hold`) is a band on the thresholds: a
published ``high`` is kept while the interval stays within ``freq_high_max_days``
plus its band, a published ``medium`` within ``freq_medium_max_days`` plus its
band. The band of a tier bound ``B`` is ``min(margin days, freq_margin_purchases *
B / buying days)``: at most ``freq_high_margin_days`` (``freq_medium_margin_days``),
and at most the slack of ``freq_margin_purchases`` buying days at the tier's pace
(an idle customer is demoted once ``freq_margin_purchases`` buying days behind it).
A long purchase history moves slowly, so its band is narrow and the published
tier stays close to the definition; a short one gets the full margin. Promotions
are never held (a purchase that earns ``high`` publishes it at that purchase),
nor is ``lapsed``. The band applies whatever the trigger: a click is no reason to demote.

Examples
--------
Purchases on 5 days from day 0 to day 24 (mean gap 6 days), default settings (tiers
7 / 28 days, bands at most 3 / 0.5 days and 2 buying days' worth: here
``min(3, 2 * 7 / 5) = 2.8`` days for ``high``; lapsed after 180 days):

>>> from streamseg.config import Settings
>>> seg = FrequencySegmenter(Settings())
>>> s = CustomerState.new("c", 0.0)
>>> seg.assign(s, 0.0) is None  # no event yet (known from a profile record only)
True
>>> s.events = 1
>>> seg.assign(s, 0.0).segment
'prospect'
>>> s.purchases, s.purchase_days, s.first_purchase, s.last_purchase = 1, 1, 0.0, 0.0
>>> seg.assign(s, 2 * DAY).segment, seg.assign(s, 181 * DAY).segment
('one_time', 'lapsed')
>>> s.purchases, s.purchase_days, s.last_purchase = 2, 2, 1 * DAY
>>> seg.assign(s, 1 * DAY).segment, FrequencySegmenter(Settings(freq_high_min_days=3)).assign(
...     s, 1 * DAY).reason
('high', 'buys every 1.0 days; high needs 3 buying days')
>>> s.purchases, s.purchase_days, s.last_purchase = 5, 5, 24 * DAY
>>> seg.assign(s, 26 * DAY)
Assignment(segment='high', reason='buys every 6.0 days', margin=None, model_version=None)
>>> seg.assign(s, 36 * DAY).reason  # 36 / 5 = 7.2 days > 7
'5 buying days in 36 days (one every 7.2 days), last 12 days ago'
>>> [seg.assign(s, d * DAY).segment for d in (35, 36, 140, 141, 205)]
['high', 'medium', 'medium', 'low', 'lapsed']
>>> seg.hold(s, "high", seg.assign(s, 48 * DAY), 48 * DAY, "clock")  # 9.6 days: in the band
True
>>> seg.hold(s, "high", seg.assign(s, 50 * DAY), 50 * DAY, "clock")  # 10 days: beyond 9.8
False
>>> (seg.due(s, 24 * DAY) - 1.0) / DAY  # first mark crossed: 5 buying days * 7 days
35.0
>>> s.segments["frequency"] = ["high", 24 * DAY, 2, None]  # published: the band's end
>>> round((seg.due(s, 24 * DAY) - 1.0) / DAY, 6)  # 5 * (7 + 2.8)
49.0
"""

from __future__ import annotations

from streamseg.config import DAY, Settings
from streamseg.engine.buyingdays import buying_days
from streamseg.engine.features import CustomerState
from streamseg.engine.segmenters.base import (
    STEP_S,
    Assignment,
    NoPopulation,
    Trigger,
    days,
    first_after,
)


def names(settings: Settings) -> dict[str, str]:
    """Segment -> readable name, the tier bounds taken from ``settings``.

    >>> names(Settings())["medium"]
    'Medium frequency (a purchase every 7-28 days)'
    >>> names(Settings(freq_high_max_days=1, freq_medium_max_days=10.5))["high"]
    'High frequency (a purchase every 1 day or more often)'
    >>> names(Settings(freq_high_min_days=3))["medium"]
    'Medium frequency (a purchase every 7-28 days, or more often on fewer than 3 buying days)'
    """
    high, medium = settings.freq_high_max_days, settings.freq_medium_max_days
    least = settings.freq_high_min_days
    faster = f", or more often on fewer than {least} buying days" if least > 2 else ""
    return {
        "prospect": "No purchase yet",
        "one_time": "One-time buyer",
        "high": f"High frequency (a purchase every {days(high, 'g')} or more often)",
        "medium": f"Medium frequency (a purchase every {high:g}-{days(medium, 'g')}{faster})",
        "low": f"Low frequency (a purchase less often than every {days(medium, 'g')})",
        "lapsed": f"Lapsed buyer (no purchase for over {days(settings.lapsed_days, 'g')})",
    }

def day_gap_days(state: CustomerState) -> float | None:
    """Mean gap between buying days: (last - first purchase time) / (buying days - 1), in
    days; None below two buying days.

    >>> s = CustomerState.new("c", 0.0)
    >>> s.purchases, s.purchase_days, s.first_purchase, s.last_purchase = 4, 3, 0.0, 10 * DAY
    >>> day_gap_days(s)
    5.0
    >>> s.purchase_days = 1  # four orders on one day
    >>> day_gap_days(s) is None
    True
    """
    n = buying_days(state)
    first, last = state.first_purchase, state.last_purchase
    if n < 2 or first is None or last is None:
        return None
    return (last - first) / DAY / (n - 1)


RANK = {"lapsed": 0, "low": 1, "medium": 2, "high": 3}


class FrequencySegmenter(NoPopulation):
    """Rule segmenter over purchase frequency; thresholds and margins from :class:`Settings`."""

    name = "frequency"

    def __init__(self, settings: Settings) -> None:
        self.names = names(settings)
        self.high = settings.freq_high_max_days
        self.high_min = settings.freq_high_min_days
        self.medium = settings.freq_medium_max_days
        self.lapsed = settings.lapsed_days
        self.lapsed_s = settings.lapsed_days * DAY
        on = settings.hysteresis
        # published tier -> (its bound, the most days a demotion from it is held)
        self.bands = {
            "high": (self.high, settings.freq_high_margin_days if on else 0.0),
            "medium": (self.medium, settings.freq_medium_margin_days if on else 0.0),
        }
        self.margin_purchases = settings.freq_margin_purchases
        self.marks = (self.high, self.medium)  # idle thresholds before a tier is published

    def band_end(self, state: CustomerState, tier: str) -> float | None:
        """The interval (days) up to which a demotion from ``tier`` is held; None: not held."""
        band = self.bands.get(tier)
        return None if band is None else self._end(state, *band)

    def _end(self, state: CustomerState, bound: float, days: float) -> float:
        """``bound`` plus its band for ``state``: at most ``days``, at most
        ``freq_margin_purchases`` buying days' worth of ``bound``."""
        if self.margin_purchases > 0.0:
            days = min(days, self.margin_purchases * bound / max(1, buying_days(state)))
        return bound + days

    def assign(self, state: CustomerState, now: float) -> Assignment | None:
        lp = state.last_purchase
        if lp is None or state.purchases == 0:
            # abstain for a customer known only from a profile (or consent) record
            return Assignment("prospect", "no purchase yet") if state.events else None
        since = max(0.0, now - lp) / DAY
        if since > self.lapsed:
            return Assignment("lapsed", f"no purchase for {days(since)}")
        gap = day_gap_days(state)
        if gap is None:
            return Assignment("one_time", "one purchase so far" if state.purchases <= 1
                              else f"{state.purchases} purchases, all on one day")
        tenure = self._tenure(state, now)
        interval = max(gap, tenure)
        why = (
            f"buys every {self._every(gap)} days"
            if interval == gap
            else f"{buying_days(state)} buying days in {days(tenure * buying_days(state))} "
            f"(one every {self._every(tenure)} days), last {days(since)} ago"
        )
        if interval <= self.high:
            n = buying_days(state)
            if n >= self.high_min:
                return Assignment("high", why)
            return Assignment("medium", f"{why}; high needs {self.high_min} buying days")
        if interval <= self.medium:
            return Assignment("medium", why)
        return Assignment("low", why)

    def _every(self, x: float) -> str:
        """``x`` days to one decimal, or "just over B" / "just under B" where that would
        read as a tier bound ``B`` it is not ("Medium ... buys every 7.0 days", review 18).

        >>> seg = FrequencySegmenter(Settings())
        >>> seg._every(7.04), seg._every(6.97), seg._every(7.0), seg._every(12.34)
        ('just over 7', 'just under 7', '7.0', '12.3')
        """
        text = f"{x:.1f}"
        for bound in (self.high, self.medium):
            if x != bound and text == f"{bound:.1f}":
                return f"{'just over' if x > bound else 'just under'} {bound:g}"
        return text

    def interval(self, state: CustomerState, now: float) -> float | None:
        """``max(mean gap, tenure interval)`` in days at ``now``; None below two buying days."""
        gap = day_gap_days(state)
        if gap is None or state.last_purchase is None:
            return None
        return max(gap, self._tenure(state, now))

    @staticmethod
    def _tenure(state: CustomerState, now: float) -> float:
        """Days from the first purchase to ``now`` per buying day (the open gap counts)."""
        first = state.first_purchase if state.first_purchase is not None else state.last_purchase
        if first is None:
            return 0.0
        return max(0.0, now - first) / DAY / max(1, buying_days(state))

    def due(self, state: CustomerState, after: float) -> float | None:
        """Next instant the published tier can change on the clock alone.

        That is where the idle interval leaves the published tier's band (or
        the last purchase gets older than ``lapsed_days``); with no published
        tier yet, every tier bound and band end. Only marks at or above the
        mean gap matter: below it the interval is the mean gap, which does not
        move without a purchase. The tenure interval exceeds a mark ``m`` from
        ``first purchase + buying days * m`` days on (thresholds are strict, so
        the due time is one ``STEP_S`` later).
        """
        lp = state.last_purchase
        if lp is None:
            return None
        times = [lp + self.lapsed_s + STEP_S]
        gap = day_gap_days(state)
        if gap is None:
            return first_after(after, times)
        published = state.segments.get(self.name)
        if published is None:  # every tier bound and band end
            marks = [*self.marks, *(self._end(state, *band) for band in self.bands.values())]
        else:
            end = self.band_end(state, published[0])
            if end is None:
                return first_after(after, times)  # low, lapsed, one_time: only lapsing is left
            marks = [end]
        first = state.first_purchase if state.first_purchase is not None else lp
        times += [first + buying_days(state) * m * DAY + STEP_S for m in marks if m >= gap]
        return first_after(after, times)

    def hold(
        self, state: CustomerState, current: str, verdict: Assignment, now: float,
        trigger: Trigger,
    ) -> bool:
        """Keep a published tier while the interval stays inside its band (demotions only)."""
        bound = self.band_end(state, current)
        low = RANK.get(verdict.segment)
        if bound is None or low is None or verdict.segment == "lapsed" or low >= RANK[current]:
            return False
        if current == "high" and buying_days(state) < self.high_min:
            return False  # published under a lower FREQ_HIGH_MIN_DAYS: not the clock's doing
        interval = self.interval(state, now)
        return interval is not None and interval <= bound

    def describe(self, segment: str) -> str:
        return self.names.get(segment, segment)

    def segments(self) -> tuple[str, ...]:
        return tuple(self.names)
