"""``streamseg bench --latency RATES``: event-to-change latency of worker variants, interleaved.

Separates queueing from fixed delays: the same events are produced at each
rate (e.g. ``500,2000`` events/s) to a fresh ``streamseg worker`` per variant
and round; a variant is a name and ``STREAMSEG_*`` overrides of the worker's
environment (``--variant "wait50:STREAMSEG_BATCH_WAIT_S=0.05"``), so a setting's
before and after are measured in the same run, alternating. For each
event-triggered change: the time from producing its event to receiving the
change (:func:`streamseg.bench.broker.latency`). A short warm-up at the lowest
rate is not counted. Also reports the CPU seconds the worker spent per run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamseg.bench.broker import Worker, bench_settings, free_port, latency
from streamseg.bench.core import lines_of
from streamseg.config import Settings
from streamseg.simulate import SimConfig

Variant = tuple[str, dict[str, str]]


def parse_variant(text: str) -> Variant:
    """``name:KEY=V,KEY=V`` -> (name, {KEY: V}).

    >>> parse_variant("old:STREAMSEG_BATCH_WAIT_S=0.05,STREAMSEG_PRODUCER_LINGER_S=0.005")
    ('old', {'STREAMSEG_BATCH_WAIT_S': '0.05', 'STREAMSEG_PRODUCER_LINGER_S': '0.005'})
    >>> parse_variant("default")
    ('default', {})
    """
    name, _, rest = text.partition(":")
    env = dict(item.split("=", 1) for item in rest.split(",") if item.strip())
    return name, env


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (``/proc/<pid>/stat``; 0 elsewhere)."""
    import os

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def batches_seen(port: int) -> tuple[float, float]:
    """(batches, events in them) so far, from the worker's ``streamseg_batch_events``."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    got = {s.name: s.value for fam in text_string_to_metric_families(text)
           if fam.name == "streamseg_batch_events" for s in fam.samples}
    return got.get("streamseg_batch_events_count", 0.0), got.get("streamseg_batch_events_sum", 0.0)


async def one_run(base: Settings, lines: Sequence[bytes], rates: Sequence[float],
                  seconds: float, env: dict[str, str], tmp: Path) -> list[dict[str, Any]]:
    """A fresh worker (own topics and app id) measured at each rate in turn."""
    from streamseg.app import ensure_topics

    settings = bench_settings(base, tmp, free_port())
    app_id = f"{settings.app_id}-{time.monotonic_ns()}"  # own group, tables and state
    settings = dataclasses.replace(settings, app_id=app_id, data_dir=str(tmp / app_id))
    await ensure_topics(settings)
    worker = Worker(settings, tmp / f"{settings.app_id}.log", env)
    out = []
    try:
        await worker.ready()
        warm = int(min(rates) * 2)
        await latency(settings, lines[:warm], min(rates))
        start = warm
        for rate in rates:
            n = int(rate * seconds)
            cpu0, t0 = cpu_seconds(worker.proc.pid), time.perf_counter()
            b0 = await asyncio.to_thread(batches_seen, settings.metrics_port)
            got = await latency(settings, lines[start:start + n], rate)
            got["worker_cpu"] = (cpu_seconds(worker.proc.pid) - cpu0) / (time.perf_counter() - t0)
            b1 = await asyncio.to_thread(batches_seen, settings.metrics_port)
            got["batch_mean"] = (b1[1] - b0[1]) / max(b1[0] - b0[0], 1.0)
            out.append(got)
            start += n
    finally:
        worker.stop()
    return out


async def bench_latency(base: Settings, rates: Sequence[float], seconds: float,
                        variants: Sequence[Variant], rounds: int, seed: int,
                        tmp: Path) -> dict[str, list[list[dict[str, Any]]]]:
    """Per variant, per round: one run's figures per rate (variants alternate)."""
    need = int(min(rates) * 2 + sum(rates) * seconds)
    lines: list[bytes] = []
    days = 30.0
    while len(lines) < need:
        lines = lines_of(SimConfig(max(1000, need // 12), days, seed))
        days *= 2
    results: dict[str, list[list[dict[str, Any]]]] = {name: [] for name, _ in variants}
    for _ in range(rounds):
        for name, env in variants:
            results[name].append(await one_run(base, lines, rates, seconds, env, tmp))
    return results


def summary(results: dict[str, list[list[dict[str, Any]]]]) -> list[str]:
    """One line per variant, round and rate."""
    out = []
    for name, runs in results.items():
        for i, run in enumerate(runs, 1):
            for r in run:
                out.append(f"{name:<12} round {i}  {r['rate']:>7,.0f} events/s  p50 "
                           f"{r['p50'] * 1e3:7.1f} ms  p99 {r['p99'] * 1e3:7.1f} ms  "
                           f"({r['changes']:,} changes, worker CPU {r['worker_cpu']:.0%},"
                           f" {r['batch_mean']:.0f} events/batch)")
    return out


def cli(args: Any, settings: Settings) -> int:
    """``streamseg bench --latency 500,2000 [--seconds S] [--rounds R] [--variant ...]``."""
    import tempfile

    rates = [float(r) for r in args.latency.split(",")]
    variants = [parse_variant(v) for v in args.variant] or [("default", {})]
    print(f"streamseg bench --latency  broker={settings.bootstrap_servers}  rates={rates}"
          f"  seconds={args.seconds}  variants={variants}", flush=True)
    with tempfile.TemporaryDirectory(prefix="streamseg-bench-") as tmp:
        result = asyncio.run(bench_latency(settings, rates, args.seconds, variants,
                                           args.rounds or 1, 1, Path(tmp)))
    for line in summary(result):
        print(line, flush=True)
    return 0
