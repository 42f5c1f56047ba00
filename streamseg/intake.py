"""Natural batching of the ingest agent's stream: a batch is what has arrived, up to a size.

Faust's ``stream.take_events(n, within)`` yields when ``n`` events are buffered
or when ``within`` seconds have passed since it started waiting, whatever
arrived meanwhile: at a moderate rate every event waits for the window (a fixed
delay per batch, 50 ms by default), and the stream is not read while a batch is
processed. :func:`batches` yields as soon as the stream is idle instead:

* a collector task reads the stream (``stream.events()``, Faust's own acks
  off: ``enable_acks`` is public, what ``take_events`` sets too) into a queue of
  at most ``size`` events -- while the previous batch is processed, too;
* a batch is taken when the queue stops growing: Faust's stream iterator yields
  to the event loop after every event, so one loop turn without a new event
  means the stream has nothing ready; at most ``size`` events, and at most
  ``max_wait`` seconds of collecting while events keep coming;
* its events are acknowledged (``stream.ack``) only after the consumer of the
  batch returns: Faust commits no offset of a batch before it is processed.

Under a backlog the queue is full at once (batches of ``size``); at a trickle a
batch is the one event that came, handled at once. Public Faust APIs only.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any


async def batches(stream: Any, size: int, max_wait: float) -> AsyncIterator[list[Any]]:
    """Yield lists of events from ``stream``; acknowledge each list after it is handled."""
    loop = asyncio.get_running_loop()
    queue: deque[Any] = deque()
    arrived = asyncio.Event()
    room = asyncio.Event()
    room.set()
    failed: list[BaseException] = []
    stream.enable_acks = False  # acknowledged below, after the batch is handled

    async def collect() -> None:
        try:
            async for event in stream.events():
                queue.append(event)
                arrived.set()
                if len(queue) >= size:
                    room.clear()
                    await room.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the agent (Faust crashes it)
            failed.append(exc)
            arrived.set()

    collector = asyncio.ensure_future(collect())
    try:
        while True:
            await arrived.wait()
            if failed:
                raise failed[0]
            deadline = loop.time() + max_wait
            seen = -1
            while len(queue) != seen and len(queue) < size and loop.time() < deadline:
                seen = len(queue)
                await asyncio.sleep(0)  # one turn: the stream hands over what it has
            batch = [queue.popleft() for _ in range(min(size, len(queue)))]
            if not queue:
                arrived.clear()
            room.set()
            yield batch
            for event in batch:
                await stream.ack(event)
    finally:
        collector.cancel()
