"""At-least-once delivery with ``change_id`` dedupe: the documented contract.

``STREAMSEG_PROCESSING_GUARANTEE=exactly_once`` is rejected (tests/unit/test_delivery.py;
why: docs/RELIABILITY.md). What streamseg promises instead: a change published
twice (work redone after a crash) carries the same ``change_id`` and content,
and a subscriber that drops known ids sees each change once, in order per
customer. Here the reference subscriber ``examples/dedupe_consumer.py`` reads a
real topic holding the engine's changes with crash-like redo windows (the last
records published again), and must print every change exactly once. It also skips the
changes of a customer between a withdrawal and a grant notice, and forgets a customer
on a ``customer-segments`` tombstone (the only signal of an erasure).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from kafka_helpers import create_topics, produce, unique_name
from worker_proc import reference_changes, story

from streamseg import codec
from streamseg.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def with_redos(records: list[bytes], every: int, window: int) -> list[bytes]:
    """``records`` with the last ``window`` re-published after every ``every`` records."""
    out: list[bytes] = []
    for i, rec in enumerate(records, 1):
        out.append(rec)
        if i % every == 0:
            out.extend(records[max(0, i - window):i])
    return out


async def test_dedupe_consumer_turns_redelivered_changes_into_unique_ones(
    bootstrap_servers: str,
) -> None:
    ref = reference_changes(Settings(), story(customers=24, events_per_customer=8, seed=5))
    assert len(ref) > 60
    records = [codec.dumps(c) for c in ref]
    sent = with_redos(records, every=25, window=7)
    duplicates = len(sent) - len(records)
    assert duplicates > 10
    topic, group = unique_name("dedupe-changes"), unique_name("dedupe-group")
    await create_topics(bootstrap_servers, [topic], partitions=3)
    await produce(bootstrap_servers, topic,
                  [(codec.loads(r)["customer_id"].encode(), r) for r in sent])

    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "dedupe_consumer.py"), "--bootstrap",
         bootstrap_servers, "--topic", topic, "--segments-topic", "", "--group", group,
         "--idle", "3"],
        capture_output=True, text=True, timeout=60, check=True)

    got: list[dict[str, Any]] = [codec.loads(line) for line in proc.stdout.splitlines()]
    ids = [c["change_id"] for c in got]
    assert len(ids) == len(set(ids)) == len(ref)  # each change exactly once
    by_id = {c["change_id"]: c for c in ref}
    assert all(c == by_id[c["change_id"]] for c in got)  # with the published content
    sequences: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
    for c in got:
        sequences[c["customer_id"], c["segmenter"]].append(c["sequence"])
    assert all(seq == list(range(1, len(seq) + 1)) for seq in sequences.values())
    assert f"{len(ref)} changes, {duplicates} duplicates dropped" in proc.stderr


def notice(customer: str, suppressed: bool, n: int) -> dict[str, Any]:
    return {"kind": "suppression", "change_id": f"{n:032x}", "customer_id": customer,
            "sequence": n, "suppressed": suppressed,
            "reason": "consent_withdrawn" if suppressed else "consent_granted",
            "event_time": "2026-01-01T00:00:00Z", "segments": {}}


async def test_dedupe_consumer_skips_suppressed_customers_and_forgets_erased_ones(
    bootstrap_servers: str,
) -> None:
    ref = reference_changes(Settings(), story(customers=8, events_per_customer=8, seed=3))
    per: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in ref:
        per[c["customer_id"]].append(c)
    erased, paused, older = sorted(per, key=lambda cid: -len(per[cid]))[:3]
    assert len(per[paused]) >= 4
    # paused: withdrawn after its first change, granted again before its last one
    stream: list[dict[str, Any]] = []
    for c in ref:
        if c is per[paused][-1]:
            stream.append(notice(paused, False, 2))
        stream.append(c)
        if c is per[paused][0]:
            stream.append(notice(paused, True, 1))
    topic, segments = unique_name("subscriber-changes"), unique_name("subscriber-segments")
    group = unique_name("subscriber-group")
    await create_topics(bootstrap_servers, [topic], partitions=3)
    await create_topics(bootstrap_servers, [segments], partitions=3, compacted=[segments])
    await produce(bootstrap_servers, topic,
                  [(c["customer_id"].encode(), codec.dumps(c)) for c in stream])
    await asyncio.sleep(0.05)  # the tombstone's Kafka timestamp is later than every change
    # erased: the worker's tombstone, with the epoch after the erasure; older: one without
    # (an older worker), told apart by Kafka timestamps
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(segments, key=erased.encode(), value=None,
                                     headers=[("streamseg-epoch", b"1")])
        await producer.send_and_wait(segments, key=older.encode(), value=None)
    finally:
        await producer.stop()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "dedupe_consumer.py"), "--bootstrap",
         bootstrap_servers, "--topic", topic, "--segments-topic", segments, "--group", group,
         "--idle", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    try:
        erasure = {"kind": "erasure", "customer_id": erased}
        while not lines or codec.loads(lines[-1]) != erasure:  # the tombstone has been read
            line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
            assert line, proc.stderr.read()
            lines.append(line)
        # then, published after the tombstone: a change of the erased profile (epoch 0, from
        # a partition the erasure had not reached: it came through another producer's
        # partitioner; its sequence may start at 1, as a new segmenter's does; a later Kafka
        # timestamp than the tombstone's), and a fresh profile's (after a new consent)
        last = per[erased][-1]
        stale = {**last, "change_id": "f" * 32, "sequence": 1, "segmenter": "channel"}
        fresh = {**last, "change_id": "e" * 32, "sequence": 1, "from_segment": None, "epoch": 1}
        await produce(bootstrap_servers, topic, [(erased.encode(), codec.dumps(stale)),
                                                 (erased.encode(), codec.dumps(fresh))])
        # the rest through the same buffered reader (communicate() would skip what
        # readline has buffered); stderr is a few lines
        out = await asyncio.wait_for(asyncio.to_thread(proc.stdout.read), 60)
        err = proc.stderr.read()
        returncode = await asyncio.to_thread(proc.wait, 30)
    finally:
        proc.kill()
    assert returncode == 0, err

    got: list[dict[str, Any]] = [codec.loads(line) for line in [*lines, *out.splitlines()]]
    mine = [c for c in got if c["customer_id"] == paused]
    assert [c["kind"] for c in mine] == ["change", "suppression", "suppression", "change"]
    assert mine[0] == per[paused][0] and mine[-1] == per[paused][-1]
    # by epoch: the erased profile's changes read after the tombstone skipped (the stale one
    # too, though later than the tombstone), the fresh profile's printed
    theirs = [c for c in got if c["customer_id"] == erased]
    early = theirs[:theirs.index(erasure)]  # read before the tombstone: acted on
    assert early == per[erased][:len(early)]
    assert theirs[len(early):] == [erasure, fresh]
    # without the header: the changes read before the tombstone printed, the rest skipped
    olds = [c for c in got if c["customer_id"] == older]
    assert olds[-1] == {"kind": "erasure", "customer_id": older}
    printed = len(olds) - 1
    assert olds[:-1] == per[older][:printed]
    skipped = (len(per[paused]) - 2 + len(per[erased]) - len(early) + 1
               + len(per[older]) - printed)
    for cid in set(per) - {paused, erased, older}:  # the others: all, in order per customer
        assert [c for c in got if c["customer_id"] == cid] == per[cid]
    assert (f"{len(got) - 2} changes, 0 duplicates dropped, {skipped} skipped "
            "(suppressed or erased customer), 2 erasures") in err
