"""Hysteresis v2: moves at the customer's own event are published at once;
clock-driven demotions are damped by each segmenter's own band.

Rewritten for issue 8: the blanket 7-day ``min_dwell_s`` default is gone (it
delayed promotions by 7 days); the global dwell is an option defaulting to 0.
Frequency's interval is ``max(mean gap, (clock - first purchase) / purchases)``:
with the first purchase on day 0, an idle buyer of ``n`` purchases crosses an
interval mark ``m`` (at or above the mean gap) on day ``n * m``.
"""

from __future__ import annotations

from typing import Any

from streamseg.config import DAY, Settings
from streamseg.engine.events import Event
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine
from streamseg.engine.segmenters.frequency import FrequencySegmenter

OFF = Settings(hysteresis=False)
# bands in days only (3 / 7; the purchase-count limit off): what these tests pin
ON = Settings(freq_high_margin_days=3.0, freq_medium_margin_days=7.0, freq_margin_purchases=0.0)


def buys(*days_: float) -> list[Event]:
    return [Event("purchase", "purchase", f"p{i}", "c1", d * DAY, amount=10.0)
            for i, d in enumerate(days_)]


def run(cfg: Settings, events: list[Event], until: float, seg: str = "frequency",
        ) -> list[tuple[Any, ...]]:
    eng = Engine(cfg)
    state: CustomerState | None = None
    out: list[dict[str, Any]] = []
    for ev in events:
        res = eng.apply(state, ev)
        state = res.state
        out += res.changes
    assert state is not None
    out += eng.tick(state, until * DAY).changes
    return [(c["from_segment"], c["to_segment"], c["trigger"], c["event_time"][:19])
            for c in out if c["segmenter"] == seg]


# a weekly-ish buyer with two long gaps (14 and 12 days): without a band the raw
# verdict falls to medium in each long gap and comes back after a quick purchase
IRREGULAR = buys(0, 6, 12, 18, 24, 38, 41, 47, 53, 65, 68)


def test_without_hysteresis_every_crossing_is_published() -> None:
    assert run(OFF, IRREGULAR, 69) == [
        (None, "one_time", "event", "1970-01-01T00:00:00"),
        ("one_time", "high", "event", "1970-01-07T00:00:00"),
        ("high", "medium", "clock", "1970-02-05T00:00:01"),  # 5 purchases: day 5 * 7 + 1 s
        # day 38: mean gap 38 / 5 = 7.6, still medium; day 41: 41 / 6 = 6.8
        ("medium", "high", "event", "1970-02-11T00:00:00"),
        ("high", "medium", "clock", "1970-03-05T00:00:01"),  # 9 purchases: day 9 * 7 + 1 s
        ("medium", "high", "event", "1970-03-10T00:00:00"),  # day 68: 68 / 10 = 6.8
    ]


def test_band_keeps_high_through_irregular_gaps() -> None:
    assert run(ON, IRREGULAR, 69) == [
        (None, "one_time", "event", "1970-01-01T00:00:00"),
        ("one_time", "high", "event", "1970-01-07T00:00:00"),
    ]


def test_promotion_is_published_at_the_purchase_that_earns_it() -> None:
    # issue 8: moves to high were published exactly 7 days after the purchase
    changes = run(ON, buys(0, 20, 22, 24, 26, 28), 28)
    assert changes[-1] == ("medium", "high", "event", "1970-01-27T00:00:00")  # day 26: mean 6.5


def test_clock_demotion_is_damped_by_the_band_then_published_at_its_end() -> None:
    weekly = buys(0, 7, 14, 21, 28)
    assert run(ON, weekly, 50) == [  # interval 50 / 5 = 10: the band's end, still high
        (None, "one_time", "event", "1970-01-01T00:00:00"),
        ("one_time", "high", "event", "1970-01-08T00:00:00"),
    ]
    assert run(ON, weekly, 60)[2:] == [
        ("high", "medium", "clock", "1970-02-20T00:00:01"),  # 5 purchases: day 5 * (7 + 3) + 1 s
    ]
    assert run(OFF, weekly, 60)[2:] == [("high", "medium", "clock", "1970-02-05T00:00:01")]


def test_medium_band_and_lapsed_is_never_held() -> None:
    fortnightly = buys(0, 14, 28)
    assert run(ON, fortnightly, 300)[2:] == [
        ("medium", "low", "clock", "1970-04-16T00:00:01"),  # 3 purchases: day 3 * (28 + 7) + 1 s
        ("low", "lapsed", "clock", "1970-07-28T00:00:01"),  # day 28 + 180 days + 1 s
    ]
    assert run(OFF, fortnightly, 300)[2] == ("medium", "low", "clock", "1970-03-26T00:00:01")


WEEKLY_10 = [d * 7.0 for d in range(10)]  # days 0..63


def test_weekly_buyer_who_skips_a_week_is_not_demoted() -> None:
    # no purchase on day 70, back on day 77 and weekly again. Just before day 77 the
    # interval is 77 / 10 = 7.7 days (14 days since the last purchase would be past
    # the band's end, 10); after it the mean gap is 77 / 10, then 84 / 11, ...
    back = buys(*WEEKLY_10, 77, 84, 91)
    assert run(Settings(), back, 95) == [
        (None, "one_time", "event", "1970-01-01T00:00:00"),
        ("one_time", "high", "event", "1970-01-08T00:00:00"),
    ]
    eng = Engine(Settings())
    state: CustomerState | None = None
    for ev in back:
        state = eng.apply(state, ev).state
    assert state is not None
    assert eng.verdict(state, "frequency", 91 * DAY) == ("medium", True)  # 91 / 12 days: held
    # a weekly-ish buyer (every 6 days) who skips one purchase: not even a raw demotion
    assert run(OFF, buys(*[d * 6.0 for d in range(10)], 66), 67) == [
        (None, "one_time", "event", "1970-01-01T00:00:00"),
        ("one_time", "high", "event", "1970-01-07T00:00:00"),
    ]


def test_buyer_who_stops_is_demoted_at_the_computed_time() -> None:
    stops = buys(*WEEKLY_10)  # 10 purchases, the last on day 63
    # band min(3, 2 * 7 / 10) = 1.4 days: interval 84 / 10 = 8.4 is the band's end
    assert run(Settings(), stops, 84)[2:] == []
    assert run(Settings(), stops, 300)[2:] == [
        ("high", "medium", "clock", "1970-03-26T00:00:01"),  # day 10 * (7 + 1.4) + 1 s
        # lapsed (day 63 + 180 + 1 s) although 243 / 10 days is inside medium's band
        ("medium", "lapsed", "clock", "1970-09-01T00:00:01"),
    ]
    assert run(OFF, stops, 300)[2:] == [
        ("high", "medium", "clock", "1970-03-12T00:00:01"),  # day 10 * 7 + 1 s
        ("medium", "lapsed", "clock", "1970-09-01T00:00:01"),  # before low (day 10 * 28)
    ]


def test_reactivation_is_published_at_the_purchase() -> None:
    lifecycle = run(ON, buys(0, 10, 200), 201, seg="lifecycle")
    assert lifecycle[-1] == ("lapsed", "reactivated", "event", "1970-07-20T00:00:00")


def test_lifecycle_margin_holds_at_risk_and_inactive_prospect() -> None:
    cfg = Settings(lifecycle_margin_days=10.0)
    assert run(cfg, buys(0), 200, seg="lifecycle")[2] == (
        "active", "at_risk", "clock", "1970-04-11T00:00:01")  # 90 + 10 days + 1 s
    eng = Engine(cfg)
    out = eng.apply(None, Event("click", "page_view", "v1", "v", 0.0))
    assert out.state is not None
    ticked = eng.tick(out.state, 120 * DAY).changes
    assert [(c["to_segment"], c["event_time"][:19]) for c in ticked] == [
        ("inactive_prospect", "1970-04-11T00:00:01")]


def test_optional_global_dwell_delays_only_clock_moves() -> None:
    cfg = Settings(min_dwell_s=3 * DAY, freq_high_margin_days=0.0)
    assert run(cfg, buys(0, 7, 14, 21), 40) == [
        (None, "one_time", "event", "1970-01-01T00:00:00"),
        ("one_time", "high", "event", "1970-01-08T00:00:00"),  # event: not delayed
        ("high", "medium", "clock", "1970-02-01T00:00:01"),  # day 21 + 7 + 1 s, + 3 days
    ]


def test_verdict_tells_a_held_label_apart() -> None:
    eng = Engine(ON)
    state: CustomerState | None = None
    for ev in buys(0, 7, 14, 21, 28):
        state = eng.apply(state, ev).state
    assert state is not None
    assert [c["segmenter"] for c in eng.tick(state, 38 * DAY).changes] == ["lifecycle"]
    assert state.segments["frequency"][0] == "high"
    assert eng.verdict(state, "frequency", 38 * DAY) == ("medium", True)
    assert eng.verdict(state, "lifecycle", 38 * DAY) == ("active", False)
    assert Engine(OFF).verdict(state, "frequency", 38 * DAY) == ("medium", False)


def test_band_narrows_with_the_purchase_history() -> None:
    """Defaults: the band is min(3 days, 2 purchases' worth of 7 days): a 2-purchase
    history keeps ``high`` up to 10 days, a 20-purchase one only up to 7.7 days."""
    cfg = Settings()
    seg = FrequencySegmenter(cfg)
    short = CustomerState.new("s", 0.0)
    short.purchases, short.first_purchase, short.last_purchase = 2, 0.0, 7 * DAY
    long_ = CustomerState.new("l", 0.0)
    long_.purchases, long_.first_purchase, long_.last_purchase = 20, 0.0, 133 * DAY
    assert seg.band_end(short, "high") == 10.0
    assert seg.band_end(long_, "high") == 7.7
    assert seg.band_end(long_, "medium") == 28.5  # the 0.5-day cap
    assert seg.band_end(long_, "low") is None
    # an idle 20-purchase weekly buyer: demoted once 2 purchases behind the weekly pace
    long_.segments["frequency"] = ["high", 133 * DAY, 1, None]
    assert seg.due(long_, 133 * DAY) == 20 * 7.7 * DAY + 1.0
    medium = seg.assign(long_, 153 * DAY)
    assert medium is not None and medium.segment == "medium"
    assert seg.hold(long_, "high", medium, 153 * DAY, "clock")  # 7.65 days: in the band
    medium = seg.assign(long_, 155 * DAY)
    assert medium is not None and not seg.hold(long_, "high", medium, 155 * DAY, "clock")
