"""Natural batching of the ingest agent's stream: a batch is what has arrived, up to a size.

Faust's ``stream.take_events(n, within)`` yields when ``n`` events are buffered
or when ``within`` seconds have passed since it started waiting, whatever
arrived meanwhile: at a moderate rate every event waits for the window (a fixed
delay per batch, 50 ms by default), and the stream is not read while a batch is
processed. :func:`batches` yields as soon as the stream is idle instead:

* a collector task reads the stream (``stream.events()``, Faust's own acks
  off: ``enable_acks`` is public, what ``take_events`` sets too) into a queue of
  at most ``size`` events -- while the previous batch is processed, too;
* a batch is taken when the queue stops growing: by default (``idle`` 0) when
  one event-loop turn adds nothing, i.e. the batch is what arrived while the
  previous one was processed (the collector never stops reading). ``idle`` > 0
  waits that long for a next event first: at a steady rate with gaps shorter
  than ``idle`` a batch then ends only at ``max_wait`` (measured at 2,000
  events/s: 2 ms idle gave 100+ events a batch and p50 57 ms event -> change,
  one turn 12 a batch and p50 10 ms, with the same throughput on a backlog
  since the per-event hand-over got cheaper, ``adapters.lean_delivery``). At most
  ``size`` events, and at most ``max_wait`` seconds of collecting while events
  keep coming;
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

from streamseg import aio


async def batches(stream: Any, size: int, max_wait: float,
                  idle: float = 0.0) -> AsyncIterator[list[Any]]:
    """Yield lists of events from ``stream``; acknowledge each list after it is handled.

    A batch ends when ``idle`` seconds pass without a new event (0: one loop turn),
    when it holds ``size`` events, or after ``max_wait`` seconds of collecting.
    """
    loop = asyncio.get_running_loop()
    queue: deque[Any] = deque()
    arrived = asyncio.Event()
    grew = asyncio.Event()
    room = asyncio.Event()
    room.set()
    failed: list[BaseException] = []
    stream.enable_acks = False  # acknowledged below, after the batch is handled

    async def collect() -> None:
        try:
            async for event in stream.events():
                queue.append(event)
                arrived.set()
                grew.set()
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
            while len(queue) < size and loop.time() < deadline:
                seen = len(queue)
                await asyncio.sleep(0)  # one turn: the stream hands over what it has
                if len(queue) > seen:
                    continue
                if idle <= 0.0:
                    break
                grew.clear()  # nothing this turn: wait a little for the next one
                if not await aio.wait_event(grew, idle):
                    break
            batch = [queue.popleft() for _ in range(min(size, len(queue)))]
            if not queue:
                arrived.clear()
            room.set()
            yield batch
            for event in batch:
                await stream.ack(event)
            # a stop that something in the handling swallowed: stop now, or wait
            # for a next batch that never comes (streamseg.aio)
            aio.reraise_cancel()
    finally:
        collector.cancel()
