"""The schedule rebuild after an assignment hands the event loop back (``Punctuator``).

Restoring a customer costs about 70 us; in one call a worker owning a few hundred
thousand customers stalled its event loop (Faust's web server and timers) for tens
of seconds at every rebalance. The clock timer now rebuilds in slices; a new
assignment during the rebuild abandons it; batches wait for it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streamseg import punctuator as punct_mod
from tests.unit.test_edge_batch import buy, harness

CUSTOMERS = 6


def filled() -> Any:
    """A harness whose table holds CUSTOMERS customers on partitions 0-3, to be rebuilt."""
    h, _ = harness()
    for i in range(CUSTOMERS):
        h.send("purchase", f"c{i}".encode(), buy(f"e{i}", f"c{i}", float(i)), partition=i % 4)
    h.ingest.punctuator.assign({0, 1, 2, 3})  # an assignment: schedules refilled at the timer
    return h


def scheduled(h: Any) -> dict[int, dict[str, float]]:
    """Per partition: customer -> due time (the schedule's own map)."""
    return {p: dict(s.schedule._due) for p, s in sorted(h.ingest.parts.items())}


def test_the_timer_rebuilds_in_slices_and_the_loop_runs_between_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(punct_mod, "REBUILD_SLICE_S", -1.0)  # a pause before every customer
    h = filled()
    try:
        turns: list[bool] = []

        async def scenario() -> None:
            timer = asyncio.ensure_future(h.ingest.timer_ticks())

            async def beat() -> None:  # another task of the loop (Faust's web server, a timer)
                while not timer.done():
                    turns.append(h.ingest.punctuator.rebuild)
                    await asyncio.sleep(0)

            await asyncio.gather(timer, beat())

        h.loop.run_until_complete(scenario())
        assert len(turns) >= CUSTOMERS  # the loop ran while the rebuild went on
        assert not h.ingest.punctuator.rebuild
        sliced = scheduled(h)
    finally:
        h.close()
    whole = filled()
    try:
        whole.ingest.punctuator.reschedule()  # all at once: the same schedules
        assert scheduled(whole) == sliced
        assert sum(len(v) for v in sliced.values()) == CUSTOMERS
    finally:
        whole.close()


def test_an_assignment_during_the_rebuild_abandons_it_and_the_next_timer_run_redoes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(punct_mod, "REBUILD_SLICE_S", -1.0)
    h = filled()
    try:
        punct = h.ingest.punctuator

        async def scenario() -> list[tuple[int, bytes]]:
            timer = asyncio.ensure_future(h.ingest.timer_ticks())
            for _ in range(3):
                await asyncio.sleep(0)
            assert not timer.done()
            punct.assign({0, 1})  # a rebalance: partitions 2 and 3 went elsewhere
            return await timer

        assert h.loop.run_until_complete(scenario()) == []  # abandoned, nothing ticked
        assert punct.rebuild  # still to do
        h.loop.run_until_complete(h.ingest.timer_ticks())  # the next run rebuilds it
        assert not punct.rebuild
        owned = {cid for due in scheduled(h).values() for cid in due}
        assert owned == {f"c{i}" for i in range(CUSTOMERS) if i % 4 in (0, 1)}
        assert set(h.ingest.parts) <= {0, 1}
    finally:
        h.close()


def test_a_batch_waits_for_the_rebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(punct_mod, "REBUILD_SLICE_S", -1.0)
    h = filled()
    try:
        order: list[str] = []

        async def scenario() -> None:
            timer = asyncio.ensure_future(h.ingest.timer_ticks())
            await asyncio.sleep(0)
            batch = asyncio.ensure_future(h.ingest.handle_batch(
                [h.message("purchase", b"late", buy("l1", "late", 10.0), partition=0)]))
            timer.add_done_callback(lambda _: order.append("rebuild"))
            batch.add_done_callback(lambda _: order.append("batch"))
            await asyncio.gather(timer, batch)

        h.loop.run_until_complete(scenario())
        assert order == ["rebuild", "batch"]
        assert "late" in scheduled(h)[0]
    finally:
        h.close()

