"""Frequency tiers and lifecycle stages: exact verdicts at chosen event times.

Updated for the target definitions of issue 8: frequency has ``one_time`` and
an exact mean gap ``(last - first) / (buying days - 1)``; lifecycle has a visitor
track (``prospect`` / ``inactive_prospect``) for customers who never bought.
"""

from __future__ import annotations

import pytest

from streamseg.config import DAY, Settings
from streamseg.engine.events import Event
from streamseg.engine.features import CustomerState, update
from streamseg.engine.segmenters.frequency import FrequencySegmenter
from streamseg.engine.segmenters.lifecycle import LifecycleSegmenter


def buyer(purchases: int, first_day: float, last_day: float) -> CustomerState:
    s = CustomerState.new("c", first_day * DAY)
    s.purchases, s.first_purchase, s.last_purchase = purchases, first_day * DAY, last_day * DAY
    s.purchase_days = purchases  # one purchase per buying day
    s.last_seen = last_day * DAY
    return s


@pytest.mark.parametrize(
    ("first", "since_days", "expected"),
    [
        (91.0, 1.0, "high"),  # 4 purchases over 9 days: mean gap 3
        (79.0, 7.0, "high"),  # mean gap exactly 7; tenure 28 / 4 = 7: both <= 7
        (79.0, 7.5, "medium"),  # mean gap 7, tenure 28.5 / 4 > 7
        (77.5, 1.0, "medium"),  # mean gap 7.5
        (91.0, 19.0, "high"),  # mean gap 3; 19 days idle, but tenure 28 / 4 = 7
        (91.0, 20.0, "medium"),  # mean gap 3, tenure 29 / 4 = 7.25
        (16.0, 0.0, "medium"),  # mean gap 28
        (13.0, 0.0, "low"),  # mean gap 29
        (91.0, 103.0, "medium"),  # tenure 112 / 4 = 28
        (91.0, 104.0, "low"),  # tenure 113 / 4 = 28.25
        (91.0, 180.0, "low"),
        (91.0, 180.5, "lapsed"),
    ],
)
def test_frequency_tiers(first: float, since_days: float, expected: str) -> None:
    seg = FrequencySegmenter(Settings())
    verdict = seg.assign(buyer(4, first, 100.0), (100 + since_days) * DAY)
    assert verdict is not None and verdict.segment == expected


def test_frequency_mean_gap_is_exact_not_a_moving_average() -> None:
    seg = FrequencySegmenter(Settings())
    # gaps 1, 1, 1, 19: mean 5.5 (a moving average weighted to the last gap would say > 7)
    s = buyer(5, 0.0, 22.0)
    verdict = seg.assign(s, 22 * DAY)
    assert verdict is not None and (verdict.segment, verdict.reason) == (
        "high", "buys every 5.5 days")



def test_a_reason_never_reads_as_the_bound_of_another_tier() -> None:
    """Review 18: "Medium frequency (7-28 days)" said "buys every 7.0 days" (7.04)."""
    seg = FrequencySegmenter(Settings())
    s = buyer(26, 0.0, 176.0)  # 25 gaps in 176 days: 7.04
    verdict = seg.assign(s, 176 * DAY)
    assert verdict is not None and (verdict.segment, verdict.reason) == (
        "medium", "buys every just over 7 days")
    s = buyer(26, 0.0, 174.25)  # 6.97
    verdict = seg.assign(s, 174.25 * DAY)
    assert verdict is not None and (verdict.segment, verdict.reason) == (
        "high", "buys every just under 7 days")

def test_frequency_prospect_and_one_time() -> None:
    seg = FrequencySegmenter(Settings())
    visitor = CustomerState.new("c", 0.0)
    assert seg.assign(visitor, 0.0) is None  # no event yet (a profile record only): abstain
    visitor.events = 1
    prospect = seg.assign(visitor, 0.0)
    assert prospect is not None and prospect.segment == "prospect"
    one = seg.assign(buyer(1, 0.0, 0.0), 2 * DAY)
    assert one is not None and (one.segment, one.reason) == ("one_time", "one purchase so far")
    assert seg.describe("one_time") == "One-time buyer"
    late = seg.assign(buyer(1, 0.0, 0.0), 181 * DAY)
    assert late is not None and late.segment == "lapsed"


def test_frequency_counts_buying_days_not_orders() -> None:
    """Several orders on one UTC day are one buying day: three baskets in one afternoon
    are a one-time buyer (counting orders said ``high``, "buys every 0.0 days")."""
    seg = FrequencySegmenter(Settings())
    s = CustomerState.new("c", 0.0)
    for hour in (13, 14, 16):
        update(s, Event("purchase", "purchase", f"o{hour}", "c", hour * 3600.0, amount=5.0),
               Settings())
    assert (s.purchases, s.purchase_days) == (3, 1)
    verdict = seg.assign(s, 1 * DAY)
    assert verdict is not None and (verdict.segment, verdict.reason) == (
        "one_time", "3 purchases, all on one day")
    # two more orders on day 6: mean gap (6 days + 2 h - 13 h) / 1 buying day, not / 4 orders
    for hour in (2, 3):
        update(s, Event("purchase", "purchase", f"d6-{hour}", "c", 6 * DAY + hour * 3600.0,
                        amount=5.0), Settings())
    assert (s.purchases, s.purchase_days) == (5, 2)
    verdict = seg.assign(s, 6 * DAY + 4 * 3600.0)
    assert verdict is not None and (verdict.segment, verdict.reason) == (
        "high", "buys every 5.6 days")
    # idle: the tenure interval is (clock - first purchase at 13:00) / 2 buying days
    assert [seg.assign(s, d * DAY).segment for d in (14.5, 15)] == [  # type: ignore[union-attr]
        "high", "medium"]  # 6.98 and 7.23 days (counting 5 orders: 2.8 and 2.9)


def test_frequency_thresholds_come_from_settings() -> None:
    seg = FrequencySegmenter(Settings(freq_high_max_days=2, freq_medium_max_days=5, lapsed_days=30))
    s = buyer(3, 0.0, 6.0)  # mean gap 3; tenure interval day / 3
    assert [seg.assign(s, d * DAY).segment for d in (6, 15, 16, 36, 37)] == [  # type: ignore[union-attr]
        "medium",
        "medium",  # 15 / 3 = 5
        "low",
        "low",  # 30 days idle: not lapsed yet
        "lapsed",
    ]
    quick = buyer(3, 0.0, 2.0)  # mean gap 1
    assert [seg.assign(quick, d * DAY).segment for d in (2, 6, 7)] == [  # type: ignore[union-attr]
        "high", "high", "medium"]


def test_frequency_reason_tells_which_interval_decides() -> None:
    seg = FrequencySegmenter(Settings())
    s = buyer(4, 91.0, 100.0)  # mean gap 3
    verdicts = [seg.assign(s, d * DAY) for d in (101, 123)]
    assert [(v.segment, v.reason) for v in verdicts if v is not None] == [
        ("high", "buys every 3.0 days"),
        ("medium", "4 buying days in 32 days (one every 8.0 days), last 23 days ago"),
    ]


def test_frequency_names_are_readable() -> None:
    seg = FrequencySegmenter(Settings())
    assert [seg.describe(name) for name in ("high", "medium", "low", "lapsed")] == [
        "High frequency (a purchase every 7 days or more often)",
        "Medium frequency (a purchase every 7-28 days)",
        "Low frequency (a purchase less often than every 28 days)",
        "Lapsed buyer (no purchase for over 180 days)",
    ]
    assert seg.describe("unknown-id") == "unknown-id"


def test_frequency_names_follow_the_tier_settings() -> None:
    """The names state the configured bounds (``medium`` said 2-4 weeks whatever they were)."""
    seg = FrequencySegmenter(Settings(freq_high_max_days=1, freq_medium_max_days=10.5,
                                      lapsed_days=60))
    assert [seg.describe(name) for name in ("high", "medium", "low", "lapsed")] == [
        "High frequency (a purchase every 1 day or more often)",
        "Medium frequency (a purchase every 1-10.5 days)",
        "Low frequency (a purchase less often than every 10.5 days)",
        "Lapsed buyer (no purchase for over 60 days)",
    ]


def test_reasons_say_one_day_not_one_days() -> None:
    freq, life = FrequencySegmenter(Settings()), LifecycleSegmenter(Settings())
    s = buyer(2, 90.0, 100.0)  # mean gap 10: medium once the tenure interval is below it
    verdict = freq.assign(s, 101 * DAY)
    assert verdict is not None and verdict.reason == "buys every 10.0 days"
    s = buyer(2, 99.0, 100.0)
    assert [(v.segment, v.reason) for v in (freq.assign(s, 117 * DAY),) if v] == [
        ("medium", "2 buying days in 18 days (one every 9.0 days), last 17 days ago")]
    s = buyer(3, 97.0, 99.0)
    assert [(v.segment, v.reason) for v in (freq.assign(s, 100.2 * DAY),) if v] == [
        ("high", "3 buying days in 3 days (one every 1.1 days), last 1 day ago")]
    old = buyer(2, 0.0, 10.0)
    assert [(v.segment, v.reason) for v in (life.assign(old, 41 * DAY),) if v] == [
        ("active", "first purchase 41 days ago, last 31 days ago")]
    assert [(v.segment, v.reason) for v in (life.assign(old, 11 * DAY),) if v] == [
        ("new", "first purchase recently")]
    older = buyer(2, 0.0, 10.0)
    older.first_purchase = -100 * DAY
    assert [(v.segment, v.reason) for v in (life.assign(older, 11 * DAY),) if v] == [
        ("active", "first purchase 111 days ago, last 1 day ago")]


@pytest.mark.parametrize(
    ("now_days", "expected"),
    [
        (5, "new"),
        (30, "new"),
        (31, "active"),
        (130, "active"),
        (131, "at_risk"),
        (220, "at_risk"),
        (221, "lapsed"),
    ],
)
def test_lifecycle_by_recency(now_days: int, expected: str) -> None:
    seg = LifecycleSegmenter(Settings())
    s = buyer(3, 0.0, 40.0)
    verdict = seg.assign(s, now_days * DAY)
    assert verdict is not None and verdict.segment == expected


def test_lifecycle_visitor_track() -> None:
    seg = LifecycleSegmenter(Settings())
    s = CustomerState.new("c", 0.0)
    s.last_seen, s.events = 20 * DAY, 2
    assert [seg.assign(s, d * DAY).segment for d in (30, 110, 111, 400)] == [  # type: ignore[union-attr]
        "prospect",
        "prospect",
        "inactive_prospect",
        "inactive_prospect",
    ]
    assert seg.describe("inactive_prospect").startswith("Inactive prospect")


def test_a_visitor_browsing_every_six_days_stays_a_prospect() -> None:
    seg = LifecycleSegmenter(Settings())
    s = CustomerState.new("c", 0.0)
    for day in range(0, 365, 6):
        s.last_seen, s.events = day * DAY, s.events + 1
        verdict = seg.assign(s, (day + 5) * DAY)
        assert verdict is not None and verdict.segment == "prospect"


def test_lifecycle_reactivated_window() -> None:
    seg = LifecycleSegmenter(Settings(reactivated_days=10))
    s = buyer(5, 0.0, 300.0)
    s.reactivated_at = 300 * DAY
    assert seg.assign(s, 310 * DAY).segment == "reactivated"  # type: ignore[union-attr]
    assert seg.assign(s, 311 * DAY).segment == "active"  # type: ignore[union-attr]


def test_lifecycle_order_lapsed_then_at_risk_then_reactivated_then_new() -> None:
    seg = LifecycleSegmenter(Settings(new_days=30, reactivated_days=30))
    s = buyer(2, 0.0, 100.0)
    s.reactivated_at = 100 * DAY  # gap 100 > 90: reactivated beats new? no: new is over
    assert seg.assign(s, 101 * DAY).segment == "reactivated"  # type: ignore[union-attr]
    s2 = buyer(1, 0.0, 0.0)
    assert seg.assign(s2, 10 * DAY).segment == "new"  # type: ignore[union-attr]
    assert seg.assign(s2, 91 * DAY).segment == "at_risk"  # type: ignore[union-attr]
    assert seg.assign(s2, 181 * DAY).segment == "lapsed"  # type: ignore[union-attr]


def test_high_needs_freq_high_min_days_buying_days_and_is_not_held_below_them() -> None:
    """With ``freq_high_min_days=3`` a second buying day a day after the first is ``medium``
    (the reason says why); a ``high`` published under a lower setting is not kept by the
    band (a definition change, not the clock), while a 3-day ``high`` still is."""
    seg = FrequencySegmenter(Settings(freq_high_min_days=3))
    s = CustomerState.new("c", 0.0)
    s.events, s.purchases, s.purchase_days, s.first_purchase, s.last_purchase = (
        2, 2, 2, 0.0, 1 * DAY)
    verdict = seg.assign(s, 1 * DAY)
    assert verdict is not None and (verdict.segment, verdict.reason) == (
        "medium", "buys every 1.0 days; high needs 3 buying days")
    assert seg.describe("medium") == ("Medium frequency (a purchase every 7-28 days, or more "
                                      "often on fewer than 3 buying days)")
    assert not seg.hold(s, "high", verdict, 1 * DAY, "population")  # a settings change
    # idle: the tenure reason counts the buying days and says why not high
    assert seg.assign(s, 13 * DAY).reason == (  # type: ignore[union-attr]
        "2 buying days in 13 days (one every 6.5 days), last 12 days ago; high needs 3 "
        "buying days")
    # due: at most the medium band's end (28.5 days x 2), never the high mark's non-move
    assert seg.due(s, 1 * DAY) == 7 * 2 * DAY + 1.0  # no label yet: every mark (a no-op)
    s.segments["frequency"] = ["medium", 1 * DAY, 1, None]
    assert seg.due(s, 1 * DAY) == 28.5 * 2 * DAY + 1.0
    assert FrequencySegmenter(Settings()).assign(s, 1 * DAY).segment == "high"  # type: ignore[union-attr]
    s.purchases, s.purchase_days, s.last_purchase = 3, 3, 2 * DAY
    assert seg.assign(s, 2 * DAY).segment == "high"  # type: ignore[union-attr]
    idle = seg.assign(s, 23 * DAY)  # tenure 23 / 3 = 7.7 days: in the band of 7 + 2
    assert idle is not None and idle.segment == "medium" and seg.hold(s, "high", idle, 23 * DAY,
                                                                       "clock")
