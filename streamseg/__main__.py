"""Command line: ``python -m streamseg worker | replay | simulate | bench``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from streamseg.config import Settings
from streamseg.errors import StreamsegError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamseg", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="run the Faust worker (settings from STREAMSEG_* env vars)")
    produce = sub.add_parser("produce", help="send a JSON-lines file of events to the input topics")
    produce.add_argument("file", type=Path)
    produce.add_argument(
        "--rate", type=float, default=0.0, help="events per second (0: as fast as possible)"
    )
    watch = sub.add_parser("watch", help="print segment changes from the beginning of the topic")
    watch.add_argument("--count", type=int, default=0, help="stop after this many changes")
    watch.add_argument("--idle", type=float, default=10.0, help="stop after this many idle seconds")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``streamseg`` command."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "worker":
            from streamseg.worker import run

            run(settings)
        elif args.command == "produce":
            from streamseg.console import produce_file

            sent = asyncio.run(produce_file(settings, args.file, args.rate))
            print(f"produced {sent} events from {args.file}", file=sys.stderr)
        elif args.command == "watch":
            from streamseg.console import watch

            seen = asyncio.run(watch(settings, args.count, args.idle))
            print(f"{seen} segment changes", file=sys.stderr)
    except StreamsegError as exc:
        print(f"streamseg: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
