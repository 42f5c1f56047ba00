"""``batch.deliver``: outputs go to the Kafka client as closed record batches, in order."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka import AIOKafkaProducer

from streamseg.batch import Output, deliver
from streamseg.config import Settings
from streamseg.partitions import home


class Recorder:
    """A real aiokafka ``BatchBuilder`` that also remembers what was appended."""

    def __init__(self, real: Any) -> None:
        self.real, self.records = real, []  # type: list[tuple[Any, ...]]
        self.closed = False

    def append(self, **kw: Any) -> Any:
        got = self.real.append(**kw)
        if got is not None:
            self.records.append((kw["key"], kw["value"], kw["headers"]))
        return got

    def close(self) -> None:
        self.closed = True
        self.real.close()


class Client:
    """The aiokafka producer's batch API: real builders, recorded submissions."""

    def __init__(self, partitions: int) -> None:
        self.parts = set(range(partitions))
        self.sent: list[tuple[str, int, Recorder]] = []
        self.producer: AIOKafkaProducer | None = None  # made inside the event loop

    async def partitions_for(self, topic: str) -> set[int]:
        return self.parts

    @property
    def real(self) -> AIOKafkaProducer:
        if self.producer is None:
            self.producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1",
                                             max_batch_size=1024, linger_ms=1000)
        return self.producer

    @property
    def _message_accumulator(self) -> Any:  # what adapters.send_now closes
        return self.real._message_accumulator

    def create_batch(self) -> Recorder:
        return Recorder(self.real.create_batch())

    async def send_batch(self, batch: Recorder, topic: str, *, partition: int) -> Any:
        assert batch.closed, "a batch the agent waits for must not linger"
        self.sent.append((topic, partition, batch))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def topic(name: str) -> Any:
    return SimpleNamespace(get_topic_name=lambda: name)


def run(outputs: list[Output], client: Client) -> int:
    ss: Any = SimpleNamespace(app=SimpleNamespace(producer=SimpleNamespace(_producer=client)),
                              settings=Settings())

    async def go() -> int:
        return len(await deliver(ss, outputs))

    return asyncio.run(go())


def test_outputs_are_grouped_per_topic_partition_in_order_and_keyed_like_murmur2() -> None:
    changes, segments, ticks = topic("changes"), topic("segments"), topic("ticks")
    keys = [f"c{i}".encode() for i in range(12)]
    outputs = [Output(changes, k, b"change-" + k) for k in keys]
    outputs += [Output(segments, k, None) for k in keys[:3]]  # tombstones
    outputs.append(Output(ticks, b"c1", b"copy", 2, {"streamseg-fanout": b"consent"}))
    client = Client(4)
    futures = run(outputs, client)
    assert futures == len(client.sent)
    got: dict[tuple[str, int], list[tuple[Any, ...]]] = {}
    for name, p, batch in client.sent:
        got.setdefault((name, p), []).extend(batch.records)
    for k in keys:
        assert (k, b"change-" + k, []) in got["changes", home(k, 4)]
    for (name, _p), records in got.items():  # order within a partition = output order
        if name == "changes":
            assert records == sorted(records, key=lambda r: keys.index(r[0]))
    assert got["ticks", 2] == [(b"c1", b"copy", [("streamseg-fanout", b"consent")])]
    assert sum(len(r) for r in got.values()) == len(outputs)


def test_a_full_record_batch_is_sent_and_the_next_one_keeps_the_order() -> None:
    changes = topic("changes")
    outputs = [Output(changes, b"same", b"x" * 300 + str(i).encode(), 1) for i in range(10)]
    client = Client(4)
    run(outputs, client)
    assert len(client.sent) > 1  # 3,000+ bytes do not fit one 1 KiB batch
    values = [r[1] for _, _, b in client.sent for r in b.records]
    assert values == [o.value for o in outputs]


def test_the_lingering_changelog_goes_out_with_the_outputs() -> None:
    from aiokafka.producer.message_accumulator import MessageBatch

    client = Client(4)
    lingering: list[Any] = []

    async def go() -> None:
        acc = client._message_accumulator
        builder = acc.create_builder()
        builder.append(timestamp=None, key=b"c1", value=b"state", headers=[])
        acc._batches[("changelog", 0)] = [MessageBatch(("changelog", 0), builder, 60.0, 1.0)]
        lingering.append(acc._batches[("changelog", 0)][0])
        ss: Any = SimpleNamespace(app=SimpleNamespace(producer=SimpleNamespace(_producer=client)))
        await deliver(ss, [Output(topic("changes"), b"c1", b"x")])

    asyncio.run(go())
    assert lingering[0].remaining_linger() is None  # closed: sent in the same request


def test_a_stand_in_transport_gets_one_topic_send_per_output() -> None:
    sent: list[tuple[Any, ...]] = []

    async def send(**kw: Any) -> Any:
        sent.append((kw["key"], kw["partition"]))
        return None

    ss: Any = SimpleNamespace(app=SimpleNamespace(producer=SimpleNamespace()))
    t = SimpleNamespace(send=send)
    out = asyncio.run(deliver(ss, [Output(t, b"a", b"1"), Output(t, b"b", b"2", 3)]))
    assert sent == [(b"a", None), (b"b", 3)] and len(out) == 2
