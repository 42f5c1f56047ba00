"""``streamseg check``: settings, package data and broker, before a worker is started.

Prints the effective configuration (every ``STREAMSEG_*`` variable with its
value, marked where it differs from the default; secrets hidden), compiles the
input schemas from the installed package and the audiences file, checks that the
worker could create and write ``STREAMSEG_DATA_DIR`` (creating nothing), and (unless
``--offline``) asks the broker for its topics. Bad settings never get here: ``Settings.from_env``
already stopped the command with one line (exit code 2).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TextIO

from streamseg.app import (
    broker_count,
    check_partitions,
    check_replication,
    partition_counts,
    topic_specs,
)
from streamseg.broker import wait_for_broker
from streamseg.config import Settings, check_data_dir
from streamseg.engine import segmenters
from streamseg.engine.contract import INPUT_SCHEMAS
from streamseg.engine.validate import Validator
from streamseg.resources import SAMPLE_EVENTS, SCHEMA_DIR


def report_settings(settings: Settings, out: TextIO) -> None:
    """The effective configuration, one ``VARIABLE=value`` per line.

    >>> import io
    >>> buf = io.StringIO(); report_settings(Settings(partitions=8), buf)
    >>> [line for line in buf.getvalue().splitlines() if "PARTITIONS" in line]
    ['  STREAMSEG_PARTITIONS=8  (set)']
    """
    for var, text, changed in settings.effective():
        out.write(f"  {var}={text}{'  (set)' if changed else ''}\n")


def check(settings: Settings, offline: bool = False, wait_s: float = 0.0,
          out: TextIO = sys.stdout) -> int:
    """Run the checks; return the exit code (0, or raise :class:`StreamsegError`)."""
    # the worker creates it with its parents: refuse here what it could not create or write
    check_data_dir(settings.data_dir)
    changed = sum(1 for _, _, c in settings.effective() if c)
    out.write(f"settings: ok ({changed} differ from the defaults)\n")
    report_settings(settings, out)
    Validator(settings)  # compiles every input schema: proves the package data is there
    schemas = sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json"))
    out.write(f"schemas: {len(schemas)} in {SCHEMA_DIR} "
              f"({len(INPUT_SCHEMAS)} input validators compiled)\n")
    out.write(f"sample events: {SAMPLE_EVENTS}\n")
    # compiles STREAMSEG_AUDIENCES_FILE like the worker: a bad file stops here (FILE:LINE)
    names = [seg.name for seg in segmenters.default(settings) if seg.name.startswith("audience:")]
    out.write(f"audiences: {len(names)} from {settings.audiences_file}\n" if settings.audiences_file
              else "audiences: none (STREAMSEG_AUDIENCES_FILE is not set)\n")
    where = Path(settings.data_dir).absolute()
    out.write(f"data dir: {where} ({'exists' if where.is_dir() else 'the worker creates it'})\n")
    if offline:
        out.write("broker: not checked (--offline)\n")
        return 0

    def say(line: str) -> None:
        out.write(f"broker: {line}\n")
        out.flush()

    topics = set(asyncio.run(wait_for_broker(settings, say, wait_s=wait_s)))
    missing = [spec.name for spec in topic_specs(settings) if spec.name not in topics]
    out.write(f"broker: {settings.bootstrap_servers} reachable, {len(topics)} topics; "
              + (f"missing (the worker creates them): {', '.join(missing)}\n" if missing
                 else "every streamseg topic exists\n"))
    brokers = asyncio.run(broker_count(settings))
    check_replication(settings, brokers)  # one line, exit 2
    out.write(f"replication: {settings.replication_factor} replica(s) per new topic, "
              f"{brokers} broker(s)\n")
    check_partitions(settings, asyncio.run(partition_counts(settings)))  # one line, exit 2
    out.write(f"partitions: every co-partitioned topic that exists has {settings.partitions}\n")
    return 0
