"""Command line: streamseg (or python -m streamseg) worker | check | replay | ...

Exit codes: 0 done; 2 a bad setting or input (one line on stderr naming it);
3 no broker reachable within STREAMSEG_BROKER_WAIT_S.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamseg.broker import BrokerUnavailable
from streamseg.config import Settings
from streamseg.errors import InputFileError, StreamsegError
from streamseg.metrics import REASONS


def bounded(kind: type[int] | type[float], low: float, high: float | None = None,
            *, above: bool = False) -> Callable[[str], Any]:
    """An argparse ``type``: a finite ``kind`` >= ``low`` (> with ``above``), <= ``high``.

    A bad value is argparse's error (usage, then one line naming the option), exit
    code 2: ``argument --customers: must be a whole number >= 1, got '-5'``.
    """
    noun = "a whole number" if kind is int else "a number"
    rule = (f"{noun} from {low:g} to {high:g}" if high is not None
            else f"{noun} {'>' if above else '>='} {low:g}")

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}") from None
        if not (math.isfinite(value) and (value > low if above else value >= low)
                and (high is None or value <= high)):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamseg", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="run the Faust worker (settings from STREAMSEG_* env vars)")
    check = sub.add_parser(
        "check", help="validate the settings, load the schemas, probe the broker; print the "
        "effective configuration")
    check.add_argument("--offline", action="store_true", help="do not contact the broker")
    check.add_argument("--wait", type=float, default=0.0,
                       help="seconds to keep retrying an unreachable broker (default 0: once)")
    produce = sub.add_parser("produce", help="send a JSON-lines file of events to the input topics")
    produce.add_argument("file", type=Path)
    produce.add_argument(
        "--rate", type=bounded(float, 0), default=0.0,
        help="events per second (0: as fast as possible)"
    )
    letters = sub.add_parser(
        "dead-letters", help="write the dead letters' original inputs as JSON lines, to fix "
        "and send again with `streamseg produce`")
    letters.add_argument("--out", type=Path, required=True, help="JSON-lines file to write")
    letters.add_argument("--reason", action="append", default=[], choices=REASONS,
                         metavar="REASON", help="only this reason (repeatable): "
                         + ", ".join(REASONS))
    letters.add_argument("--idle", type=float, default=5.0, metavar="SECONDS",
                         help="stop after this many idle seconds (default 5)")
    watch = sub.add_parser("watch", help="print segment changes from the beginning of the topic")
    watch.add_argument("--count", type=int, default=0,
                       help="stop after this many changes (default 0: no limit)")
    watch.add_argument("--idle", type=float, default=10.0, metavar="SECONDS",
                       help="stop after this many idle seconds (default 10)")
    _ops_parsers(sub)
    from streamseg.tools.cli import add_parsers as tools_parsers

    tools_parsers(sub)  # import, quality (issue 8)
    return parser


def _ops_parsers(sub: Any) -> None:
    """Subcommands ``replay``, ``simulate`` and ``bench`` (issue 4)."""
    replay = sub.add_parser("replay", help="run the engine over a JSON-lines file, no broker")
    replay.add_argument("file", type=Path)
    replay.add_argument("--out", default="-", help="segment changes, JSON lines (default stdout)")
    replay.add_argument("--segments-out", help="final customer-segments records, JSON lines")
    replay.add_argument(
        "--dead-letters", help="write bad lines here as dead letters and go on (default: stop)"
    )
    replay.add_argument("--quiet", action="store_true", help="no progress bar")
    sim = sub.add_parser("simulate", help="seeded persona events (JSON lines or Kafka)")
    sim.add_argument("--customers", type=bounded(int, 1), default=1000,
                     help="customers to simulate (default 1000)")
    sim.add_argument("--days", type=bounded(float, 0, above=True), default=180.0,
                     help="days of events (default 180)")
    sim.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sim.add_argument("--start", default="2025-09-01T00:00:00Z", help="RFC 3339 start time")
    sim.add_argument("--personas", default="", help="comma-separated subset of personas")
    sim.add_argument("--out", default="-", help="events, JSON lines (default stdout)")
    sim.add_argument("--truth", help="write {customer_id: persona} JSON here")
    sim.add_argument("--invalid-share", type=bounded(float, 0, 1), default=0.0,
                     help="share of corrupted events (0 to 1)")
    sim.add_argument("--to-kafka", action="store_true", help="produce to the input topics")
    sim.add_argument("--rate", type=bounded(float, 0), default=0.0,
                     help="events/s with --to-kafka (0: max)")
    bench = sub.add_parser("bench", help="throughput, latency, memory and ARI on the broker")
    bench.add_argument("--quick", action="store_true", help="small sizes (under 2 minutes)")
    bench.add_argument("--peers", action="store_true",
                       help="only the worker against other stream processors (streamseg[peers])")
    bench.add_argument("--events", type=int, default=0,
                       help="--peers: events (100k, quick 20k); --workers: events (30k)")
    bench.add_argument("--rounds", type=int, default=0,
                       help="--peers: rounds (3, quick 2); --latency: rounds (1)")
    bench.add_argument("--systems", default="", help="--peers: comma-separated subset")
    bench.add_argument("--workers", type=int, default=0,
                       help="only N workers (one app id) on one input: events/s, CPU split, "
                       "output vs replay")
    bench.add_argument("--latency", metavar="RATES", default="",
                       help="only event-to-change latency at these events/s, e.g. 500,2000")
    bench.add_argument("--seconds", type=float, default=15.0, help="--latency: seconds per rate")
    bench.add_argument("--variant", action="append", default=[],
                       help="--latency, --peers: worker variant name:KEY=V,... (STREAMSEG_*"
                       " overrides; repeatable)")
    bench.add_argument("--replay", metavar="FILE",
                       help="only replay vs a decode-only loop on FILE (no broker)")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``streamseg`` command."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "check":
            from streamseg.check import check

            return check(settings, offline=args.offline, wait_s=args.wait)
        messages = None
        if args.command == "produce":  # a missing file is told before the broker is asked
            from streamseg.console import file_messages

            messages = file_messages(settings, args.file)
        if (args.command in ("produce", "watch", "dead-letters")
                or getattr(args, "to_kafka", False)):
            from streamseg.broker import wait_for_broker
            from streamseg.worker import say

            asyncio.run(wait_for_broker(settings, say))
        if args.command == "worker":
            from streamseg.worker import run

            run(settings)
        elif messages is not None:
            from streamseg.console import send_all

            sent = asyncio.run(send_all(settings, messages, args.rate))
            print(f"produced {sent} events from {args.file}", file=sys.stderr)
        elif args.command == "dead-letters":
            return _dead_letters(args, settings)
        elif args.command == "watch":
            from streamseg.console import watch

            seen = asyncio.run(watch(settings, args.count, args.idle))
            print(f"{seen} segment changes", file=sys.stderr)
        elif args.command in ("replay", "simulate", "bench"):
            return _ops(args, settings)
        elif args.command in ("import", "quality"):
            from streamseg.tools.cli import run as tools_run

            return tools_run(args, settings)
    except BrokerUnavailable as exc:
        print(f"streamseg: error: {exc}", file=sys.stderr)
        return 3
    except StreamsegError as exc:
        print(f"streamseg: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _dead_letters(args: argparse.Namespace, settings: Settings) -> int:
    """``streamseg dead-letters``: export, then one summary line per reason on stderr."""
    from streamseg.console import export_dead_letters

    try:
        handle = args.out.open("w", encoding="utf-8")
    except OSError as exc:
        raise InputFileError(str(args.out), None, None, exc.strerror or str(exc)) from None
    with handle:
        counts = asyncio.run(export_dead_letters(settings, handle, set(args.reason), args.idle))
    for reason in sorted({r for r, _ in counts}):
        kept, left = counts[reason, True], counts[reason, False]
        print(f"{reason}: {kept} written to {args.out}"
              + (f", {left} not (not a JSON object, or redacted)" if left else ""),
              file=sys.stderr)
    if not counts:
        print(f"no dead letters on {settings.topic_dead_letters}"
              + (f" with reason {', '.join(args.reason)}" if args.reason else ""),
              file=sys.stderr)
    return 0


def _ops(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "replay":
        from streamseg.replay import cli as replay_cli

        return replay_cli(args, settings)
    if args.command == "simulate":
        from streamseg.simulatecli import cli as simulate_cli

        return simulate_cli(args, settings)
    from streamseg.bench import cli as bench_cli

    return bench_cli(args, settings)


if __name__ == "__main__":
    sys.exit(main())
