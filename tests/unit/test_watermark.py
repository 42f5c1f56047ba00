"""Catching up on a backlog: clock moves wait for the slowest input still delivering.

Reviewer's defect: fed a backlog, the worker read one topic days of event time
ahead of the other; the event clock (the highest event time seen) passed
moments whose purchases were still unread, and customers were demoted by the
clock, then promoted back when their purchases arrived: two wrong changes that
replay (one file, in event-time order) never publishes.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from streamseg import codec
from streamseg.config import Settings
from streamseg.engine.clock import SourceWatermark
from streamseg.replay import Replayer, replay_lines
from tests.unit.ingest_harness import Harness

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def at(days: float) -> str:
    return (BASE + timedelta(days=days)).isoformat().replace("+00:00", "Z")


def buy(cid: str, days: float) -> dict[str, Any]:
    eid = f"{cid}-b{days:g}"
    return {"event_id": eid, "customer_id": cid, "type": "purchase", "ts": at(days),
            "order_id": eid, "amount": 20.0, "currency": "EUR"}


def view(cid: str, days: float) -> dict[str, Any]:
    return {"event_id": f"{cid}-v{days:g}", "customer_id": cid, "type": "page_view",
            "ts": at(days)}


def run_ticks(h: Harness) -> None:
    for partition, value in h.ingest.due_ticks():
        h.send("tick", None, value, partition=partition)


def read(h: Harness, records: list[dict[str, Any]]) -> None:
    """Hand ``records`` to the agent one by one, each followed by the due ticks."""
    for rec in records:
        h.send_json("purchase" if rec["type"] == "purchase" else "click", rec)
        run_ticks(h)


def replayed(settings: Settings, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``streamseg replay`` of ``records`` in event-time order."""
    lines = sorted((codec.dumps(r) for r in records), key=lambda raw: codec.loads(raw)["ts"])
    return list(replay_lines(lines, settings, replayer=Replayer(settings)))


def moves(records: list[dict[str, Any]], cid: str) -> list[tuple[Any, ...]]:
    return [(r["segmenter"], r["from_segment"], r["to_segment"], r["trigger"], r["event_time"])
            for r in records if r["customer_id"] == cid and r["kind"] != "suppression"]


def backlog(settings: Settings) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Another customer's clicks read 90 days of event time ahead of a buyer's later
    purchases (every 5 days). Returns (worker moves, replay moves) of the buyer."""
    purchases = [buy("w", d) for d in range(0, 101, 5)]  # every 5 days: high frequency
    clicks = [view("busy", d) for d in range(0, 101)]
    h = Harness(settings)
    try:
        read(h, purchases[:3])  # the buyer's first purchases (days 0-10)...
        read(h, clicks)  # ...then the clicks topic, read 90 days ahead
        read(h, purchases[3:])  # the rest of the purchases topic
        worker = moves(h.app.changes.values(), "w")
    finally:
        h.close()
    return worker, moves(replayed(settings, [*purchases, *clicks]), "w")


def test_purchases_read_late_cause_no_clock_move_that_replay_does_not_publish() -> None:
    worker, replay = backlog(Settings(allowed_lateness_s=0.0, source_idle_s=60.0))
    assert [m for m in worker if m[3] == "clock"] == [m for m in replay if m[3] == "clock"]
    assert worker == replay
    # the old clock (the highest event time seen, source_idle_s=0) demoted the buyer
    old, _ = backlog(Settings(allowed_lateness_s=0.0, source_idle_s=0.0))
    assert ("frequency", "high", "medium", "clock") in [m[:4] for m in old]


def test_an_assignment_holds_the_clock_until_each_new_input_delivered_or_went_idle() -> None:
    w = SourceWatermark(idle_s=5.0)
    w.assign([("clicks", 0), ("purchases", 0)], at=100.0)
    w.observe(("clicks", 0), 50.0, at=101.0)
    assert w.cap(at=101.0) == -math.inf  # purchases-0: progress unknown, holds everything
    assert w.cap(at=105.5) == 50.0  # purchases-0 silent for 5 s: idle, no longer holds
    w.observe(("purchases", 0), 40.0, at=106.0)
    assert w.cap(at=106.0) == 40.0
    # a rebalance: kept inputs keep their progress, lost ones are forgotten, new ones hold
    w.assign([("purchases", 0), ("clicks", 1)], at=107.0)
    assert set(w.sources) == {("purchases", 0), ("clicks", 1)}
    assert w.cap(at=107.0) == -math.inf
    w.observe(("clicks", 1), 45.0, at=108.0)
    assert w.cap(at=108.0) == 40.0
    assert SourceWatermark(idle_s=0.0).cap(at=1.0) is None  # nothing assigned: no cap
    off = SourceWatermark(idle_s=0.0)
    off.observe(("clicks", 0), 10.0, at=1.0)
    assert off.cap(at=1.0) == 10.0 and off.cap(at=1.1) is None  # idle 0: never holds for long


def test_a_rebalance_longer_than_the_idle_time_does_not_let_the_clock_pass_unread_input() -> None:
    """Reviewer's defect: re-assigned after a rebalance that outlasted ``source_idle_s`` (the
    group waiting out a killed member), the purchases partition counted as idle from its last
    event *before* the rebalance, so the clicks read first moved the clock past its unread
    purchases and the buyer was demoted by the clock, then promoted back: two wrong changes."""
    import time
    settings = Settings(allowed_lateness_s=0.0, source_idle_s=1.0)
    purchases = [buy("w", d) for d in range(0, 101, 5)]
    clicks = [view("busy", d) for d in range(0, 101)]
    h = Harness(settings)
    tps = [SimpleNamespace(topic=settings.topic_clickstream, partition=0),
           SimpleNamespace(topic=settings.topic_purchases, partition=0)]
    try:
        h.ingest.on_assigned(tps, {})
        read(h, [*purchases[:3], *clicks[:11]])  # both inputs read up to day 10
        time.sleep(1.1)  # the group re-forms: longer than source_idle_s
        h.ingest.on_assigned(tps, {})
        started = time.monotonic()
        read(h, clicks[11:])  # the clicks partition's backlog is read first
        assert time.monotonic() - started < 1.0, "too slow to test the idle time"
        read(h, purchases[3:])
        worker = moves(h.app.changes.values(), "w")
    finally:
        h.close()
    replay = moves(replayed(settings, [*purchases, *clicks]), "w")
    assert [m for m in worker if m[3] == "clock"] == [m for m in replay if m[3] == "clock"]
    assert worker == replay


def test_input_held_by_the_gate_keeps_its_source_active() -> None:
    w = SourceWatermark(idle_s=5.0)
    w.assign([("clicks", 0), ("purchases", 0)], at=0.0)
    w.observe(("purchases", 0), 10.0, at=1.0)
    w.observe(("clicks", 0), 900.0, at=1.0)
    w.touch(("purchases", 0), at=5.5)  # held, unread: delivering, no progress
    assert w.cap(at=9.0) == 10.0
    w.touch(("ticks", 0), at=9.0)  # not an assigned input: ignored
    assert set(w.sources) == {("clicks", 0), ("purchases", 0)}
    assert w.cap(at=11.0) is None  # both silent for 5 s


def test_a_tick_from_the_previous_owner_does_not_pass_this_workers_clock() -> None:
    """Reviewer's defect (two workers, kill -9): after a rebalance the new owner re-reads the
    ticks its predecessor sent, stamped with the predecessor's clock, which covered purchases
    the new owner has not read yet; a tick was evaluated at ``max(tick, own clock)`` and the
    clock demoted the customer before its purchase."""
    settings = Settings(allowed_lateness_s=0.0, source_idle_s=60.0)
    h = Harness(settings)
    tps = [SimpleNamespace(topic=settings.topic_clickstream, partition=0),
           SimpleNamespace(topic=settings.topic_purchases, partition=0)]
    try:
        h.ingest.on_assigned(tps, {})
        read(h, [*(buy("w", d) for d in range(0, 11, 5)), view("busy", 10)])
        assert h.state("w").segments["frequency"][0] == "high"  # type: ignore[union-attr]
        ahead = (BASE + timedelta(days=40)).timestamp()  # the predecessor had read this far
        h.send("tick", None, codec.dumps({"now": ahead}))
        assert moves(h.app.changes.values(), "w")[-1][:3] == ("frequency", "one_time", "high")
        assert h.state("w").segments["frequency"][0] == "high"  # type: ignore[union-attr]
    finally:
        h.close()
