"""Hysteresis: minimum dwell for rule verdicts, distance margin for clusters."""

from __future__ import annotations

from typing import Any

from streamseg.config import DAY, Settings
from streamseg.engine.changes import ChangeDetector
from streamseg.engine.events import Event
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine
from streamseg.engine.segmenters.base import Assignment


def buys(*days_: float) -> list[Event]:
    return [Event("purchase", "purchase", f"p{i}", "c1", d * DAY, amount=10.0)
            for i, d in enumerate(days_)]


def run(cfg: Settings, events: list[Event], until: float) -> list[tuple[Any, ...]]:
    eng = Engine(cfg)
    state: CustomerState | None = None
    out: list[dict[str, Any]] = []
    for ev in events:
        res = eng.apply(state, ev)
        state = res.state
        out += res.changes
    assert state is not None
    out += eng.tick(state, until * DAY).changes
    return [(c["from_segment"], c["to_segment"], c["trigger"], c["event_time"][:10])
            for c in out if c["segmenter"] == "frequency"]


# a buyer hovering on the weekly boundary: the gap average crosses 7 days back and forth
HOVER = buys(0, 6, 12, 21, 27, 33, 42, 48, 54, 63)


def test_without_dwell_every_crossing_is_published() -> None:
    assert run(Settings(min_dwell_s=0.0), HOVER, 64) == [
        (None, "low", "event", "1970-01-01"),
        ("low", "high", "event", "1970-01-07"),
        ("high", "medium", "clock", "1970-01-20"),  # 7 days + 1 s after the day-12 purchase
        ("medium", "high", "event", "1970-01-22"),
        ("high", "medium", "clock", "1970-02-10"),
        ("medium", "high", "event", "1970-02-18"),
        ("high", "medium", "clock", "1970-03-03"),
    ]


def test_dwell_suppresses_short_excursions() -> None:
    assert run(Settings(min_dwell_s=7 * DAY), HOVER, 64) == [
        (None, "low", "event", "1970-01-01"),
        ("low", "high", "clock", "1970-01-14"),  # pending since day 6, confirmed on day 13
        ("high", "medium", "clock", "1970-02-17"),
        ("medium", "high", "clock", "1970-02-25"),
    ]


def test_dwell_confirms_on_the_clock_at_since_plus_dwell() -> None:
    # weekly buyer who stops: medium is due at day 28 + 7 + 1 s, confirmed 7 days later
    assert run(Settings(min_dwell_s=7 * DAY), buys(0, 7, 14, 21, 28), 60) == [
        (None, "low", "event", "1970-01-01"),
        ("low", "high", "event", "1970-01-15"),  # pending since day 7, confirmed by the day-14 buy
        ("high", "medium", "clock", "1970-02-12"),  # day 35 + 1 s + 7 days
    ]


def test_detector_margin_and_dwell_rules() -> None:
    s = CustomerState.new("c", 0.0)
    d = ChangeDetector(min_dwell_s=10.0, min_margin=1.0)
    assert d.confirm(s, "cluster", Assignment("c1", "x", margin=0.2, model_version=1), 0.0) == (
        None, 1
    )  # a first assignment is never held back
    assert d.confirm(s, "cluster", Assignment("c2", "x", margin=0.5, model_version=1), 1.0) is None
    assert s.pending == {}  # a thin margin does not even start the dwell
    assert d.confirm(s, "cluster", Assignment("c2", "x", margin=1.5, model_version=2), 2.0) is None
    assert s.pending == {"cluster": ["c2", 2.0]}
    assert d.confirm(s, "cluster", Assignment("c1", "x", margin=3.0, model_version=2), 5.0) is None
    assert s.pending == {} and s.segments["cluster"] == ["c1", 0.0, 1, 2]  # version refreshed
    assert d.confirm(s, "cluster", Assignment("c2", "x", margin=1.5, model_version=2), 6.0) is None
    assert d.confirm(s, "cluster", Assignment("c2", "x", margin=1.5, model_version=2), 16.0) == (
        "c1", 2
    )
    assert s.segments["cluster"] == ["c2", 16.0, 2, 2]
