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

Separate modes: ``--peers`` (:mod:`streamseg.bench.compare`: the worker and
other stream processors on the same events) and ``--replay FILE``
(:mod:`streamseg.bench.replayspeed`: replay against a decode-only loop, no broker).

``BENCH_PROFILE="-m cProfile -o worker.prof"`` runs the worker subprocess under
those interpreter options (for profiling the worker during the benchmark).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from streamseg.bench.broker import bench_broker, check_broker
from streamseg.bench.core import QUICK, WELL_SEPARATED, Sizes, bench_ari, bench_memory, bench_replay
from streamseg.bench.latency import parse_variant
from streamseg.config import Settings
from streamseg.simulate import PERSONAS


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
    """``streamseg bench [--quick] [--peers [--events N] [--rounds R]] [--replay FILE]``."""
    if getattr(args, "replay", None):
        from streamseg.bench import replayspeed

        path = Path(args.replay)
        for line in replayspeed.summary(path, replayspeed.replay_vs_decode(path, settings)):
            print(line, flush=True)
        return 0
    check_broker(settings)
    if getattr(args, "workers", 0):
        from streamseg.bench import scaleout

        return scaleout.cli(args, settings)
    if getattr(args, "latency", ""):
        from streamseg.bench import latency

        return latency.cli(args, settings)
    if getattr(args, "peers", False):
        from streamseg.bench import compare

        n = args.events or (20_000 if args.quick else 100_000)
        rounds = args.rounds or (2 if args.quick else 3)
        systems = tuple(args.systems.split(",")) if args.systems else (
            compare.WORKER, *compare.SYSTEMS)
        print(f"streamseg bench --peers  broker={settings.bootstrap_servers}", flush=True)
        with tempfile.TemporaryDirectory(prefix="streamseg-bench-") as tmp:
            variants = [parse_variant(v) for v in getattr(args, "variant", [])]
            result = asyncio.run(compare.bench_peers(settings, n, rounds, 1, Path(tmp), systems,
                                                     variants=variants))
        for line in compare.summary(result):
            print(line, flush=True)
        return 0
    report(QUICK if args.quick else Sizes(), 1, settings)
    return 0
