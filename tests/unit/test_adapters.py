"""The private Faust / aiokafka internals ``streamseg.adapters`` relies on are still there.

Each test exercises the real installed library object; a Faust or aiokafka
upgrade that moves one of them fails here, loudly, instead of in the worker.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
from faust import streams
from faust.transport.producer import ProducerBuffer
from faust.types.tuples import Message

from streamseg import adapters


class Event(SimpleNamespace):
    """Weak-referenceable, like ``faust.Event``."""


def test_use_event_sets_fausts_current_event() -> None:
    assert isinstance(streams._current_event, contextvars.ContextVar)
    event = Event(message=SimpleNamespace(partition=3))

    def inside() -> object:
        adapters.use_event(event)
        return streams.current_event()

    assert contextvars.copy_context().run(inside) is event


def test_kafka_client_is_the_aiokafka_producer_inside_fausts_producer() -> None:
    from faust.transport.drivers.aiokafka import Producer

    assert "_producer" in Producer.on_start.__code__.co_names  # set when Faust starts it
    client = object()
    assert adapters.kafka_client(SimpleNamespace(_producer=client)) is client
    assert adapters.kafka_client(SimpleNamespace()) is None


def test_send_now_internals_exist_on_the_real_aiokafka_producer() -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.producer.message_accumulator import MessageAccumulator, MessageBatch

    async def probe() -> None:
        producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", linger_ms=1000)
        acc = producer._message_accumulator
        assert isinstance(acc, MessageAccumulator)
        assert isinstance(acc._batches, dict)
        assert isinstance(acc._waiter_future, asyncio.Future)
        builder = acc.create_builder()
        batch = MessageBatch(("t", 0), builder, 60.0, 1.0)  # type: ignore[arg-type]
        assert batch._builder is builder and batch.remaining_linger()
        acc._batches[("t", 0)] = [batch]  # type: ignore[index]
        adapters.send_now(producer)  # runs on the real objects
        assert builder.closed() and batch.remaining_linger() is None
        assert acc._waiter_future.done()
        adapters.send_now(producer)  # an already woken sender is left alone

    asyncio.run(probe())


def test_drain_uses_the_faust_producer_buffer() -> None:
    assert hasattr(ProducerBuffer, "flush") and hasattr(ProducerBuffer, "size")

    class Buffer:
        size = 2

        async def flush(self) -> None:
            self.size -= 1

    buffer = Buffer()
    asyncio.run(adapters.drain(SimpleNamespace(buffer=buffer)))
    assert buffer.size == 0


def test_withhold_ack_makes_a_faust_message_ack_a_no_op() -> None:
    msg = Message("t", 0, 5, 0.0, 0, None, b"k", b"v", None)
    event = SimpleNamespace(message=msg)
    adapters.withhold_ack(event)
    consumer = SimpleNamespace(ack=lambda m: (_ for _ in ()).throw(AssertionError("acked")))
    assert msg.ack(consumer) is False  # type: ignore[arg-type]


def test_faust_still_hands_each_message_over_through_wait_first_with_the_flow_event() -> None:
    import inspect

    from faust.transport.consumer import Consumer

    source = inspect.getsource(Consumer._drain_messages)
    assert "await self.wait_first(" in source
    assert "callback(message), self.suspend_flow.wait()" in "".join(source.split("\n"
                                                                              )).replace(
        "  ", "").replace("( ", "(").replace("(callback", "(callback")
    assert "self.suspend_flow = Event()" in inspect.getsource(Consumer.__init__)
    from faust.transport import consumer as faust_consumer

    assert faust_consumer.Event is asyncio.Event


def test_lean_delivery_makes_no_task_when_the_hand_over_does_not_wait() -> None:
    import mode

    async def probe() -> None:
        svc = mode.Service()
        svc.suspend_flow = asyncio.Event()  # type: ignore[attr-defined]
        assert adapters.lean_delivery(svc) and not adapters.lean_delivery(svc)
        loop = asyncio.get_running_loop()
        made: list[object] = []
        create = loop.create_task

        def spy(coro: object, **kw: object) -> object:
            made.append(coro)
            return create(coro, **kw)  # type: ignore[arg-type]

        loop.create_task = spy  # type: ignore[assignment,method-assign]

        async def handover(x: int) -> int:
            return x + 1

        got = await svc.wait_first(handover(1), svc.suspend_flow.wait())  # type: ignore[attr-defined]
        assert (got.done, got.results, got.stopped) == ([got.done[0]], [2], False)
        assert made == []  # no task at all

        # a hand-over that waits: Faust's own wait_first finishes it
        gate: asyncio.Future[int] = loop.create_future()

        async def blocked() -> int:
            return await gate + 10

        loop.call_later(0.01, gate.set_result, 5)
        got = await svc.wait_first(blocked(), svc.suspend_flow.wait())  # type: ignore[attr-defined]
        assert got.results == [15] and made  # tasks: the original path

        # the flow is suspended while it waits: interrupted and cancelled, as before
        cancelled: list[bool] = []
        never: asyncio.Future[int] = loop.create_future()

        async def stuck() -> int:
            try:
                return await never
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

        loop.call_later(0.01, svc.suspend_flow.set)  # type: ignore[attr-defined]
        got = await svc.wait_first(stuck(), svc.suspend_flow.wait())  # type: ignore[attr-defined]
        await asyncio.sleep(0)
        assert got.results == [True] and len(got.done) == 1 and cancelled == [True]

        # suspended already: straight to Faust's wait_first
        made.clear()
        got = await svc.wait_first(handover(3), svc.suspend_flow.wait())  # type: ignore[attr-defined]
        assert made and 4 in got.results
        loop.create_task = create  # type: ignore[method-assign]

    asyncio.run(probe())


def test_drain_waits_for_the_record_faust_took_off_its_queue_but_has_not_handed_over() -> None:
    """Faust's buffer task takes a record before handing it over, and the hand-over can
    wait (a full client batch): the queue is empty while the record is not yet with the
    client. drain() must wait for it, or an offset commit can pass the changelog record."""
    assert hasattr(asyncio.Queue(), "_getters")

    async def probe() -> None:
        buffer = ProducerBuffer()
        buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
        release = asyncio.Event()
        sent: list[str] = []

        async def send_pending(fut: Any) -> None:
            if fut == "slow":
                await release.wait()
            sent.append(fut)

        buffer._send_pending = send_pending  # type: ignore[method-assign]
        await buffer.start()
        try:
            buffer.put("fast")  # type: ignore[arg-type]
            buffer.put("slow")  # type: ignore[arg-type]
            drained = asyncio.ensure_future(adapters.drain(SimpleNamespace(buffer=buffer)))
            for _ in range(10):
                await asyncio.sleep(0)
            assert buffer.size == 0 and sent == ["fast"]  # "slow" taken, not handed over
            assert not drained.done()
            release.set()
            await asyncio.wait_for(drained, 1.0)
            assert sent == ["fast", "slow"]
            await asyncio.wait_for(adapters.drain(SimpleNamespace(buffer=buffer)), 1.0)  # idle
        finally:
            await buffer.stop()

    asyncio.run(probe())


def test_forget_gap_drops_the_offsets_faust_would_commit_past() -> None:
    from faust.transport.consumer import Consumer

    assert "self._gap = defaultdict(IntervalTree)" in inspect.getsource(Consumer.__init__)
    assert "self._gap[tp]" in inspect.getsource(Consumer._add_gap)
    from intervaltree import IntervalTree

    gaps = {("t", 0): IntervalTree.from_tuples([(5, 7), (39, 62)]),
            ("t", 1): IntervalTree.from_tuples([(5, 7)])}
    consumer = SimpleNamespace(_gap=gaps)
    adapters.forget_gap(consumer, ("t", 0), 39)  # re-read from 39: a marker at 5-6 stays
    adapters.forget_gap(consumer, ("t", 2), 0)
    spans = {tp: [(i.begin, i.end) for i in sorted(tree)] for tp, tree in gaps.items()}
    assert spans == {("t", 0): [(5, 7)], ("t", 1): [(5, 7)]}
    assert ("t", 2) not in gaps


def test_partition_get_reads_one_partition_of_the_real_rocksdb_store(tmp_path: Path) -> None:
    app = faust.App("adapters-store", store="rocksdb://", tabledir=str(tmp_path),
                    broker="kafka://127.0.0.1:1")
    t = app.Table("state", partitions=4, key_type=bytes, value_type=bytes)
    t.data._db_for_partition(3).put(b"k", b"v")
    assert adapters.partition_get(t, 3, b"k") == b"v"
    assert adapters.partition_get(t, 0, b"k") is None  # no database open for partition 0
    assert 0 not in t.data._dbs  # and none is opened by asking


def test_the_app_makes_the_same_event_as_faust_and_faust_still_asks_the_app() -> None:
    # streamseg.app.App.create_event caches conf.Event: it must build what Faust's
    # own create_event builds, and Faust's topic decoder must still call it
    from faust.serializers.schemas import Schema

    from streamseg.app import App

    assert "create_event" in inspect.getsource(Schema.compile)
    assert list(inspect.signature(faust.App.create_event).parameters) == [
        "self", "key", "value", "headers", "message"]
    app = App("create-event-test", store="memory://", web_enabled=False)
    message = Message(topic="t", partition=1, offset=5, timestamp=0.0, timestamp_type=0,
                      headers=[], key=b"k", value=b"v", checksum=None)
    ours = app.create_event(b"k", b"v", [], message)
    theirs = faust.App.create_event(app, b"k", b"v", [], message)
    assert type(ours) is type(theirs) is app.conf.Event
    assert (ours.key, ours.value, ours.message, ours.app) == (
        theirs.key, theirs.value, theirs.message, app)
