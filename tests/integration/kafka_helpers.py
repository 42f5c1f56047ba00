"""Small async helpers for integration tests against the real local broker.

They talk to Kafka directly with aiokafka, independently of streamseg and
Faust, so that a test can feed input topics and read output topics the way an
external producer / subscriber would.

    topic = unique_name("clickstream")
    await create_topics(bootstrap, [topic], partitions=3)
    await produce(bootstrap, topic, [(b"42", b'{"type": "page_view"}')])
    records = await consume_all(bootstrap, topic, expected_count=1)
    assert records[0].key == b"42"
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code


class Record(NamedTuple):
    """One consumed message; unpacks as ``(key, value, partition, offset)``."""

    key: bytes | None
    value: bytes | None
    partition: int
    offset: int


def unique_name(prefix: str) -> str:
    """A topic / group name no other test (or earlier run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def create_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int = 1,
    compacted: Iterable[str] = frozenset(),
    configs: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> None:
    """Create topics (replication factor 1) and wait until every partition has a leader.

    Topics named in ``compacted`` get ``cleanup.policy=compact``. ``configs``
    applies to all topics. A topic that already exists is not an error.
    """
    names = list(names)
    compacted = set(compacted)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="it-admin")
    await admin.start()
    try:
        new_topics = []
        for name in names:
            topic_configs = dict(configs or {})
            if name in compacted:
                topic_configs["cleanup.policy"] = "compact"
            new_topics.append(NewTopic(name, partitions, 1, topic_configs=topic_configs))
        response = await admin.create_topics(new_topics, timeout_ms=int(timeout * 1000))
        for topic_error in response.topic_errors:
            topic, code = topic_error[0], topic_error[1]
            if code == 0:
                continue
            error_class = for_code(code)
            if error_class is TopicAlreadyExistsError:
                continue
            message = topic_error[2] if len(topic_error) > 2 else ""
            raise error_class(f"creating topic {topic!r}: {message}")
        await _wait_for_leaders(admin, names, timeout)
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        described = await admin.describe_topics(names)
        ready = {
            t["topic"]
            for t in described
            if t["error_code"] == 0
            and t["partitions"]
            and all(p["leader"] >= 0 for p in t["partitions"])
        }
        if ready >= set(names):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics without leaders after {timeout}s: {set(names) - ready}")
        await asyncio.sleep(0.1)


async def topic_config(bootstrap: str, topic: str) -> dict[str, str | None]:
    """Effective configuration of a topic, e.g. ``["cleanup.policy"] == "compact"``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="it-admin")
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    config: dict[str, str | None] = {}
    for response in responses:
        for error_code, error_message, _type, name, entries, *_ in response.resources:
            if name != topic:
                continue
            if error_code:
                raise for_code(error_code)(f"describing topic {topic!r}: {error_message}")
            for entry in entries:
                config[entry[0]] = entry[1]
    return config


async def delete_topics(bootstrap: str, names: Iterable[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="it-admin")
    await admin.start()
    try:
        await admin.delete_topics(list(names))
    finally:
        await admin.close()


async def produce(
    bootstrap: str,
    topic: str,
    messages: Sequence[tuple[bytes | None, bytes | None]],
    partition: int | None = None,
) -> list[tuple[int, int]]:
    """Send ``(key, value)`` pairs in order with acks=all; return their (partition, offset).

    Keys are partitioned by Kafka's default partitioner (murmur2), the same
    one Faust and the Java client use, unless ``partition`` is given.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="it-producer",
        acks="all",
        enable_idempotence=True,
        linger_ms=0,
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=key, value=value, partition=partition)
            for key, value in messages
        ]
        results = [await f for f in futures]
    finally:
        await producer.stop()
    return [(md.partition, md.offset) for md in results]


async def consume_all(
    bootstrap: str,
    topic: str,
    expected_count: int | None = None,
    timeout: float = 30.0,
    idle: float = 2.0,
    isolation_level: str = "read_committed",
) -> list[Record]:
    """Read ``topic`` from the earliest offset with a fresh consumer that has no group.

    Nothing is committed, so calls do not affect each other or the worker.

    - With ``expected_count``: return as soon as that many records were read,
      or, at the latest, when ``timeout`` seconds have passed (with whatever
      was read; the caller's assertion then shows what is missing or extra).
    - Without: return once the consumer has reached the end offsets seen at
      the start and nothing new arrived for ``idle`` seconds, or at ``timeout``.

    Records come in arrival order, which within a partition is offset order.
    ``read_committed`` hides aborted transactional writes,
    which is what a downstream subscriber sees.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="it-consumer",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
    )
    tps = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic, timeout)]
    await consumer.start()
    records: list[Record] = []
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end_offsets = await consumer.end_offsets(tps)
        start = time.monotonic()
        last_record = start
        while True:
            now = time.monotonic()
            if expected_count is not None and len(records) >= expected_count:
                break
            if now - start >= timeout:
                break
            if expected_count is None and now - last_record >= idle:
                caught_up = True
                for tp in tps:
                    if await consumer.position(tp) < end_offsets[tp]:
                        caught_up = False
                if caught_up:
                    break
            batch = await consumer.getmany(*tps, timeout_ms=200)
            for _tp, messages in batch.items():
                for msg in messages:
                    records.append(Record(msg.key, msg.value, msg.partition, msg.offset))
                    last_record = time.monotonic()
    finally:
        await consumer.stop()
    return records


async def partitions_of(bootstrap: str, topic: str, timeout: float = 30.0) -> list[int]:
    """Partition ids of an existing topic (waits for it to show up in metadata)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="it-admin")
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            for t in await admin.describe_topics([topic]):
                if t["topic"] == topic and t["error_code"] == 0 and t["partitions"]:
                    return sorted(p["partition"] for p in t["partitions"])
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {topic!r} not found in metadata after {timeout}s")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def group_lag(bootstrap: str, group: str, topics: Iterable[str]) -> dict[str, int]:
    """``"topic:partition" -> end offset - committed offset`` of a consumer group (diagnostics)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="it-admin")
    await admin.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        tps = [TopicPartition(t, p) for t in topics for p in await partitions_of(bootstrap, t)]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
        await admin.close()
    lag = {}
    for tp in tps:
        meta = committed.get(tp)
        lag[f"{tp.topic}:{tp.partition}"] = ends[tp] - (meta.offset if meta else 0)
    return lag


def free_port() -> int:
    """A free TCP port on 127.0.0.1 *below* the kernel's ephemeral range.

    A port from ``bind(0)`` lies in the ephemeral range, where the next outgoing
    connection (each worker opens a dozen to the broker) may take it before the
    worker under test binds it: a CI run failed with ``address already in use`` on
    such a port. Below the range only listeners take ports.
    """
    low = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            low = int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port below {low}")
