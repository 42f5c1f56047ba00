"""Replay speed against a decode-only loop over the same events file (no broker).

``streamseg bench --replay FILE`` reads the file into memory once, then times
(a) a loop that only decodes each line with the codec (orjson) and (b)
:func:`streamseg.replay.replay_lines` over the same lines, and prints both
rates and their ratio: the share of the bare decode speed that the engine
keeps. Best of ``repeat`` runs of each, so a noisy machine hurts less.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from streamseg import codec
from streamseg.config import Settings
from streamseg.replay import replay_lines


def decode_only(lines: Sequence[bytes]) -> float:
    """Seconds to decode every line (the floor any consumer of the file pays)."""
    loads = codec.loads
    started = time.perf_counter()
    for line in lines:
        loads(line)
    return time.perf_counter() - started


def replay_time(lines: Sequence[bytes], settings: Settings) -> tuple[float, int]:
    """Seconds to replay the lines through the engine, and the changes it wrote."""
    started = time.perf_counter()
    changes = sum(1 for _ in replay_lines(lines, settings))
    return time.perf_counter() - started, changes


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
    decode = min(decode_only(lines) for _ in range(repeat))
    runs = [replay_time(lines, settings) for _ in range(repeat)]
    replay = min(t for t, _ in runs)
    n = len(lines)
    return {"events": n, "changes": runs[0][1], "replay_events_per_s": n / replay,
            "decode_events_per_s": n / max(decode, 1e-9),
            "ratio": max(decode, 1e-9) / replay}


def summary(path: Path, r: dict[str, float]) -> list[str]:
    return [f"replay vs decode-only on {path} ({r['events']:,.0f} events, "
            f"{r['changes']:,.0f} changes)",
            f"  replay        {r['replay_events_per_s']:>12,.0f} events/s",
            f"  decode only   {r['decode_events_per_s']:>12,.0f} events/s",
            f"  replay/decode {r['ratio']:>12.2%}"]
