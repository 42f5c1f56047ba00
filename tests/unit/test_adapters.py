"""The private Faust / aiokafka internals ``streamseg.adapters`` relies on are still there.

Each test exercises the real installed library object; a Faust or aiokafka
upgrade that moves one of them fails here, loudly, instead of in the worker.
"""

from __future__ import annotations

import asyncio
import contextvars
from types import SimpleNamespace

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import MessageAccumulator, MessageBatch
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


def test_send_now_internals_exist_on_the_real_aiokafka_producer() -> None:
    async def probe() -> None:
        producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", linger_ms=1000)
        acc = producer._message_accumulator
        assert isinstance(acc, MessageAccumulator)
        assert isinstance(acc._batches, dict)
        assert isinstance(acc._waiter_future, asyncio.Future)
        batch = acc.create_builder()
        assert hasattr(batch, "close") and hasattr(MessageBatch, "__init__")
        assert "_builder" in MessageBatch.__init__.__code__.co_names or hasattr(
            MessageBatch, "_builder")
        adapters.send_now(SimpleNamespace(_producer=producer))  # runs on the real object
        assert acc._waiter_future.done()

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
