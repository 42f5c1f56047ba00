"""Reference subscriber of streamseg: each change once, never to a suppressed or erased customer.

A marketer's tool can start from this script. It reads ``segment-changes`` and
the tombstones of ``customer-segments`` and prints, as JSON lines on stdout,
what the tool acts on: each change and suppression notice once, and
``{"kind": "erasure", "customer_id": ...}`` when a customer is erased::

    python examples/dedupe_consumer.py --bootstrap 127.0.0.1:9092 \\
        --topic segment-changes --segments-topic customer-segments --group my-email-tool

* **Duplicates.** streamseg delivers at least once: after a crash or a rebalance
  a worker redoes the last second or so of input and publishes those changes
  again, with the same deterministic ``change_id`` and the same content. A
  change whose ``change_id`` was handled is dropped. Per customer, changes
  arrive in order (one partition per customer).
* **Consent.** A suppression notice with ``suppressed: true`` marks the customer
  suppressed: stop every send to them (a change still seen for them is
  skipped). ``suppressed: false`` lifts it; its ``segments`` are the customer's
  current segments, a state and not entries: do not send entry campaigns for
  segments the customer held before the withdrawal. The next change of a
  segmenter may skip sequence numbers (moves applied during the withdrawal).
* **Erasure.** The only signal is a tombstone (null value) on
  ``customer-segments``; ``segment-changes`` never carries a null value.
  Forget the customer (here: the suppression mark; a real tool deletes what it
  holds on them). The two topics are not ordered with each other, so which
  profile a change belongs to is told by its ``epoch`` (the customer's erasures
  before the profile started; absent: 0), not by reading order: the tombstone
  carries header ``streamseg-epoch``, the epoch after the erasure, and a change
  with a lower epoch is the erased profile's, skipped whenever it is read (one
  read late; or one published after the tombstone by a partition the erasure had
  not reached yet, when it came through another producer's partitioner). A
  fresh profile after a new consent has that epoch: passed, even if its
  tombstone is read late; and a tombstone read after a change of the profile that
  started after it (an epoch at least the tombstone's) is an old one: ignored, it
  neither deletes that profile nor lifts a suppression. A tombstone without the
  header (an older worker): changes with an earlier Kafka timestamp are skipped.
  Every tombstone is an erasure. The handled ``change_id``s are kept: they are
  hashes, and they stop a redelivered change of the erased profile.

Only aiokafka is needed. It commits its consumer offsets after it has handled
(printed) the records, so it is itself at least once: a real subscriber keeps
the handled ids and the marks where it applies the change (e.g. an upsert keyed
by ``change_id`` in the same database transaction as the side effect), so a
restart cannot repeat a side effect either. Here they live in memory, the ids
in a bounded first-in-first-out window (duplicates arrive within seconds of the
original, so a window of ``--window`` ids is ample).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import OrderedDict

from aiokafka import AIOKafkaConsumer, ConsumerRecord


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


async def run(args: argparse.Namespace) -> dict[str, int]:
    topics = [args.topic] + ([args.segments_topic] if args.segments_topic else [])
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=args.bootstrap, group_id=args.group,
        auto_offset_reset="earliest", enable_auto_commit=False,
        isolation_level="read_committed")
    seen = Seen(args.window)
    suppressed: set[str] = set()
    # customer id -> the epoch its latest erasure started (tombstone header streamseg-epoch);
    # a tombstone without it: its Kafka timestamp, the older rule
    epochs: dict[str, int] = {}
    erased_at: dict[str, int] = {}
    newest: dict[str, int] = {}  # customer id -> the highest epoch of a change handled
    counts = dict.fromkeys(("changes", "duplicates", "skipped", "erasures"), 0)
    idle = 0

    def handle(msg: ConsumerRecord[bytes, bytes]) -> dict[str, object] | None:
        """What the tool acts on for one record, or None."""
        if msg.topic != args.topic:  # customer-segments: only its tombstones matter here
            if msg.value is not None or msg.key is None:
                return None
            customer = msg.key.decode()
            epoch = dict(msg.headers or ()).get("streamseg-epoch")
            if epoch is None:
                erased_at[customer] = max(msg.timestamp, erased_at.get(customer, 0))
            elif int(epoch) <= newest.get(customer, -1):  # an erasure before a profile
                counts["skipped"] += 1  # already acted on: read late, not this profile's
                return None
            else:
                epochs[customer] = max(int(epoch), epochs.get(customer, 0))
            suppressed.discard(customer)
            counts["erasures"] += 1
            return {"kind": "erasure", "customer_id": customer}
        change = json.loads(msg.value)  # never null on segment-changes
        customer = change["customer_id"]
        if not seen.first_time(change["change_id"]):
            counts["duplicates"] += 1
            return None
        if (change.get("epoch", 0) < epochs.get(customer, 0)  # the erased profile's
                or msg.timestamp <= erased_at.get(customer, -1)):
            counts["skipped"] += 1
            return None
        newest[customer] = max(change.get("epoch", 0), newest.get(customer, 0))
        if change["kind"] == "suppression":
            (suppressed.add if change["suppressed"] else suppressed.discard)(customer)
        elif customer in suppressed:
            counts["skipped"] += 1
            return None
        counts["changes"] += 1
        return dict(change)

    await consumer.start()
    try:
        while args.idle <= 0 or idle < args.idle:
            batch = await consumer.getmany(timeout_ms=1000, max_records=500)
            idle = 0 if batch else idle + 1
            for records in batch.values():
                for msg in records:
                    out = handle(msg)
                    if out is not None:
                        sys.stdout.write(json.dumps(out, sort_keys=True) + "\n")
            if batch:
                sys.stdout.flush()
                await consumer.commit()
    finally:
        await consumer.stop()
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="segment-changes")
    parser.add_argument("--segments-topic", default="customer-segments",
                        help="compacted topic whose tombstones signal erasures ('': none)")
    parser.add_argument("--group", default="dedupe-consumer")
    parser.add_argument("--window", type=int, default=1_000_000, help="change ids remembered")
    parser.add_argument("--idle", type=int, default=0,
                        help="stop after this many idle seconds (0: run until interrupted)")
    args = parser.parse_args(argv)
    n = asyncio.run(run(args))
    print(f"{n['changes']} changes, {n['duplicates']} duplicates dropped, {n['skipped']} "
          f"skipped (suppressed or erased customer), {n['erasures']} erasures", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
