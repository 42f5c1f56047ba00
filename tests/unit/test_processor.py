"""The engine's entry points, end to end without Kafka; outputs checked against the schemas."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamseg.config import DAY, Settings
from streamseg.engine.events import Event
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine

Check = Callable[[str, Any], None]


def buy(eid: str, day: float, amount: float = 10.0, cid: str = "c1") -> Event:
    return Event("purchase", "purchase", eid, cid, day * DAY, amount=amount)


def run(engine: Engine, events: list[Event]) -> tuple[CustomerState | None, list[dict[str, Any]]]:
    state: CustomerState | None = None
    changes: list[dict[str, Any]] = []
    for ev in events:
        out = engine.apply(state, ev)
        state = out.state
        changes.extend(out.changes)
    return state, changes


def test_weekly_buyer_moves_up_then_clock_moves_down(assert_schema: Check) -> None:
    eng = Engine(Settings(hysteresis=False))  # every crossing is a change
    state, changes = run(eng, [buy(f"p{i}", 7.0 * i) for i in range(6)])  # days 0..35
    assert [(c["segmenter"], c["from_segment"], c["to_segment"]) for c in changes] == [
        ("frequency", None, "one_time"),
        ("lifecycle", None, "new"),
        ("frequency", "one_time", "high"),
        ("lifecycle", "new", "active"),
    ]
    assert [c["sequence"] for c in changes] == [1, 1, 2, 2]
    for change in changes:
        assert_schema("segment-change", change)
    assert state is not None
    timeline = []
    # 6 purchases from day 0: interval max(7, day / 6) leaves high after day 42, medium
    # after day 168; lifecycle at_risk after day 35 + 90, both lapse after 35 + 180
    for day in (42, 43, 130, 168, 169, 216):
        out = eng.tick(state, day * DAY)
        timeline += [(day, c["segmenter"], c["to_segment"], c["trigger"]) for c in out.changes]
        for change in out.changes:
            assert_schema("segment-change", change)
        if out.segments is not None:
            assert_schema("customer-segments", out.segments)
    assert timeline == [
        (43, "frequency", "medium", "clock"),
        (130, "lifecycle", "at_risk", "clock"),
        (169, "frequency", "low", "clock"),
        (216, "frequency", "lapsed", "clock"),
        (216, "lifecycle", "lapsed", "clock"),
    ]


def test_change_ids_are_deterministic_across_runs() -> None:
    events = [buy("a", 0), buy("b", 3), buy("c", 40, cid="c2"), buy("d", 50)]
    _, first = run(Engine(Settings()), events)
    _, second = run(Engine(Settings()), events)
    assert [c["change_id"] for c in first] == [c["change_id"] for c in second]
    assert len({c["change_id"] for c in first}) == len(first)


def test_duplicates_and_withdrawn_consent_are_counted_skips() -> None:
    eng = Engine(Settings())
    out = eng.apply(None, buy("p1", 0))
    assert eng.apply(out.state, buy("p1", 0)).skipped == "duplicate"
    withdrawn = eng.apply(
        out.state, Event("consent", "consent_withdrawn", "w1", "c1", 1 * DAY)
    )
    assert withdrawn.state is not None and withdrawn.state.withdrawn
    skipped = eng.apply(withdrawn.state, buy("p2", 2))
    assert (skipped.skipped, skipped.changes) == ("no_consent", [])
    assert skipped.state is not None and skipped.state.purchases == 1
    assert eng.tick(withdrawn.state, 400 * DAY).changes == []
    regranted = eng.apply(withdrawn.state, Event("consent", "consent_granted", "g1", "c1", 3 * DAY))
    assert regranted.state is not None and not regranted.state.withdrawn


def test_a_purchase_and_a_click_with_the_same_id_are_two_events() -> None:
    """Event ids are unique per input stream: two systems numbering their own records
    (clicks 1001, 1002, ...; orders 1001, ...) must not lose the purchase as a duplicate."""
    eng = Engine(Settings())
    click = Event("click", "page_view", "1001", "c1", 0.0)
    out = eng.apply(None, click)
    bought = eng.apply(out.state, buy("1001", 0.01))
    assert bought.skipped is None
    assert bought.state is not None and bought.state.purchases == 1
    assert eng.apply(bought.state, buy("1001", 0.02)).skipped == "duplicate"
    assert eng.apply(bought.state, click).skipped == "duplicate"


def test_erasure_drops_state() -> None:
    eng = Engine(Settings())
    out = eng.apply(None, buy("p1", 0))
    erased = eng.apply(out.state, Event("consent", "erasure_requested", "x", "c1", 1.0))
    assert (erased.erased, erased.changes) == (True, [])
    # only a suppression marker stays: withdrawn, no features, no segments
    marker = erased.state
    assert marker is not None and marker.withdrawn
    assert (marker.events, marker.purchases, marker.segments, marker.recent_ids) == (0, 0, {}, [])


def test_segments_record_lists_every_segmenter(assert_schema: Check) -> None:
    eng = Engine(Settings())
    out = eng.apply(None, buy("p1", 0, amount=99.0))
    assert out.segments is not None
    assert_schema("customer-segments", out.segments)
    assert {k: v["segment"] for k, v in out.segments["segments"].items()} == {
        "frequency": "one_time",
        "lifecycle": "new",
    }
    assert out.segments["segments"]["lifecycle"]["name"] == "New customer"
