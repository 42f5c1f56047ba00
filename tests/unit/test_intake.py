"""Natural batching (streamseg.intake): what has arrived, at once; acknowledged after handling."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from streamseg.intake import batches


class FakeStream:
    """The public surface ``batches`` uses: ``events()``, ``enable_acks``, ``ack()``.

    Like Faust's stream iterator it yields to the event loop after every event.
    """

    def __init__(self) -> None:
        self.queue: asyncio.Queue[int] = asyncio.Queue()
        self.enable_acks = True
        self.acked: list[int] = []

    async def events(self) -> Any:
        while True:
            await asyncio.sleep(0)
            yield await self.queue.get()

    async def ack(self, event: int) -> bool:
        self.acked.append(event)
        return True


def test_a_lone_event_is_handed_over_at_once_not_after_the_window() -> None:
    async def scenario() -> tuple[list[int], float]:
        stream = FakeStream()
        loop = asyncio.get_running_loop()
        gen = batches(stream, size=500, max_wait=30.0)
        stream.queue.put_nowait(1)
        started = loop.time()
        first = await asyncio.wait_for(gen.__anext__(), timeout=5.0)
        elapsed = loop.time() - started
        await gen.aclose()
        assert stream.enable_acks is False
        return first, elapsed

    first, elapsed = asyncio.run(scenario())
    assert first == [1]
    assert elapsed < 1.0


def test_ready_events_make_one_batch_up_to_the_size_and_acks_follow_the_handling() -> None:
    async def scenario() -> tuple[list[list[int]], list[list[int]]]:
        stream = FakeStream()
        for i in range(7):
            stream.queue.put_nowait(i)
        got, acked_before = [], []
        gen = batches(stream, size=3, max_wait=30.0)
        async for batch in gen:
            acked_before.append(list(stream.acked))  # nothing of this batch acked yet
            got.append(batch)
            if sum(map(len, got)) == 7:
                break
        await gen.aclose()
        return got, acked_before

    got, acked_before = asyncio.run(scenario())
    assert got == [[0, 1, 2], [3, 4, 5], [6]]
    assert acked_before == [[], [0, 1, 2], [0, 1, 2, 3, 4, 5]]


def test_with_an_idle_time_a_batch_waits_for_stragglers_up_to_it() -> None:
    async def scenario() -> list[int]:
        stream = FakeStream()
        stream.queue.put_nowait(1)

        async def later() -> None:
            await asyncio.sleep(0.01)
            stream.queue.put_nowait(2)  # a gap the one-turn rule would cut at

        feeder = asyncio.ensure_future(later())
        gen = batches(stream, size=500, max_wait=30.0, idle=1.0)
        first = await asyncio.wait_for(gen.__anext__(), timeout=5.0)
        await feeder
        await gen.aclose()
        return first

    assert asyncio.run(scenario()) == [1, 2]


def test_a_stop_swallowed_while_a_batch_is_handled_still_ends_the_batches() -> None:
    """A SIGTERM during a backlog cancels the agent while it handles a batch; if
    something below swallows that cancellation (Python 3.11's ``asyncio.wait_for``,
    streamseg.aio), the next batch must not be awaited forever."""

    async def scenario() -> str:
        stream = FakeStream()
        for i in range(3):
            stream.queue.put_nowait(i)
        handling = asyncio.Event()

        async def agent() -> None:
            async for _batch in batches(stream, size=2, max_wait=30.0):
                handling.set()
                with contextlib.suppress(asyncio.CancelledError):  # as 3.11's wait_for can
                    await asyncio.sleep(30)

        task = asyncio.ensure_future(agent())
        await handling.wait()
        task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=5.0)
        except asyncio.CancelledError:
            return "stopped"
        except TimeoutError:
            task.cancel()
            return "hung"
        return "returned"

    assert asyncio.run(scenario()) == "stopped"
