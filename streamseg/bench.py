"""``streamseg bench``: throughput, latency, memory and clustering quality, in one run.

Needs the broker of ``STREAMSEG_BROKER``. Every figure comes from this run:

1. worker throughput: simulated events are produced to fresh input topics, a
   ``streamseg worker`` subprocess consumes them (progress read from its
   ``/metrics``), and a raw aiokafka consume-and-produce loop reads the same
   topics (its own consumer group) and forwards every message; their ratio;
2. event-to-change latency (p50/p99): the next simulated events, produced at a
   fixed rate to the running worker; for each event-triggered change the time
   from producing its event to receiving the change;
3. replay throughput (:func:`streamseg.replay.replay_lines`, in process);
4. memory per customer: RSS growth and serialised state size after a replay
   of ``--customers`` simulated customers;
5. clustering quality: adjusted Rand index of the ``cluster`` segment of each
   customer against the simulator's personas.

``BENCH_PROFILE="-m cProfile -o worker.prof"`` runs the worker subprocess under
those interpreter options (for profiling the worker during the benchmark).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from streamseg import codec
from streamseg.config import Settings
from streamseg.engine.events import kind_of
from streamseg.errors import StreamsegError
from streamseg.replay import Replayer, replay_lines
from streamseg.simulate import PERSONAS, SimConfig, Simulation

READY = "[^Worker]: Ready"
PROFILE = os.environ.get("BENCH_PROFILE", "").split()


@dataclasses.dataclass(frozen=True, slots=True)
class Sizes:
    """How much each part of the benchmark does."""

    throughput_events: int = 100_000
    latency_rate: float = 2000.0
    latency_seconds: float = 30.0
    replay_customers: int = 2000
    replay_days: float = 120.0
    memory_customers: int = 330_000  # about 100k of them are active in 3 days
    memory_days: float = 3.0
    ari_customers: int = 2000
    ari_days: float = 150.0


QUICK = Sizes(20_000, 2000.0, 10.0, 400, 90.0, 25_000, 3.0, 600, 120.0)


def adjusted_rand(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Adjusted Rand index of two labelings (1.0: same partition; about 0: chance).

    River's :class:`~river.metrics.AdjustedRand` over the pairs.

    >>> adjusted_rand(["a", "a", "b", "b"], ["x", "x", "y", "y"])
    1.0
    >>> adjusted_rand(["a", "a", "b", "b"], ["x", "y", "x", "y"])
    -0.5
    """
    from river import metrics

    ari = metrics.AdjustedRand()  # type: ignore[no-untyped-call]
    for t, p in zip(truth, predicted, strict=True):
        ari.update(t, p)
    return float(ari.get())  # type: ignore[no-untyped-call]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``.

    >>> percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50), percentile(list(range(1, 101)), 99)
    (3.0, 99)
    """
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def lines_of(cfg: SimConfig) -> list[bytes]:
    return [codec.dumps(ev) for ev in Simulation(cfg).events()]


def bench_replay(sizes: Sizes, seed: int) -> dict[str, float]:
    lines = lines_of(SimConfig(sizes.replay_customers, sizes.replay_days, seed))
    started = time.perf_counter()
    changes = sum(1 for _ in replay_lines(lines, Settings()))
    elapsed = time.perf_counter() - started
    return {"events": len(lines), "changes": changes, "seconds": elapsed,
            "events_per_s": len(lines) / elapsed}


def bench_memory(sizes: Sizes, seed: int) -> dict[str, float]:
    import psutil

    with tempfile.TemporaryDirectory(prefix="streamseg-bench-") as tmp:
        path = Path(tmp) / "events.jsonl"
        with path.open("wb") as fh:
            sim = Simulation(SimConfig(sizes.memory_customers, sizes.memory_days, seed))
            for ev in sim.events():
                fh.write(codec.dumps(ev) + b"\n")
        gc.collect()
        rep = Replayer(Settings())
        before = psutil.Process().memory_info().rss
        with path.open("rb") as fh:
            for _ in replay_lines(fh, rep.settings, str(path), replayer=rep):
                pass
        gc.collect()
        after = psutil.Process().memory_info().rss
    n = len(rep.states)
    serialised = sum(len(codec.dumps(s.to_dict())) for s in rep.states.values())
    return {"customers": n, "rss_bytes_per_customer": (after - before) / n,
            "state_bytes_per_customer": serialised / n}


WELL_SEPARATED = ("loyal_frequent", "bargain_hunter", "browser", "mobile_first")


def bench_ari(sizes: Sizes, seed: int, personas: tuple[str, ...] = WELL_SEPARATED,
              k: int | None = None) -> dict[str, Any]:
    """ARI of the customers' clusters against the personas (``k`` default: one per persona).

    ``published``: the ``cluster`` segment in each customer's state (what
    subscribers saw last); ``final``: the final model's assignment of each
    customer's final state.
    """
    sim = Simulation(SimConfig(sizes.ari_customers, sizes.ari_days, seed, personas=personas))
    cfg = Settings(cluster_k=k or len(personas))
    rep = Replayer(cfg)
    for _ in replay_lines((codec.dumps(ev) for ev in sim.events()), cfg, replayer=rep):
        pass
    seg = rep.engine.segmenter("cluster")
    if seg is None:
        return {"ari": None, "why": "no cluster segmenter"}
    ids = [cid for cid, s in rep.states.items() if "cluster" in s.segments]
    if not ids or rep.clock.max_seen is None:
        return {"ari": None, "why": "no customer has a cluster segment"}
    truth = [sim.truth[cid] for cid in ids]
    published = [str(rep.states[cid].segments["cluster"][0]) for cid in ids]
    now = rep.clock.max_seen
    final = [str(getattr(seg.assign(rep.states[cid], now), "segment", "none")) for cid in ids]
    sizes_b = sorted(len(codec.dumps(s.to_dict())) for s in rep.states.values())
    return {"ari": adjusted_rand(truth, published), "ari_final": adjusted_rand(truth, final),
            "customers": len(ids), "clusters": len(set(final)), "k": cfg.cluster_k,
            "personas": len(personas), "state_mean": sum(sizes_b) / len(sizes_b),
            "state_max": sizes_b[-1], "days": sizes.ari_days}


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
    return dataclasses.replace(base, app_id=tag, data_dir=str(tmp / "data"), metrics_port=port,
                               **topics)


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
    """A ``streamseg worker`` subprocess with its log file."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.log = log
        with log.open("wb") as fh:
            self.proc = subprocess.Popen([sys.executable, *PROFILE, "-m", "streamseg", "worker"],
                                         env=worker_env(settings), stdout=fh,
                                         stderr=subprocess.STDOUT)

    async def ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while READY not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise StreamsegError(f"bench: worker did not start, see {self.log}")
            await asyncio.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)


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
        await asyncio.sleep(0.1)
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


def _kb(n: float) -> str:
    return f"{n / 1024:.2f} KB"


def report(sizes: Sizes, seed: int, settings: Settings) -> None:
    """Run every part and print the figures (flushing after each)."""
    def say(text: str) -> None:
        print(text, flush=True)

    say(f"streamseg bench  broker={settings.bootstrap_servers}  seed={seed}  sizes={sizes}")
    with tempfile.TemporaryDirectory(prefix="streamseg-bench-") as tmp:
        b = asyncio.run(bench_broker(settings, sizes, seed, Path(tmp)))
    ratio = b["worker_eps"] / b["raw_eps"]
    say(f"worker throughput      {b['worker_eps']:>10,.0f} events/s over {b['events']:,} events")
    say(f"raw aiokafka loop      {b['raw_eps']:>10,.0f} events/s  worker/raw = {ratio:.1%}"
        "  (target >= 50%)")
    for lat in b["latency"]:
        say(f"event-to-change        p50 {lat['p50'] * 1e3:.1f} ms  p99 {lat['p99'] * 1e3:.1f} ms"
            f"  at {lat['rate']:,.0f} events/s, {lat['changes']:,} changes  (target p99 < 50 ms"
            f" at {sizes.latency_rate:,.0f}/s)")
    r = bench_replay(sizes, seed)
    say(f"replay throughput      {r['events_per_s']:>10,.0f} events/s over {r['events']:,.0f}"
        f" events, {r['changes']:,.0f} changes  (target >= 50,000)")
    m = bench_memory(sizes, seed)
    say(f"memory per customer    RSS {_kb(m['rss_bytes_per_customer'])}, serialised state "
        f"{_kb(m['state_bytes_per_customer'])} at {m['customers']:,.0f} customers"
        "  (target <= 1 KB)")
    for personas, k in ((WELL_SEPARATED, None), (tuple(PERSONAS), 6)):
        a = bench_ari(sizes, seed, personas, k)
        if a["ari"] is None:
            say(f"clustering quality     ARI n/a ({a['why']})")
            break
        say(f"clustering quality     ARI {a['ari_final']:.3f} final model, {a['ari']:.3f}"
            f" published segments; {a['personas']} personas, k={a['k']}, {a['customers']:,}"
            f" customers, {a['days']:.0f} days  (target >= 0.8 on well-separated personas)")
    if a["ari"] is not None:
        say(f"state after {a['days']:.0f} days   serialised mean {_kb(a['state_mean'])},"
            f" max {_kb(a['state_max'])} per customer")


def cli(args: argparse.Namespace, settings: Settings) -> int:
    """``streamseg bench [--quick]``."""
    check_broker(settings)
    report(QUICK if args.quick else Sizes(), 1, settings)
    return 0
