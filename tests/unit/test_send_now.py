"""``adapters.send_now``: outputs the agent waits for do not wait for the producer linger."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from streamseg import adapters


class Builder:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_send_now_closes_lingering_batches_and_wakes_the_sender() -> None:
    loop = asyncio.new_event_loop()
    try:
        builders = [Builder(), Builder(), Builder()]
        waiter: asyncio.Future[None] = loop.create_future()
        acc = SimpleNamespace(
            _batches={"t-0": [SimpleNamespace(_builder=b) for b in builders[:2]],
                      "t-1": [SimpleNamespace(_builder=builders[2])]},
            _waiter_future=waiter,
        )
        producer = SimpleNamespace(_producer=SimpleNamespace(_message_accumulator=acc))
        adapters.send_now(producer)
        assert [b.closed for b in builders] == [True, True, True]
        assert waiter.done()
        adapters.send_now(producer)  # an already woken sender is left alone
    finally:
        loop.close()


def test_send_now_without_a_kafka_client_is_a_no_op() -> None:
    adapters.send_now(SimpleNamespace(buffer=None))
