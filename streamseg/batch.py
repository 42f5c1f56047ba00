"""One batch of the ingest agent: its read-your-own-writes cache, its outputs, its flush.

The order of :func:`flush` is the guarantee (docs/RELIABILITY.md): outputs are
handed to the producer together (:func:`deliver`: one record batch per topic
partition) and acknowledged once; then each touched state
and partition clock is written once; then Faust's changelog buffer is drained;
only after that does Faust acknowledge the batch's events (offsets commit after
the changelog).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from streamseg import adapters, codec
from streamseg.app import Streamseg
from streamseg.engine.features import CustomerState
from streamseg.metrics import Metrics
from streamseg.partitions import home
from streamseg.punctuator import COPY, PARTITION, POSITIONS, Punctuator, clock_key


@dataclass(slots=True)
class Entry:
    """One customer's state within a batch (read once, written once)."""

    event: Any  # an event of the state's partition: current when the state is written
    raw: bytes | None  # the table value as read
    state: CustomerState | None
    positions: dict[str, int]
    dirty: bool = False
    copy: bool = False  # a marker only a consent copy created (not counted as a customer)
    rewrite: bool = False  # write even if unchanged (a re-delivered input: see Applier.on_input)


@dataclass(slots=True)
class Output:
    topic: Any
    key: bytes | None
    value: bytes | None
    partition: int | None = None
    headers: dict[str, bytes] | None = None


@dataclass
class Batch:
    entries: dict[tuple[int, bytes], Entry] = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)
    counts: list[tuple[str, str]] = field(default_factory=list)
    clocks: dict[int, Any] = field(default_factory=dict)  # partition -> an event of it
    event_time: float | None = None  # of the last input applied (the lag gauge)
    # the event time ticks may reach (Punctuator.now) when the batch began: a late event
    # is evaluated there (Engine.apply); None: no clock yet
    look: float | None = None
    shared: set[int] = field(default_factory=set)  # partitions that took a re-score share


async def deliver(ss: Streamseg, outputs: list[Output]) -> list[Awaitable[Any]]:
    """Hand ``outputs`` to the producer in order; the futures of their delivery.

    With Faust's Kafka client: one closed aiokafka record batch per (topic,
    partition), public ``create_batch`` / ``send_batch`` (no ``Topic.send``
    machinery per record, and no producer linger: a closed batch goes out at
    once; the table-changelog batches still lingering are closed with them,
    :func:`adapters.send_now`). A record without a partition goes where the client's default
    partitioner puts it (murmur2 of the key, as ``Topic.send`` did; a key-less
    one to any partition). Records of one partition keep their order. Without a
    Kafka client (a stand-in transport): one ``topic.send`` per record.
    """
    client = adapters.kafka_client(ss.app.producer)
    if client is None:
        return [await out.topic.send(key=out.key, value=out.value, partition=out.partition,
                                     headers=out.headers) for out in outputs]
    # the records still lingering (the previous batch's table changelog, a timer's tick)
    # go in the same produce request: aiokafka has one request in flight per broker, so
    # a changelog request sent on its own after its linger delays the next outputs; and
    # ``send_batch`` to a partition with a lingering batch would wait for its linger.
    # The sender runs only when this task yields (normally after the outputs are queued
    # too, or when one waits for a partition's earlier batch), so it takes them together.
    adapters.send_now(client)
    pending: list[Awaitable[Any]] = []
    builders: dict[tuple[str, int], Any] = {}
    partitions: dict[str, list[int]] = {}
    for out in outputs:
        topic = out.topic.get_topic_name()
        p = out.partition
        if p is None:
            parts = partitions.get(topic)
            if parts is None:
                parts = partitions[topic] = sorted(await client.partitions_for(topic))
            p = parts[home(out.key, len(parts)) if out.key is not None else
                      random.randrange(len(parts))]
        headers = list(out.headers.items()) if out.headers else []
        builder = builders.get((topic, p))
        if builder is None:
            builder = builders[topic, p] = client.create_batch()
        while builder.append(timestamp=None, key=out.key, value=out.value,
                             headers=headers) is None:  # full: send it, start the next
            builder.close()
            pending.append(await client.send_batch(builder, topic, partition=p))
            builder = builders[topic, p] = client.create_batch()
    for (topic, p), builder in builders.items():
        builder.close()
        pending.append(await client.send_batch(builder, topic, partition=p))
    return pending


async def flush(ss: Streamseg, batch: Batch, punctuator: Punctuator, metrics: Metrics) -> None:
    """Outputs, acknowledged once; then states and clocks; then the changelog drained."""
    confirm = ss.settings.confirm_outputs
    pending = await deliver(ss, batch.outputs) if batch.outputs else []
    if confirm and pending:
        # Outputs first and acknowledged, then the states that record them: a crash
        # in between replays the inputs on the old states and re-sends the same
        # change ids (duplicates); the other order loses them (docs/RELIABILITY.md).
        for delivered in pending:
            # shielded: a worker stopping mid-batch cancels this task, and awaiting
            # the send future directly would cancel the send itself (Faust then logs
            # a CancelledError traceback); the producer's stop flush still delivers it
            await asyncio.shield(delivered)
    wrote = False
    for (p, key), entry in batch.entries.items():
        if entry.dirty:
            wrote |= write(ss, metrics, p, key, entry)
    for p, event in batch.clocks.items():
        part = punctuator.part(p)
        if part.clock is not None and part.clock != part.stored_clock:
            adapters.use_event(event)
            ss.clocks[clock_key(p)] = codec.dumps(part.clock)
            part.stored_clock = part.clock
            wrote = True
    if confirm and wrote:
        await adapters.drain(ss.app.producer)


def write(ss: Streamseg, metrics: Metrics, p: int, key: bytes, entry: Entry) -> bool:
    """Write one state (or delete it); False when the table value is unchanged."""
    adapters.use_event(entry.event)
    if entry.state is None:
        if entry.raw is None:
            return False
        del ss.state[key]
        metrics.table_customers.dec()
        return True
    data = entry.state.to_dict()
    data[PARTITION] = p
    data[POSITIONS] = entry.positions
    if entry.copy:
        data[COPY] = True
    value = codec.dumps(data)
    if value == entry.raw and not entry.rewrite:
        return False  # unchanged (a tick that moved nothing): no table write
    if entry.raw is None and not entry.copy:
        metrics.table_customers.inc()
    ss.state[key] = value
    return True
