"""``streamseg simulate``: a seeded :class:`~streamseg.simulate.Simulation`'s events to a
JSON-lines file (or stdout) or to the input topics, and its ground truth to a file."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator
from typing import IO, Any

from streamseg import codec
from streamseg.config import Settings
from streamseg.engine.events import parse_ts
from streamseg.errors import StreamsegError
from streamseg.simulate import PERSONAS, SimConfig, Simulation


def write_jsonl(events: Iterator[dict[str, Any]], out: IO[bytes]) -> int:
    """Write one JSON object per line; return how many were written."""
    n = 0
    for ev in events:
        out.write(codec.dumps(ev) + b"\n")
        n += 1
    return n


def write_truth(truth: dict[str, str], out: IO[bytes]) -> None:
    """The ground truth as one JSON object ``{customer_id: persona}``."""
    out.write(codec.dumps(truth) + b"\n")


async def produce(
    events: Iterator[dict[str, Any]], settings: Settings, rate: float = 0.0
) -> int:
    """Send events to their input topics (key = customer id) at ``rate`` events/s (0: no limit)."""
    from streamseg.console import send_all, topic_for

    messages = (
        (topic_for(settings, ev), str(ev.get("customer_id", "")).encode() or None, codec.dumps(ev))
        for ev in events
    )
    return await send_all(settings, messages, rate)


def cli(args: argparse.Namespace, settings: Settings) -> int:
    """``streamseg simulate``: events to a JSON-lines file (or stdout) or to Kafka."""
    from streamseg.replay import open_out

    try:
        start = parse_ts(args.start)
    except ValueError as exc:
        raise StreamsegError(f"--start: {args.start!r} is not an RFC 3339 time ({exc})") from None
    personas = tuple(p for p in args.personas.split(",") if p) or tuple(PERSONAS)
    unknown = sorted(set(personas) - set(PERSONAS))
    if unknown:
        raise StreamsegError(f"--personas: unknown {unknown}; known {list(PERSONAS)}")
    cfg = SimConfig(args.customers, args.days, args.seed, start, args.invalid_share, personas)
    sim = Simulation(cfg)
    if args.truth:
        with open_out(args.truth) as fh:
            assert fh is not None
            write_truth(sim.truth, fh)
    if args.to_kafka:
        n = asyncio.run(produce(sim.events(), settings, args.rate))
        where = f"{settings.topic_clickstream}/{settings.topic_purchases}"
    else:
        with open_out(args.out) as out:
            assert out is not None
            n = write_jsonl(sim.events(), out)
        where = args.out
    print(f"simulated {n} events for {cfg.customers} customers -> {where}", file=sys.stderr)
    return 0
