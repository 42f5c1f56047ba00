"""An idle customer is ticked once per due time, not on every timer run.

Regression: after a tick that changed nothing, ``Ingest.emit`` (now
``Emitter.outcome``) rescheduled the customer at ``Engine.due(state)``, computed
from ``floor(state)``, which such a tick does not advance: the same (past) due
time came back and the customer was ticked again on every run of the clock
timer, forever.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from unit.ingest_harness import Harness

from streamseg.config import DAY, Settings
from streamseg.engine.events import Event
from streamseg.engine.processor import Engine

BASE = datetime(2026, 1, 1, tzinfo=UTC)
# source_idle_s=0: another customer's event moves the clock at once (no input holds it back)
CFG = Settings(max_future_skew_s=365 * DAY, allowed_lateness_s=0.0, source_idle_s=0.0)


def at(days: float) -> str:
    return (BASE + timedelta(days=days)).isoformat()


def buy(eid: str, cid: str, days: float) -> dict[str, Any]:
    return {"event_id": eid, "customer_id": cid, "ts": at(days), "order_id": eid,
            "amount": 20.0, "currency": "EUR"}


HELD = Settings(max_future_skew_s=365 * DAY, allowed_lateness_s=0.0, lifecycle_margin_days=10.0,
                source_idle_s=0.0)


def visit(eid: str, cid: str, days: float) -> dict[str, Any]:
    return {"event_id": eid, "customer_id": cid, "ts": at(days), "type": "page_view"}


def run_ticks(h: Harness) -> list[bytes]:
    """One run of the clock timer: the customers it has due (each partition tick is handled)."""
    out: list[bytes] = []
    for partition, value in h.ingest.due_ticks():
        part = h.ingest.parts[partition]
        out += sorted(c.encode() for c in part.ready | set(part.rescore))
        h.send("tick", None, value, partition=partition)
    return out


def test_a_tick_that_changes_nothing_is_not_due_again_at_once() -> None:
    h = Harness(HELD)
    try:
        h.send_json("click", visit("v1", "c1", 0.0))
        # the clock moves past c1's first due time (90 days + 1 s: prospect ->
        # inactive_prospect, held by the 10-day lifecycle margin) while the
        # published segments stay the same
        h.send_json("purchase", buy("e2", "c2", 90.5))
        assert run_ticks(h) == [b"c1"]
        assert h.app.changes.values()[-1]["customer_id"] == "c2"  # the tick changed nothing
        # the clock has not moved: nobody is due, however often the timer runs
        assert [run_ticks(h) for _ in range(3)] == [[], [], []]
        assert h.count("tick", "processed") == 1.0
        # the next due time comes when the clock passes it
        h.send_json("purchase", buy("e3", "c2", 101.0))
        assert run_ticks(h) == [b"c1"]
        assert h.app.changes.values()[-1]["to_segment"] == "inactive_prospect"
        assert run_ticks(h) == []
    finally:
        h.close()


def test_due_after_a_tick_is_strictly_after_the_tick_time() -> None:
    eng = Engine(HELD)
    out = eng.apply(None, Event("click", "page_view", "v1", "c1", 0.0))
    assert out.state is not None
    first = eng.due(out.state)
    assert first == out.due == 90 * DAY + 1.0 and out.due_known  # prospect -> inactive (held)
    tick = eng.tick(out.state, first + 100.0)
    assert tick.state is not None and tick.changes == [] and tick.at == first + 100.0
    assert eng.due(tick.state) == first  # floor(state) did not move
    assert eng.due(tick.state, tick.at) == tick.due == 100 * DAY + 1.0  # the end of the hold


class CountingTable(dict[bytes, bytes]):
    """The state table, counting writes."""

    writes = 0

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes += 1
        super().__setitem__(key, value)


def test_a_tick_that_changes_nothing_writes_no_state() -> None:
    h = Harness(HELD)
    try:
        table = CountingTable()
        h.app.state = table
        h.send_json("click", visit("v1", "c1", 0.0))
        h.send_json("purchase", buy("e2", "c2", 90.5))
        assert table.writes == 2
        before = table[b"c1"]
        assert run_ticks(h) == [b"c1"]  # evaluated, nothing moved
        assert table.writes == 2 and table[b"c1"] == before
        assert h.count("tick", "processed") == 1.0
        # a tick that does change the state is written
        h.send_json("purchase", buy("e3", "c2", 200.0))
        assert run_ticks(h) == [b"c1"]
        assert table.writes == 4 and table[b"c1"] != before
        assert h.app.changes.values()[-1]["customer_id"] == "c1"
    finally:
        h.close()
