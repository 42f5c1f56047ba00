"""streamseg.aio: timed waits that cannot lose the worker's stop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from streamseg.aio import wait_event


def _cancel_as_the_event_is_set(wait: Callable[[asyncio.Event], Awaitable[object]]) -> str:
    """Cancel a task waiting on ``wait(event)`` in the same loop turn as the event is set."""

    async def scenario() -> str:
        event = asyncio.Event()

        async def body() -> str:
            await wait(event)
            return "returned"

        task = asyncio.ensure_future(body())
        for _ in range(3):
            await asyncio.sleep(0)  # the task is waiting now
        event.set()
        task.cancel()
        try:
            return await task
        except asyncio.CancelledError:
            return "cancelled"

    return asyncio.run(scenario())


def test_wait_event_keeps_a_cancellation_that_comes_with_the_event() -> None:
    assert _cancel_as_the_event_is_set(lambda ev: wait_event(ev, 10.0)) == "cancelled"


def test_the_python_3_11_wait_for_loses_it_which_is_why_wait_event_exists() -> None:
    """Pins the interpreter behaviour the module works around (gh-86296, fixed in 3.12):
    if this fails, ``asyncio.wait_for`` is safe here and the workaround can go."""
    got = _cancel_as_the_event_is_set(lambda ev: asyncio.wait_for(ev.wait(), 10.0))
    assert got == "returned"
