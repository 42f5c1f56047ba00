"""Time-driven transitions: each move happens at its own due time, whatever the tick spacing."""

from __future__ import annotations

from typing import Any

from streamseg.config import DAY, Settings
from streamseg.engine.events import Event
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine

CFG = Settings(rfm_min_samples=3, freq_high_margin_days=7.0, freq_medium_margin_days=14.0,
               freq_margin_purchases=0.0)


def story() -> list[Event]:
    evs = [Event("purchase", "purchase", f"p{i}", "c1", d * DAY, amount=20.0 * (i + 1),
                 channel="web", device="mobile") for i, d in enumerate((0, 5, 12, 20))]
    # a late return after a long silence
    evs.append(Event("click", "page_view", "v1", "c1", 300 * DAY, channel="app", device="mobile"))
    evs.append(Event("purchase", "purchase", "p9", "c1", 301 * DAY, amount=50.0))
    return evs


def run(tick_every_days: float | None) -> list[dict[str, Any]]:
    """Apply the story; between events tick every ``tick_every_days`` (None: never)."""
    eng = Engine(CFG)
    state: CustomerState | None = None
    out: list[dict[str, Any]] = []
    for ev in story():
        if state is not None and tick_every_days is not None:
            t = state.last_seen + tick_every_days * DAY
            while t < ev.ts:
                out += eng.tick(state, t).changes
                t += tick_every_days * DAY
        res = eng.apply(state, ev)
        state = res.state
        out += res.changes
    assert state is not None
    out += eng.tick(state, 700 * DAY).changes
    return out


def test_same_changes_whatever_the_ticks() -> None:
    never, daily, odd = run(None), run(1.0), run(13.7)
    assert never == daily == odd
    summary = [(c["segmenter"], c["to_segment"], c["trigger"], c["event_time"][:10])
               for c in never if c["trigger"] == "clock"]
    assert [c for c in summary if c[0] != "rfm"] == [  # (rfm: its own tests)
        ("lifecycle", "active", "clock", "1970-01-31"),  # first purchase + 30 d + 1 s
        # 4 purchases from day 0: the interval leaves a band at day 4 * its end
        ("frequency", "medium", "clock", "1970-02-26"),  # day 4 * (7 + 7) (high band) + 1 s
        ("lifecycle", "at_risk", "clock", "1970-04-21"),  # day 20 + 90 + 1 s
        ("frequency", "low", "clock", "1970-06-18"),  # day 4 * (28 + 14) (medium band) + 1 s
        ("frequency", "lapsed", "clock", "1970-07-20"),  # day 20 + 180 + 1 s
        ("lifecycle", "lapsed", "clock", "1970-07-20"),
        # back on day 300 (app click) and 301 (purchase): published at those events
        ("lifecycle", "active", "clock", "1970-11-28"),  # reactivated (day 301) + 30 d
        ("lifecycle", "at_risk", "clock", "1971-01-27"),
        ("frequency", "lapsed", "clock", "1971-04-27"),
        ("lifecycle", "lapsed", "clock", "1971-04-27"),
    ]
    events = [(c["segmenter"], c["to_segment"], c["event_time"][:10]) for c in never
              if c["trigger"] == "event" and c["segmenter"] != "rfm"]
    assert events[-3:] == [
        ("channel", "app", "1970-10-28"),
        ("frequency", "low", "1970-10-29"),  # mean gap 301 / 4 days
        ("lifecycle", "reactivated", "1970-10-29"),
    ]


def test_a_tick_never_goes_back_in_time() -> None:
    eng = Engine(CFG)
    state = eng.apply(None, story()[0]).state
    assert state is not None
    later = eng.tick(state, 200 * DAY).changes
    assert later and all(c["trigger"] == "clock" for c in later)
    assert eng.tick(state, 100 * DAY).changes == []
    assert eng.tick(state, 200 * DAY).changes == []


def test_withdrawn_customer_has_no_clock() -> None:
    eng = Engine(CFG)
    state = eng.apply(None, story()[0]).state
    assert state is not None
    out = eng.apply(state, Event("consent", "consent_withdrawn", "w1", "c1", 1.0))
    assert out.state is not None and eng.due(out.state) is None
    assert eng.tick(out.state, 400 * DAY).changes == []
