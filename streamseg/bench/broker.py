"""The broker half of ``streamseg bench``: the worker subprocess, the raw loop, latency."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from streamseg import codec
from streamseg.bench.core import Sizes, lines_of, percentile
from streamseg.config import Settings
from streamseg.engine.events import kind_of
from streamseg.errors import StreamsegError
from streamseg.simulate import SimConfig

READY = "[^Worker]: Ready"
PROFILE = os.environ.get("BENCH_PROFILE", "").split()


# ---- on the broker -------------------------------------------------------------------------


def check_broker(settings: Settings) -> None:
    """Raise a clear error when no broker listens at ``settings.broker``."""
    first = settings.bootstrap_servers.split(",")[0]
    host, _, port = first.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port or 9092)), timeout=3.0):
            return
    except (OSError, ValueError) as exc:
        raise StreamsegError(
            f"bench: no Kafka broker reachable at {first} (STREAMSEG_BROKER={settings.broker!r}): "
            f"{exc}; start one with `scripts/kafka start`"
        ) from None


def bench_settings(base: Settings, tmp: Path, port: int) -> Settings:
    tag = f"bench-{os.getpid()}-{int(time.time())}"
    topics: dict[str, Any] = {f"topic_{n}": f"{tag}-{n}" for n in (
        "clickstream", "purchases", "consent", "changes", "segments", "dead_letters", "models",
        "ticks")}
    # web_port 0: no lookup API (a fixed port would collide with any other worker)
    return dataclasses.replace(base, app_id=tag, data_dir=str(tmp / "data"), metrics_port=port,
                               web_port=0, **topics)


def worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSEG_")}
    for f in dataclasses.fields(settings):
        if f.name != "extra":
            value = getattr(settings, f.name)
            env["STREAMSEG_" + f.name.upper()] = str(value).lower() if isinstance(
                value, bool) else str(value)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def consumed(port: int) -> float:
    """Sum of ``streamseg_events_consumed_total`` on the worker's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(s.value for fam in text_string_to_metric_families(text)
               if fam.name == "streamseg_events_consumed" for s in fam.samples
               if s.name.endswith("_total") and s.labels["stream"] in ("click", "purchase"))


async def create_topic(settings: Settings, name: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, settings.partitions, 1)])
    finally:
        await admin.close()


async def produce_all(settings: Settings, lines: Iterable[bytes]) -> int:
    from aiokafka import AIOKafkaProducer

    topics = {"purchase": settings.topic_purchases, "click": settings.topic_clickstream}
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=20,
                                max_batch_size=256 * 1024)
    await producer.start()
    n = 0
    try:
        for raw in lines:
            ev = codec.loads(raw)
            await producer.send(topics[kind_of(ev)], raw, key=ev["customer_id"].encode())
            n += 1
        await producer.flush()
    finally:
        await producer.stop()
    return n


async def raw_loop(settings: Settings, expected: int) -> float:
    """A plain aiokafka consume-and-produce loop over the input topics; events/s."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    consumer = AIOKafkaConsumer(
        settings.topic_clickstream, settings.topic_purchases,
        bootstrap_servers=settings.bootstrap_servers, group_id=f"{settings.app_id}-raw",
        auto_offset_reset="earliest", enable_auto_commit=True)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks=-1)
    await consumer.start()
    await producer.start()
    n, first = 0, 0.0
    try:
        while n < expected:
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            for records in batch.values():
                if not first:
                    first = time.perf_counter()
                for msg in records:
                    await producer.send(f"{settings.app_id}-raw-out", msg.value, key=msg.key)
                    n += 1
        await producer.flush()
    finally:
        await consumer.stop()
        await producer.stop()
    return n / (time.perf_counter() - first)


class Worker:
    """A ``streamseg worker`` subprocess with its log file.

    ``python -P`` keeps the working directory off ``sys.path``: ``python -m``
    puts it first, so started from a source checkout the worker imported that
    checkout's ``streamseg`` whatever the environment said, and a variant such as
    ``PYTHONPATH=<another tree>`` (the issue-time worker of OPERATIONS) silently
    ran this one. The working directory stays the caller's (relative paths in
    settings keep their meaning).
    """

    def __init__(self, settings: Settings, log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        with log.open("wb") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-P", *PROFILE, "-m", "streamseg", "worker"],
                env={**worker_env(settings), **(env or {})}, stdout=fh, stderr=subprocess.STDOUT)

    async def ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while READY not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                text = self.log.read_text(errors="replace")
                at = max(0, min((i for i in (text.find("Traceback"), text.find("[ERROR]"))
                                 if i >= 0), default=len(text) - 2000))
                raise StreamsegError(f"bench: worker did not start: {text[at:at + 2500]}")
            await asyncio.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)


POLL_S = 0.1  # /metrics read interval at the start and the end of a measurement
POLL_MAX_S = 2.0  # and at most this long between two reads in the middle


def next_poll(count: float, expected: float, rate: float) -> float:
    """Seconds until the next ``/metrics`` read of :func:`worker_throughput`.

    Each read costs the worker CPU (its HTTP thread renders every metric, under
    the GIL): read every :data:`POLL_S` near the start and the end, where the
    measurement's resolution is decided, and half the expected remaining time
    in between (at most :data:`POLL_MAX_S`).

    >>> next_poll(0, 30_000, 0.0), next_poll(1_000, 100_000, 5_000.0)
    (0.1, 2.0)
    >>> next_poll(90_000, 100_000, 5_000.0), next_poll(99_500, 100_000, 5_000.0)
    (1.0, 0.1)
    """
    if rate <= 0.0:
        return POLL_S
    return min(POLL_MAX_S, max(POLL_S, (expected - count) / rate / 2.0))


async def worker_throughput(settings: Settings, expected: int, timeout: float) -> float:
    """Events/s of the running worker over ``expected`` pre-produced events (from /metrics)."""
    port = settings.metrics_port
    first: tuple[float, float] | None = None
    deadline = time.monotonic() + timeout
    while True:
        now, count = time.perf_counter(), await asyncio.to_thread(consumed, port)
        if first is None and count > 0:
            first = (now, count)
        if count >= expected:
            break
        if time.monotonic() > deadline:
            raise StreamsegError(f"bench: worker consumed {count:.0f} of {expected} events "
                                 f"in {timeout:.0f} s")
        rate = 0.0 if first is None or now <= first[0] else (count - first[1]) / (now - first[0])
        await asyncio.sleep(next_poll(count, expected, rate))
    assert first is not None
    return (count - first[1]) / max(now - first[0], 1e-9)


async def latency(settings: Settings, lines: Sequence[bytes], rate: float) -> dict[str, float]:
    """Produce ``lines`` at ``rate``/s; event-to-change latencies of event-triggered changes."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None,
                                auto_offset_reset="latest")
    await consumer.start()
    tps = [TopicPartition(settings.topic_changes, p) for p in range(settings.partitions)]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=0)
    await producer.start()
    topics = {"purchase": settings.topic_purchases, "click": settings.topic_clickstream}
    sent: dict[tuple[str, str], float] = {}
    delays: list[float] = []

    async def feed() -> float:
        started = time.perf_counter()
        for i, raw in enumerate(lines):
            ahead = started + i / rate - time.perf_counter()
            if ahead > 0:
                await asyncio.sleep(ahead)
            ev = codec.loads(raw)
            sent.setdefault((ev["customer_id"], ev["ts"]), time.perf_counter())
            await producer.send(topics[kind_of(ev)], raw, key=ev["customer_id"].encode())
        await producer.flush()
        return len(lines) / (time.perf_counter() - started)

    feeder = asyncio.create_task(feed())
    idle_since = time.perf_counter()
    try:
        while not feeder.done() or time.perf_counter() - idle_since < 3.0:
            batch = await consumer.getmany(timeout_ms=100)
            got = time.perf_counter()
            for records in batch.values():
                idle_since = got
                for msg in records:
                    change = codec.loads(msg.value)
                    at = sent.get((change["customer_id"], change["event_time"]))
                    if change.get("trigger") == "event" and at is not None:
                        delays.append(got - at)
        achieved = await feeder
    finally:
        await consumer.stop()
        await producer.stop()
    if not delays:
        raise StreamsegError("bench: no segment change arrived during the latency run")
    return {"rate": achieved, "changes": len(delays), "p50": percentile(delays, 50),
            "p99": percentile(delays, 99)}


async def bench_broker(base: Settings, sizes: Sizes, seed: int, tmp: Path) -> dict[str, Any]:
    from streamseg.app import ensure_topics

    settings = bench_settings(base, tmp, free_port())
    n_lat = int(sizes.latency_rate * sizes.latency_seconds)
    need = sizes.throughput_events + 2 * n_lat
    lines: list[bytes] = []
    days = 30.0
    while len(lines) < need:
        customers = max(1000, need // 12)
        lines = lines_of(SimConfig(customers, days, seed))
        days *= 2
    head, tail = lines[: sizes.throughput_events], lines[sizes.throughput_events:][:n_lat]
    await ensure_topics(settings)
    await create_topic(settings, f"{settings.app_id}-raw-out")
    await produce_all(settings, head)
    raw = await raw_loop(settings, len(head))
    worker = Worker(settings, tmp / "worker.log")
    try:
        await worker.ready()
        eps = await worker_throughput(settings, len(head), timeout=600.0)
        lat = [await latency(settings, tail, sizes.latency_rate)]
        if eps < sizes.latency_rate:  # saturated: also measure at a quarter of the throughput
            await worker_throughput(settings, len(head) + len(tail), timeout=600.0)
            n_half = int(eps / 4 * sizes.latency_seconds)
            more = lines[sizes.throughput_events + n_lat:][:n_half]
            lat.append(await latency(settings, more, eps / 4))
    finally:
        worker.stop()
    return {"events": len(head), "worker_eps": eps, "raw_eps": raw, "latency": lat}
