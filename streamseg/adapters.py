"""The only place that touches private Faust / aiokafka internals.

Each function below needs something the libraries do not expose publicly;
``tests/unit/test_adapters.py`` checks every attribute used here against the
installed versions (Faust 0.15.3, aiokafka 0.14.0) and fails loudly when one
moves, so an upgrade breaks a unit test instead of the worker.

* :func:`use_event` -- Faust reads and writes a table on the partition of the
  *current event* (a task-local context variable). A batch holds events of
  several partitions; before touching a customer's state the agent makes the
  event of that customer's partition current. Faust has no public setter.
* :func:`kafka_client` -- the aiokafka producer inside Faust's producer: the agent
  hands its outputs to it as whole record batches (aiokafka's public
  ``create_batch`` / ``send_batch``), not one ``Topic.send`` per record.
* :func:`send_now` -- close the Kafka client's lingering batches (Faust's table
  changelog) so they go out in the same produce request as the outputs the agent
  is about to wait for (aiokafka has one request in flight per broker; what its
  own ``flush_for_commit`` does before it waits).
* :func:`drain` -- hand Faust's buffered table-changelog records to the Kafka
  client (Faust's own flush gives up after 0.1 s without progress, and does not
  wait for the record its buffer task is handing over: ``asyncio.Queue``'s
  waiting getters tell whether that task is idle).
* :func:`lean_delivery` -- Faust's fetcher wraps the hand-over of every message
  to the streams in ``Service.wait_first`` (four tasks a message); the consumer's
  ``wait_first`` is wrapped so that a hand-over that does not wait makes none.
* :func:`withhold_ack` -- an event held back by the rebalance gate must not be
  acknowledged: Faust would count its offset towards the next commit.
* :func:`partition_get` -- a table read on one given partition outside an event: the
  lookup API must not take what Faust's store answers there (the first partition
  database that holds the key, which may be a consent copy's marker).
* :func:`forget_gap` -- when its fetcher hands over offset ``n + k`` after ``n``,
  Faust records ``n + 1 .. n + k`` as a gap (an ``IntervalTree`` per partition)
  and commits past it once a later offset is acknowledged; when the gate
  re-reads those offsets, that part of the gap must go.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import types
import weakref
from typing import Any

from faust import streams as _faust_streams
from mode.services import WaitResults

from streamseg import aio


def use_event(event: Any) -> None:
    """Make ``event`` Faust's current event (table reads and writes use its partition)."""
    _faust_streams._current_event.set(weakref.ref(event))


def partition_get(table: Any, partition: int, key: bytes) -> bytes | None:
    """The value of ``key`` in ``partition``'s database of ``table``'s RocksDB store.

    None when that partition has no database open here (not assigned) or no such key.
    A store without partition databases (``memory://``: one dict for every
    partition; a plain mapping in unit tests) answers its one value; the caller checks
    the partition the value records.
    """
    dbs = getattr(getattr(table, "data", None), "_dbs", None)
    if dbs is None:
        value: bytes | None = table.get(key)
        return value
    db = dbs.get(partition)
    return None if db is None else db.get(key)


def kafka_client(producer: Any) -> Any | None:
    """The started aiokafka producer of Faust's producer (None: not started, or a stand-in)."""
    return getattr(producer, "_producer", None)


def send_now(client: Any) -> None:
    """Close the aiokafka client's lingering batches and wake its sender."""
    acc = client._message_accumulator
    for batches in acc._batches.values():
        for batch in batches:
            batch._builder.close()
    if not acc._waiter_future.done():
        acc._waiter_future.set_result(None)


async def drain(producer: Any, timeout: float = 10.0) -> None:
    """Hand every record in Faust's producer buffer (table changelog) to the Kafka client.

    Faust's buffer task takes a record off its queue *before* handing it to the
    client, and the hand-over can wait (a full client batch): an empty queue is
    not yet "all handed over" (seen in 203 batches of one crash-test run).
    This waits for that last hand-over too, so the flush Faust does before it
    commits offsets (which waits for the client's records) covers every record.
    """
    buffer = producer.buffer
    while True:
        if buffer.size:
            await buffer.flush()
        elif _handing_over(buffer):
            buffer.message_sent.clear()
            # not asyncio.wait_for: on 3.11 it can swallow the worker's stop (streamseg.aio)
            if not await aio.wait_event(buffer.message_sent, timeout):
                return  # the buffer task is not running: nothing to wait for
        else:
            return


def _handing_over(buffer: Any) -> bool:
    """Whether Faust's buffer task holds a record it took off its queue (not waiting on it)."""
    pending = getattr(buffer, "pending", None)  # None: a stand-in buffer (tests)
    return pending is not None and not pending._getters


def withhold_ack(event: Any) -> None:
    """Keep Faust from acknowledging ``event`` (its offset must not be committed)."""
    event.message.acked = True


def forget_gap(consumer: Any, tp: Any, start: int) -> None:
    """Drop the offsets from ``start`` on that Faust recorded as skipped on ``tp``.

    They are being re-read. Gaps below ``start`` (a transaction marker already
    passed) stay: Faust needs them to commit past offsets that hold no record.
    """
    gaps = consumer._gap.get(tp)
    if gaps:
        gaps.chop(start, sys.maxsize)


def lean_delivery(consumer: Any) -> bool:
    """Deliver a message to the streams without four tasks per message, when nothing blocks.

    Faust's fetcher hands every message over with
    ``await self.wait_first(callback(message), self.suspend_flow.wait())``:
    ``Service.wait_first`` wraps the callback, the flow event and the
    service's stopped and crashed events in four tasks and an ``asyncio.wait``
    (about 30 us a message here, more than a stream's own work). This wraps the
    consumer's ``wait_first`` so that a call of exactly that shape, while the flow
    is not suspended, first runs the callback one step inline: when it finishes
    without waiting (a free stream queue, no flow control, no full producer
    buffer -- the usual case) that is the result and no task is made; when it
    waits, the started callback is handed to Faust's own ``wait_first`` with the
    flow event, so a rebalance still interrupts it exactly as before. Every
    other call goes to Faust's ``wait_first`` unchanged. Returns False when
    already installed.
    """
    if getattr(consumer, "_streamseg_lean", False):
        return False
    original = consumer.wait_first
    flow_wait = asyncio.Event.wait.__code__

    async def wait_first(*coros: Any, timeout: Any = None) -> Any:
        if (len(coros) != 2 or timeout is not None or consumer.suspend_flow.is_set()
                or getattr(coros[1], "cr_code", None) is not flow_wait
                or not inspect.iscoroutine(coros[0])):
            return await original(*coros, timeout=timeout)
        callback, flow = coros
        try:
            step = callback.send(None)
        except StopIteration as done:
            flow.close()
            return WaitResults([callback], [done.value], False)
        except BaseException:
            flow.close()  # never awaited now: close it (no "never awaited" warning)
            raise
        return await original(_finish(callback, step), flow)

    consumer.wait_first = wait_first
    consumer._streamseg_lean = True
    return True


async def _finish(coro: Any, step: Any) -> Any:
    """The rest of ``coro`` as a coroutine (``wait_first`` wraps it in a task)."""
    return await _resume(coro, step)


@types.coroutine
def _resume(coro: Any, step: Any) -> Any:
    """Go on driving ``coro``, which has run up to its first wait (``step`` yielded)."""
    while True:
        try:
            sent = yield step
        except BaseException as exc:  # cancellation and errors go into the callback
            try:
                step = coro.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                step = coro.send(sent)
            except StopIteration as done:
                return done.value
