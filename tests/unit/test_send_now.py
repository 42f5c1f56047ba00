"""``Ingest.send_now``: outputs the agent waits for do not wait for the producer linger."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from unit.ingest_harness import Harness

from streamseg.config import Settings


class Builder:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_send_now_closes_lingering_batches_and_wakes_the_sender() -> None:
    h = Harness(Settings())
    try:
        builders = [Builder(), Builder(), Builder()]
        waiter: asyncio.Future[None] = h.loop.create_future()
        acc = SimpleNamespace(
            _batches={"t-0": [SimpleNamespace(_builder=b) for b in builders[:2]],
                      "t-1": [SimpleNamespace(_builder=builders[2])]},
            _waiter_future=waiter,
        )
        h.app.app.producer._producer = SimpleNamespace(_message_accumulator=acc)
        h.ingest.send_now()
        assert [b.closed for b in builders] == [True, True, True]
        assert waiter.done()
        h.ingest.send_now()  # an already woken sender is left alone
    finally:
        h.close()


def test_send_now_without_a_kafka_client_is_a_no_op() -> None:
    h = Harness(Settings())
    try:
        h.ingest.send_now()
        assert not hasattr(h.app.app.producer, "_producer")
    finally:
        h.close()
