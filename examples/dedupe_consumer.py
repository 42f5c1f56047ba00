"""Reference subscriber of ``segment-changes``: duplicates in, each change once out.

streamseg delivers at least once: after a crash or a rebalance a worker redoes
the last second or so of input and publishes those changes again, with the
same deterministic ``change_id`` and the same content. A subscriber drops a
change whose ``change_id`` it has already handled. This script does that and
prints each change once, as a JSON line on stdout::

    python examples/dedupe_consumer.py --bootstrap 127.0.0.1:9092 \\
        --topic segment-changes --group my-email-tool

Only aiokafka is needed. It commits its consumer offsets after it has handled
(printed) the records, so it is itself at least once: a real subscriber keeps
the handled ids where it applies the change (e.g. an upsert keyed by
``change_id`` in the same database transaction as the side effect), so a
restart of the subscriber cannot repeat a side effect either. Here the ids
live in memory, in a bounded first-in-first-out window (duplicates arrive
within seconds of the original, so a window of ``--window`` ids is ample).
Per customer, changes arrive in order (one partition per customer); a
redelivered change repeats one already seen and is dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import OrderedDict

from aiokafka import AIOKafkaConsumer


class Seen:
    """The last ``size`` change ids handled, oldest forgotten first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.ids: OrderedDict[str, None] = OrderedDict()

    def first_time(self, change_id: str) -> bool:
        """True (and remember it) if ``change_id`` was not handled yet."""
        if change_id in self.ids:
            return False
        self.ids[change_id] = None
        if len(self.ids) > self.size:
            self.ids.popitem(last=False)
        return True


async def run(args: argparse.Namespace) -> tuple[int, int]:
    consumer = AIOKafkaConsumer(
        args.topic, bootstrap_servers=args.bootstrap, group_id=args.group,
        auto_offset_reset="earliest", enable_auto_commit=False,
        isolation_level="read_committed")
    seen = Seen(args.window)
    unique = duplicates = idle = 0
    await consumer.start()
    try:
        while args.idle <= 0 or idle < args.idle:
            batch = await consumer.getmany(timeout_ms=1000, max_records=500)
            idle = 0 if batch else idle + 1
            for records in batch.values():
                for msg in records:
                    if msg.value is None:
                        continue
                    change = json.loads(msg.value)
                    if seen.first_time(change["change_id"]):
                        unique += 1
                        sys.stdout.write(json.dumps(change, sort_keys=True) + "\n")
                    else:
                        duplicates += 1
            if batch:
                sys.stdout.flush()
                await consumer.commit()
    finally:
        await consumer.stop()
    return unique, duplicates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="segment-changes")
    parser.add_argument("--group", default="dedupe-consumer")
    parser.add_argument("--window", type=int, default=1_000_000, help="change ids remembered")
    parser.add_argument("--idle", type=int, default=0,
                        help="stop after this many idle seconds (0: run until interrupted)")
    args = parser.parse_args(argv)
    unique, duplicates = asyncio.run(run(args))
    print(f"{unique} changes, {duplicates} duplicates dropped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
