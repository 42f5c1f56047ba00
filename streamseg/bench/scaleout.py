"""``streamseg bench --workers N``: N workers (one app id) on one input, nothing lost, CPU split.

Fresh topics (``STREAMSEG_PARTITIONS``, 4 by default); N ``streamseg worker``
subprocesses of the same consumer group are started and ready before the
simulated events are produced (no rebalance during the measurement). Reported:

* combined events/s, from the first to the last input consumed (the sum of the
  workers' ``streamseg_events_consumed_total``), and each worker's share;
* the CPU split over that interval, in cores (``/proc/<pid>/stat``): each
  worker, the broker (the process listening on the broker's port, when it can be
  seen) and this process (the producer);
* nothing lost, against ``streamseg replay`` on the same events, for the
  per-customer rule segmenters (frequency, lifecycle; population models depend
  on which worker saw whom): each customer's final published segment; and, for
  customers whose events all use one input topic, the exact change ids (a
  customer's clicks and purchases are two topics, consumed in no fixed relative
  order, and change ids number a customer's changes in order). Duplicates
  (at-least-once) are counted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamseg import codec
from streamseg.bench.broker import Worker, bench_settings, consumed, free_port, produce_all
from streamseg.bench.core import lines_of
from streamseg.bench.latency import cpu_seconds
from streamseg.config import Settings
from streamseg.engine.events import kind_of
from streamseg.errors import StreamsegError
from streamseg.replay import replay_lines
from streamseg.simulate import SimConfig

RULES = ("frequency", "lifecycle")


def listening_pid(port: int) -> int | None:
    """The process with a listening TCP socket on ``port`` (Linux ``/proc``; None if unseen)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{cols[9]}]")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds):
                return int(pid)
        except OSError:
            continue
    return None


async def read_topic(settings: Settings, topic: str) -> list[dict[str, Any]]:
    """Every record of ``topic`` up to its current end, decoded."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        todo = {tp for tp in tps if ends[tp] > 0}
        while todo:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                out += [codec.loads(r.value) for r in records if r.value is not None]
                if records and records[-1].offset + 1 >= ends[tp]:
                    todo.discard(tp)
    finally:
        await consumer.stop()
    return out


def rule_ids(changes: Sequence[dict[str, Any]]) -> dict[str, Counter[str]]:
    """Per customer: how often each rule-segmenter change id was published."""
    out: dict[str, Counter[str]] = {}
    for c in changes:
        if c.get("segmenter") in RULES and "change_id" in c:
            out.setdefault(c["customer_id"], Counter())[c["change_id"]] += 1
    return out


async def bench_workers(base: Settings, n_workers: int, events: int, seed: int,
                        tmp: Path) -> dict[str, Any]:
    from streamseg.app import ensure_topics

    first = bench_settings(base, tmp, free_port())
    settings = [dataclasses.replace(first, metrics_port=free_port() if i else first.metrics_port,
                                    data_dir=str(tmp / f"data{i}"), web_port=0)
                for i in range(n_workers)]
    lines: list[bytes] = []
    days = 30.0
    while len(lines) < events:
        lines = lines_of(SimConfig(max(1000, events // 12), days, seed))
        days *= 2
    lines = lines[:events]
    await ensure_topics(first)
    workers = [Worker(s, tmp / f"worker{i}.log") for i, s in enumerate(settings)]
    broker = listening_pid(int(first.bootstrap_servers.split(",")[0].rpartition(":")[2]))
    pids = {f"worker{i + 1}": w.proc.pid for i, w in enumerate(workers)}
    if broker is not None:
        pids["broker"] = broker
    pids["producer"] = os.getpid()
    try:
        for w in workers:
            await w.ready(timeout=180.0)
        await asyncio.sleep(5.0)  # the group settles with every member
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        t0 = time.perf_counter()
        producing = asyncio.ensure_future(produce_all(first, lines))
        started: float | None = None
        counts = [0.0] * n_workers
        deadline = time.monotonic() + 900.0
        while sum(counts) < events:
            if time.monotonic() > deadline:
                raise StreamsegError(f"bench: workers consumed {sum(counts):.0f} of {events}")
            await asyncio.sleep(0.1)
            counts = [await asyncio.to_thread(consumed, s.metrics_port) for s in settings]
            if started is None and sum(counts) > 0:
                started = time.perf_counter()
        ended = time.perf_counter()
        cpu = {name: (cpu_seconds(pid) - cpu0[name]) / (ended - t0) for name, pid in pids.items()}
        await producing
        await asyncio.sleep(3 * base.tick_interval_s + 5.0)  # clock moves settle
    finally:
        for w in workers:
            w.stop()
    changes = await read_topic(first, first.topic_changes)
    reference = list(replay_lines(lines, first))
    # A customer's clicks and purchases are two topics: their relative order in the
    # worker is not the file's, so change ids (per-customer sequences) are compared
    # for customers on one input topic; for everyone, the final rule segments.
    streams: dict[str, set[str]] = {}
    for raw in lines:
        ev = codec.loads(raw)
        streams.setdefault(ev["customer_id"], set()).add(kind_of(ev))
    single = {c for c, kinds in streams.items() if len(kinds) == 1}
    published = rule_ids([c for c in changes if c["customer_id"] in single])
    expected = rule_ids([c for c in reference if c["customer_id"] in single])
    trigger = {c["change_id"]: c["trigger"] for c in reference}
    lost_ids = [i for c, ids in expected.items() for i in set(ids) - set(published.get(c, ()))]
    lost = len(lost_ids)
    extra = sum(len(set(ids) - set(expected.get(c, ()))) for c, ids in published.items())
    duplicates = sum(n - 1 for ids in rule_ids(changes).values() for n in ids.values())
    final_pub, final_ref = finals(changes), finals(reference)
    differ = sorted(k for k in final_ref.keys() | final_pub.keys()
                    if final_ref.get(k) != final_pub.get(k))
    assert started is not None
    return {"events": events, "eps": events / max(ended - started, 1e-9), "shares": counts,
            "cpu": cpu, "customers": len(streams), "single": len(single), "lost": lost,
            "extra": extra, "duplicates": duplicates,
            "changes": sum(len(v) for v in expected.values()),
            "lost_by": dict(Counter(trigger[i] for i in lost_ids)),
            "finals": len(final_ref), "finals_differ": len(differ),
            "differ_sample": [(k, final_ref.get(k), final_pub.get(k)) for k in differ[:5]],
            "same": lost == 0 and extra == 0 and not differ}


def finals(changes: Sequence[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(customer, rule segmenter) -> the segment of its highest-sequence change."""
    best: dict[tuple[str, str], tuple[int, str]] = {}
    for c in changes:
        if c.get("segmenter") in RULES and "sequence" in c:
            key = (c["customer_id"], c["segmenter"])
            if key not in best or c["sequence"] > best[key][0]:
                best[key] = (c["sequence"], c["to_segment"])
    return {k: v[1] for k, v in best.items()}


def summary(r: dict[str, Any]) -> list[str]:
    shares = ", ".join(f"{c:,.0f}" for c in r["shares"])
    cpu = ", ".join(f"{name} {v:.2f}" for name, v in r["cpu"].items())
    return [
        f"{len(r['shares'])} workers, one app id: {r['eps']:,.0f} events/s combined over"
        f" {r['events']:,} events (per worker: {shares})",
        f"CPU split (cores, over the run): {cpu}",
        f"vs replay: final rule segments differ for {r['finals_differ']} of {r['finals']:,}"
        f" (customer, segmenter); change ids of the {r['single']:,} single-topic customers"
        f" (of {r['customers']:,}): {r['changes']:,} expected, lost {r['lost']}"
        f" {r['lost_by'] or ''}, unexpected {r['extra']}; duplicates {r['duplicates']}"
        f" -> {'equal to replay' if r['same'] else 'DIFFERENT from replay'}",
    ]


def cli(args: Any, settings: Settings) -> int:
    """``streamseg bench --workers N [--events E]``."""
    import tempfile

    events = args.events or 30_000
    print(f"streamseg bench --workers {args.workers}  broker={settings.bootstrap_servers}"
          f"  partitions={settings.partitions}  events={events:,}", flush=True)
    with tempfile.TemporaryDirectory(prefix="streamseg-bench-") as tmp:
        result = asyncio.run(bench_workers(settings, args.workers, events, 1, Path(tmp)))
    for line in summary(result):
        print(line, flush=True)
    for key, want, got in result["differ_sample"]:
        print(f"  final segment of {key}: replay {want}, workers {got}", flush=True)
    return 0 if result["same"] else 1
