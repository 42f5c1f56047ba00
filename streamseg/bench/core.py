"""Benchmark parts that need no broker: sizes, replay, memory, clustering quality."""

from __future__ import annotations

import dataclasses
import gc
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamseg import codec
from streamseg.config import Settings
from streamseg.replay import Replayer, replay_lines
from streamseg.simulate import SimConfig, Simulation


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
