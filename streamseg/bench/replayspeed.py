"""Replay speed against a decode-only loop over the same events file (no broker).

``streamseg bench --replay FILE`` reads the file into memory once, then times
(a) a loop that only decodes each line with the codec (orjson) and (b)
:func:`streamseg.replay.replay_lines` over the same lines, and prints both
rates and their ratio: the share of the bare decode speed that the engine
keeps. Best of ``repeat`` runs of each, so a noisy machine hurts less. Both
wall-clock and CPU time of this process (``time.process_time``) are measured:
on a machine shared with other busy processes the CPU-time rates (``*_cpu``)
are the comparable ones.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from streamseg import codec
from streamseg.config import Settings
from streamseg.replay import replay_lines


def decode_only(lines: Sequence[bytes]) -> tuple[float, float]:
    """Wall and CPU seconds to decode every line (the floor any consumer of the file pays)."""
    loads, bad = codec.loads, codec.DecodeError
    started, cpu = time.perf_counter(), time.process_time()
    for line in lines:
        try:  # noqa: SIM105 (contextlib.suppress costs a call per line: a slower floor)
            loads(line)
        except bad:  # a bad line costs its decode too
            pass
    return time.perf_counter() - started, time.process_time() - cpu


def replay_time(lines: Sequence[bytes], settings: Settings,
                path: str = "<input>") -> tuple[float, float, int, int]:
    """Wall and CPU seconds to replay the lines through the engine, the changes it wrote
    and the bad lines it dead-lettered (``replay --dead-letters``: a bad line goes on)."""
    dead = [0]

    def count(_: object) -> None:
        dead[0] += 1

    started, cpu = time.perf_counter(), time.process_time()
    changes = sum(1 for _ in replay_lines(lines, settings, path, count))
    return time.perf_counter() - started, time.process_time() - cpu, changes, dead[0]


def replay_vs_decode(path: Path, settings: Settings | None = None,
                     repeat: int = 3) -> dict[str, float]:
    """Events/s of the replay and of the decode-only loop on ``path``, and their ratio.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = pathlib.Path(d) / "ev.jsonl"
    ...     _ = p.write_bytes(b'{"customer_id":"c1","event_id":"e1","type":"page_view",'
    ...                       b'"ts":"2026-01-01T00:00:00Z","session_id":"s1"}\\n')
    ...     r = replay_vs_decode(p, repeat=1)
    >>> r["events"], 0 < r["ratio"]
    (1, True)
    """
    settings = settings or Settings()
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    decodes = [decode_only(lines) for _ in range(repeat)]
    runs = [replay_time(lines, settings, str(path)) for _ in range(repeat)]
    decode = min(w for w, _ in decodes)
    decode_cpu = max(min(c for _, c in decodes), 1e-9)
    replay = min(w for w, _, _, _ in runs)
    replay_cpu = max(min(c for _, c, _, _ in runs), 1e-9)
    n = len(lines)
    return {"events": n, "changes": runs[0][2], "dead_letters": runs[0][3],
            "replay_events_per_s": n / replay,
            "decode_events_per_s": n / max(decode, 1e-9),
            "ratio": max(decode, 1e-9) / replay,
            "replay_events_per_s_cpu": n / replay_cpu, "decode_events_per_s_cpu": n / decode_cpu,
            "ratio_cpu": decode_cpu / replay_cpu}


def summary(path: Path, r: dict[str, float]) -> list[str]:
    dead = f", {r['dead_letters']:,.0f} dead letters" if r.get("dead_letters") else ""
    return [f"replay vs decode-only on {path} ({r['events']:,.0f} events, "
            f"{r['changes']:,.0f} changes{dead})",
            f"                {'wall clock':>21} {'CPU time':>21}",
            f"  replay        {r['replay_events_per_s']:>12,.0f} events/s"
            f" {r['replay_events_per_s_cpu']:>12,.0f} events/s",
            f"  decode only   {r['decode_events_per_s']:>12,.0f} events/s"
            f" {r['decode_events_per_s_cpu']:>12,.0f} events/s",
            f"  replay/decode {r['ratio']:>21.2%} {r['ratio_cpu']:>21.2%}"]
