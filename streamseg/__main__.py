"""Command line: ``python -m streamseg worker | replay | simulate | bench``."""

from __future__ import annotations

import argparse
import sys

from streamseg.config import Settings
from streamseg.errors import StreamsegError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamseg", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="run the Faust worker (settings from STREAMSEG_* env vars)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``streamseg`` command."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "worker":
            from streamseg.worker import run

            run(settings)
    except StreamsegError as exc:
        print(f"streamseg: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
