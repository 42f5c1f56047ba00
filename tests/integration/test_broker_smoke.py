"""The local broker works end to end: create a topic, produce, consume back."""

from __future__ import annotations

import pytest
from kafka_helpers import consume_all, create_topics, produce, topic_config, unique_name


@pytest.mark.asyncio
async def test_produce_and_consume_roundtrip(bootstrap_servers: str) -> None:
    topic = unique_name("smoke")
    await create_topics(bootstrap_servers, [topic], partitions=1)
    messages = [(b"c1", b'{"n": 1}'), (b"c2", b'{"n": 2}'), (b"c1", b'{"n": 3}')]

    positions = await produce(bootstrap_servers, topic, messages)
    assert positions == [(0, 0), (0, 1), (0, 2)]

    records = await consume_all(bootstrap_servers, topic, expected_count=3, timeout=30)
    assert [(r.key, r.value) for r in records] == messages
    assert [(r.partition, r.offset) for r in records] == [(0, 0), (0, 1), (0, 2)]


@pytest.mark.asyncio
async def test_keys_keep_order_per_partition_and_compaction_config(bootstrap_servers: str) -> None:
    topic = unique_name("smoke-multi")
    table = unique_name("smoke-table")
    await create_topics(bootstrap_servers, [topic, table], partitions=3, compacted={table})
    messages = [(f"c{i % 5}".encode(), str(i).encode()) for i in range(30)]
    await produce(bootstrap_servers, topic, messages)

    records = await consume_all(bootstrap_servers, topic, timeout=30)  # until caught up + idle
    assert sorted((r.key, r.value) for r in records) == sorted(messages)
    partition_of: dict[bytes | None, int] = {}
    for r in records:  # one key -> one partition, and that key's values in send order
        assert partition_of.setdefault(r.key, r.partition) == r.partition
    for key in {k for k, _ in messages}:
        assert [r.value for r in records if r.key == key] == [v for k, v in messages if k == key]

    assert (await topic_config(bootstrap_servers, table))["cleanup.policy"] == "compact"
    assert (await topic_config(bootstrap_servers, topic))["cleanup.policy"] == "delete"

    # creating again is a no-op, not an error
    await create_topics(bootstrap_servers, [table], partitions=3, compacted={table})
    assert await consume_all(bootstrap_servers, table, timeout=10, idle=0.5) == []
