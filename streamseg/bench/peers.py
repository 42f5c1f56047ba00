"""The peers of ``streamseg bench --peers``: the same minimal job on other systems.

Each peer runs in its own process (``python -m streamseg.bench.peers SYSTEM
CONFIG_JSON``), consumes the pre-produced input topics from the beginning in a
fresh consumer group, runs :mod:`streamseg.bench.job` and sends its outputs to
its own output topic. When it has processed ``expected`` input messages it
prints one line ``BENCH {"events": ..., "seconds": ..., "outputs": ...}``
(time from its first message to its last, startup excluded) and stops; the
parent (:mod:`streamseg.bench.compare`) kills whatever is left.

Systems:

* ``aiokafka``: a raw aiokafka consume loop, dict state in memory, aiokafka producer;
* ``quix``: Quix Streams, a stateful ``apply`` (RocksDB state with changelog topic);
* ``bytewax``: Bytewax ``stateful_map`` (in-memory state, no recovery configured);
* ``faust-bare``: a Faust agent that only iterates its stream (Faust's floor);
* ``faust-table``: a Faust agent with a RocksDB table (changelog) running the job.

Both Faust apps get the worker's default input buffer (``stream_buffer_maxsize``,
docs/OPERATIONS.md "The input buffer") and its monitor
(:class:`~streamseg.leanmonitor.LeanMonitor`), so that the worker is not compared,
tuned, with untuned peers.

Quix Streams, Bytewax and confluent-kafka come with the ``streamseg[peers]`` extra.
This is a tool, outside the worker: its Faust apps are not the worker's app.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from streamseg import codec
from streamseg.bench import job
from streamseg.config import Settings

SYSTEMS = ("aiokafka", "quix", "bytewax", "faust-bare", "faust-table")


@dataclasses.dataclass(frozen=True, slots=True)
class PeerConfig:
    """What a peer process needs: where to read, where to write, how much to expect."""

    bootstrap: str
    inputs: tuple[str, ...]
    output: str
    group: str
    expected: int
    data_dir: str
    partitions: int = 4


class Progress:
    """Counts processed input messages; times the first to the ``expected``-th."""

    def __init__(self, expected: int, done: Callable[[], None] = lambda: None) -> None:
        self.expected, self.done = expected, done
        self.n = self.outputs = 0
        self.first = self.last = 0.0

    def begin(self, item: Any = None) -> None:
        """A message enters the system (the clock starts at the first)."""
        if not self.first:
            self.first = time.perf_counter()

    def tick(self, out: bytes | None = None) -> None:
        """A message is processed (``out``: what it emitted)."""
        if not self.first:
            self.first = time.perf_counter()
        self.n += 1
        if out is not None:
            self.outputs += 1
        if self.n == self.expected:
            self.last = time.perf_counter()
            # fd 1 itself: Faust's worker redirects sys.stdout to its logger
            os.write(1, ("BENCH " + json.dumps(self.result()) + "\n").encode())
            self.done()

    def result(self) -> dict[str, float]:
        return {"events": self.n, "seconds": self.last - self.first, "outputs": self.outputs}


async def run_aiokafka(cfg: PeerConfig) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    consumer = AIOKafkaConsumer(*cfg.inputs, bootstrap_servers=cfg.bootstrap, group_id=cfg.group,
                                auto_offset_reset="earliest", enable_auto_commit=True)
    producer = AIOKafkaProducer(bootstrap_servers=cfg.bootstrap, acks=-1, linger_ms=5)
    await consumer.start()
    await producer.start()
    table: dict[str, job.JobState] = {}
    progress = Progress(cfg.expected)
    try:
        while progress.n < cfg.expected:
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            for records in batch.values():
                for msg in records:
                    out = job.on_mapping(table, msg.value)
                    if out is not None:
                        await producer.send(cfg.output, out, key=msg.key)
                    progress.tick(out)
        await producer.flush()
    finally:
        await consumer.stop()
        await producer.stop()


def run_quix(cfg: PeerConfig) -> None:
    from quixstreams import Application

    app = Application(broker_address=cfg.bootstrap, consumer_group=cfg.group,
                      auto_offset_reset="earliest", state_dir=cfg.data_dir)
    progress = Progress(cfg.expected, app.stop)
    out_topic = app.topic(cfg.output, value_serializer="bytes", key_serializer="bytes")
    for name in cfg.inputs:
        sdf = app.dataframe(app.topic(name, value_deserializer="bytes", key_deserializer="bytes"))
        sdf = sdf.apply(job.on_quix_state, stateful=True)
        sdf = sdf.update(progress.tick)
        sdf = sdf.filter(lambda out: out is not None)
        sdf.to_topic(out_topic)
    app.run()


def run_bytewax(cfg: PeerConfig) -> None:
    import bytewax.operators as op
    from bytewax import testing
    from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSource
    from bytewax.dataflow import Dataflow

    progress = Progress(cfg.expected)
    run_main: Any = testing.run_main

    def key_of(msg: Any) -> str:
        return (msg.key or b"").decode()

    def mapper(state: job.JobState | None, msg: Any) -> tuple[job.JobState | None, bytes | None]:
        return job.on_bytewax(state, msg.value)

    def counted(item: tuple[str, bytes | None]) -> tuple[str, bytes | None]:
        progress.tick(item[1])
        return item

    flow = Dataflow("streamseg-bench-peer")
    msgs = op.input("in", flow, KafkaSource([cfg.bootstrap], list(cfg.inputs), tail=False))
    op.inspect("begin", msgs, lambda _step, msg: progress.begin(msg))
    keyed = op.key_on("key", msgs, key_of)
    outs = op.stateful_map("job", keyed, mapper)
    outs = op.map("count", outs, counted)
    sends = op.filter_map("emit", outs, lambda kv: None if kv[1] is None
                          else KafkaSinkMessage(kv[0].encode(), kv[1]))
    op.output("out", sends, KafkaSink([cfg.bootstrap], cfg.output))
    run_main(flow)


def run_faust(cfg: PeerConfig, with_table: bool) -> None:
    import faust

    from streamseg.leanmonitor import LeanMonitor

    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
                           "value_serializer": "raw"}
    app = faust.App(cfg.group, broker=f"kafka://{cfg.bootstrap}", store="rocksdb://",
                    datadir=cfg.data_dir, web_enabled=False, topic_allow_declare=True,
                    consumer_auto_offset_reset="earliest", topic_partitions=cfg.partitions,
                    stream_buffer_maxsize=Settings().stream_buffer_maxsize,
                    monitor=LeanMonitor())  # the worker's Faust settings: like with like
    inputs = app.topic(*cfg.inputs, **raw)
    output = app.topic(cfg.output, **raw)
    progress = Progress(cfg.expected, lambda: os._exit(0))  # result printed: leave at once
    if not with_table:
        @app.agent(inputs, name="bench.bare")
        async def bare(stream: faust.StreamT[Any]) -> None:
            async for _ in stream:
                progress.tick()
    else:
        table = app.Table("bench-job", partitions=cfg.partitions, key_type=bytes,
                          value_type=bytes)

        class Encoded:
            """The Faust table as a job store: customer id -> state, orjson bytes inside."""

            def get(self, key: str, /) -> job.JobState | None:
                value = table.get(key.encode())
                return None if value is None else dict(codec.loads(value))

            def __setitem__(self, key: str, value: job.JobState, /) -> None:
                table[key.encode()] = codec.dumps(value)

        store = Encoded()

        @app.agent(inputs, name="bench.table")
        async def stateful(stream: faust.StreamT[Any]) -> None:
            async for event in stream.events():
                out = job.on_mapping(store, event.message.value)
                if out is not None:
                    await output.send(key=event.message.key, value=out)
                progress.tick(out)

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    app.main()


def main(argv: list[str]) -> int:
    """``python -m streamseg.bench.peers SYSTEM CONFIG_JSON``."""
    system, raw_cfg = argv
    fields = json.loads(raw_cfg)
    cfg = PeerConfig(**{**fields, "inputs": tuple(fields["inputs"])})
    os.makedirs(cfg.data_dir, exist_ok=True)
    if system == "aiokafka":
        asyncio.run(run_aiokafka(cfg))
    elif system == "quix":
        run_quix(cfg)
    elif system == "bytewax":
        run_bytewax(cfg)
    elif system in ("faust-bare", "faust-table"):
        run_faust(cfg, with_table=system == "faust-table")
    else:
        raise SystemExit(f"unknown system {system!r}; one of {', '.join(SYSTEMS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
