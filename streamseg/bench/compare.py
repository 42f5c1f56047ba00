"""``streamseg bench --peers``: the worker against other stream processors, interleaved.

The same simulated events are produced once to fresh input topics. Then, for
each round, the ``streamseg worker`` and every peer of
:mod:`streamseg.bench.peers` consume all of them from the beginning, one
system at a time (fresh consumer group, fresh state, own output topics), the
peers' order rotating from round to round. Each figure is events/s from the
first message a system processes to the last (startup excluded): the worker's
from its ``/metrics``, each peer's from its own count. The report gives the
median per system and the ratio worker / peer.

Every peer runs the minimal job of :mod:`streamseg.bench.job`; its output count
must equal the job's reference output count for the same events (a check that
the peers really did the work). The worker does much more per event (five
segmenters, dedupe, validation, timers), so the ratios are an upper bound on
what its framework costs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamseg.bench import job
from streamseg.bench.broker import (
    Worker,
    bench_settings,
    create_topic,
    free_port,
    produce_all,
    worker_throughput,
)
from streamseg.bench.core import lines_of
from streamseg.bench.peers import SYSTEMS, PeerConfig

__all__ = ["SYSTEMS", "WORKER", "bench_peers", "summary"]
from streamseg.config import Settings
from streamseg.errors import StreamsegError
from streamseg.simulate import SimConfig

WORKER = "streamseg worker"


def events_for(n: int, seed: int) -> list[bytes]:
    """The first ``n`` events of a seeded simulation long enough to have them."""
    lines: list[bytes] = []
    days = 30.0
    while len(lines) < n:
        lines = lines_of(SimConfig(max(200, n // 12), days, seed))
        days *= 2
    return lines[:n]


async def run_peer(system: str, cfg: PeerConfig, log: Path, timeout: float) -> dict[str, float]:
    """Run one peer process; its ``BENCH`` result (events, seconds, outputs)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamseg.bench.peers", system,
             json.dumps(dataclasses.asdict(cfg))], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    try:
        while True:
            for line in log.read_bytes().splitlines():
                if line.startswith(b"BENCH "):
                    return dict(json.loads(line[6:]))
            tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-15:])
            if proc.poll() is not None:
                raise StreamsegError(f"bench: peer {system} exited early; its log ends:\n{tail}")
            if time.monotonic() > deadline:
                raise StreamsegError(f"bench: peer {system} not done in {timeout:.0f} s; "
                                     f"its log ends:\n{tail}")
            await asyncio.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


async def run_worker(settings: Settings, n: int, tmp: Path, timeout: float,
                     env: dict[str, str] | None = None) -> float:
    from streamseg.app import ensure_topics

    await ensure_topics(settings)
    worker = Worker(settings, tmp / f"{settings.app_id}.log", env)
    try:
        await worker.ready()
        return await worker_throughput(settings, n, timeout)
    finally:
        worker.stop()


def round_settings(base: Settings, tmp: Path, r: int) -> Settings:
    """A worker of round ``r``: shared input topics, its own group, state and outputs."""
    app_id = f"{base.app_id}-w{r}"
    own: dict[str, Any] = {f"topic_{n}": f"{app_id}-{n}" for n in (
        "consent", "changes", "segments", "dead_letters", "models", "ticks")}
    return dataclasses.replace(base, app_id=app_id, data_dir=str(tmp / f"w{r}"),
                               metrics_port=free_port(), **own)


def variant_name(name: str) -> str:
    """The system name of a worker variant (``--variant``), e.g. ``streamseg worker [b1]``."""
    return f"{WORKER} [{name}]"


async def bench_peers(base: Settings, n: int, rounds: int, seed: int, tmp: Path,
                      systems: Sequence[str] = (WORKER, *SYSTEMS),
                      timeout: float = 900.0,
                      variants: Sequence[tuple[str, dict[str, str]]] = ()) -> dict[str, Any]:
    """Run every system ``rounds`` times over the same ``n`` events; all figures.

    With ``variants`` (name, ``STREAMSEG_*`` overrides) the worker runs once per
    variant in each round, right after each other (e.g. ``STREAMSEG_BATCH_SIZE=1``).
    """
    workers = {variant_name(name): env for name, env in variants} or {WORKER: {}}
    if WORKER in systems:
        systems = (*workers, *(s for s in systems if s != WORKER))
    from streamseg.app import ensure_topics

    settings = bench_settings(base, tmp, free_port())
    lines = events_for(n, seed)
    await ensure_topics(settings)
    await produce_all(settings, lines)
    inputs = (settings.topic_clickstream, settings.topic_purchases)
    runs: dict[str, list[dict[str, float]]] = {s: [] for s in systems}
    peers = [s for s in systems if s not in workers]
    for r in range(rounds):
        order = peers[r % len(peers):] + peers[:r % len(peers)] if peers else []
        names = [w for w in workers if w in systems]
        for i, name in enumerate(names[r % len(names):] + names[:r % len(names)] if names else []):
            print(f"  round {r + 1}: {name} ...", file=sys.stderr, flush=True)
            eps = await run_worker(round_settings(settings, tmp, r * 100 + i), n, tmp, timeout,
                                   workers[name])
            runs[name].append({"events": n, "events_per_s": eps})
        for system in order:
            tag = f"{settings.app_id}-{system}-r{r}"
            await create_topic(settings, f"{tag}-out")
            cfg = PeerConfig(settings.bootstrap_servers, inputs, f"{tag}-out", tag, n,
                             str(tmp / tag), settings.partitions)
            print(f"  round {r + 1}: {system} ...", file=sys.stderr, flush=True)
            res = await run_peer(system, cfg, tmp / f"{tag}.log", timeout)
            res["events_per_s"] = res["events"] / max(res["seconds"], 1e-9)
            runs[system].append(res)
    return {"events": n, "rounds": rounds, "reference_outputs": len(job.reference(lines)),
            "runs": runs}


def summary(result: dict[str, Any]) -> list[str]:
    """Report lines: median events/s per system, its rounds, output check, worker / peer."""
    runs: dict[str, list[dict[str, float]]] = result["runs"]
    median = {s: statistics.median(r["events_per_s"] for r in rs) for s, rs in runs.items() if rs}
    lines = [f"peers: {result['events']:,} events, {result['rounds']} interleaved rounds, "
             f"job reference outputs {result['reference_outputs']:,}"]
    worker = median.get(WORKER)
    if worker is None:  # variants: the first one is the reference
        worker = next((eps for s, eps in median.items() if s.startswith(WORKER)), None)
    for system, eps in median.items():
        each = ", ".join(f"{r['events_per_s']:,.0f}" for r in runs[system])
        line = f"  {system:<16} {eps:>10,.0f} events/s (median; rounds {each})"
        if system == "faust-bare":
            line += "  (iterates only, no job)"
        elif not system.startswith(WORKER):
            outs = {int(r["outputs"]) for r in runs[system]}
            ok = outs == {result["reference_outputs"]}
            line += f"  outputs {'/'.join(map(str, sorted(outs)))}{'' if ok else ' MISMATCH'}"
        if system.startswith(WORKER):
            if worker is not None and system != WORKER and eps != worker:
                line += f"  first variant / this = {worker / eps:.2f}x"
        elif worker is not None:
            line += f"  worker/{system} = {worker / eps:.1%}"
        lines.append(line)
    return lines
