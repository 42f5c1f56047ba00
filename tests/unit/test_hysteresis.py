"""Hysteresis v2: moves at the customer's own event are published at once;
clock-driven demotions are damped by each segmenter's own band.

Rewritten for issue 8: the blanket 7-day ``min_dwell_s`` default is gone (it
delayed promotions by 7 days); the global dwell is an option defaulting to 0.
"""

from __future__ import annotations

from typing import Any

from streamseg.config import DAY, Settings
from streamseg.engine.events import Event
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine

OFF = Settings(hysteresis=False)
ON = Settings(freq_high_margin_days=7.0, freq_medium_margin_days=14.0)


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


# a weekly-ish buyer with irregular gaps (mean gap 6.3 days): raw verdicts fall to
# medium whenever a gap exceeds 7 days and come back at the next purchase
IRREGULAR = buys(0, 6, 12, 21, 27, 33, 42, 48, 54, 57)


def test_without_hysteresis_every_crossing_is_published() -> None:
    assert run(OFF, IRREGULAR, 58) == [
        (None, "one_time", "event", "1970-01-01T00:00:00"),
        ("one_time", "high", "event", "1970-01-07T00:00:00"),
        ("high", "medium", "clock", "1970-01-20T00:00:01"),  # 7 days + 1 s after day 12
        ("medium", "high", "event", "1970-01-22T00:00:00"),
        ("high", "medium", "clock", "1970-02-10T00:00:01"),
        ("medium", "high", "event", "1970-02-12T00:00:00"),
    ]


def test_band_keeps_high_through_irregular_gaps() -> None:
    assert run(ON, IRREGULAR, 58) == [
        (None, "one_time", "event", "1970-01-01T00:00:00"),
        ("one_time", "high", "event", "1970-01-07T00:00:00"),
    ]


def test_promotion_is_published_at_the_purchase_that_earns_it() -> None:
    # issue 8: moves to high were published exactly 7 days after the purchase
    changes = run(ON, buys(0, 20, 22, 24, 26, 28), 28)
    assert changes[-1] == ("medium", "high", "event", "1970-01-27T00:00:00")  # day 26: mean 6.5


def test_clock_demotion_is_damped_by_the_band_then_published_at_its_end() -> None:
    weekly = buys(0, 7, 14, 21, 28)
    assert run(ON, weekly, 60) == [
        (None, "one_time", "event", "1970-01-01T00:00:00"),
        ("one_time", "high", "event", "1970-01-08T00:00:00"),
        ("high", "medium", "clock", "1970-02-12T00:00:01"),  # day 28 + 14 days (7 + 7) + 1 s
    ]
    assert run(OFF, weekly, 60)[2] == ("high", "medium", "clock", "1970-02-05T00:00:01")


def test_medium_band_and_lapsed_is_never_held() -> None:
    fortnightly = buys(0, 14, 28)
    assert run(ON, fortnightly, 300)[2:] == [
        ("medium", "low", "clock", "1970-03-12T00:00:01"),  # day 28 + 42 days (28 + 14) + 1 s
        ("low", "lapsed", "clock", "1970-07-28T00:00:01"),  # day 28 + 180 days + 1 s
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
