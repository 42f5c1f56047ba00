"""The private Faust / aiokafka internals ``streamseg.adapters`` relies on are still there.

Each test exercises the real installed library object; a Faust or aiokafka
upgrade that moves one of them fails here, loudly, instead of in the worker.
"""

from __future__ import annotations

import asyncio
import contextvars
from types import SimpleNamespace

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
