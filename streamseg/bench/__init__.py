"""``streamseg bench``: the worker's figures on a broker, its peers, replay speed.

Modules: :mod:`~streamseg.bench.core` (no broker: sizes, replay, memory,
clustering quality), :mod:`~streamseg.bench.broker` (worker throughput, raw
loop, latency), :mod:`~streamseg.bench.job` and :mod:`~streamseg.bench.peers`
(the minimal job on other systems), :mod:`~streamseg.bench.compare` (the
interleaved rounds), :mod:`~streamseg.bench.replayspeed` (replay against a
decode-only loop) and :mod:`~streamseg.bench.report` (the command).
"""

from streamseg.bench.core import (
    QUICK,
    WELL_SEPARATED,
    Sizes,
    adjusted_rand,
    bench_ari,
    bench_replay,
)
from streamseg.bench.report import cli

__all__ = ["QUICK", "WELL_SEPARATED", "Sizes", "adjusted_rand", "bench_ari", "bench_replay", "cli"]
