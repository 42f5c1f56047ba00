"""Smoke test of ``streamseg bench --peers`` on the real broker, tiny input.

Every peer that runs the job (raw aiokafka, Quix Streams, Bytewax, Faust with
a RocksDB table) consumes all the pre-produced events and emits exactly the
job's reference outputs; the report has a line per system. The worker is left
out here (its throughput path is the one of ``streamseg bench``, and its
start-up alone would double the run time).
"""

from __future__ import annotations

from pathlib import Path

from streamseg.bench import compare
from streamseg.config import Settings

N = 400


async def test_every_peer_processes_all_events_with_the_reference_outputs(
    broker_url: str, tmp_path: Path
) -> None:
    systems = ("aiokafka", "quix", "bytewax", "faust-table")
    settings = Settings(broker=broker_url, partitions=2)
    result = await compare.bench_peers(settings, N, 1, 5, tmp_path, systems, timeout=60.0)
    assert result["reference_outputs"] > 10
    for system in systems:
        (run,) = result["runs"][system]
        assert run["events"] == N, system
        assert run["outputs"] == result["reference_outputs"], system
        assert run["events_per_s"] > 0
    lines = compare.summary(result)
    assert len(lines) == 1 + len(systems) and not any("MISMATCH" in line for line in lines)
