"""At-least-once delivery with ``change_id`` dedupe: the documented contract.

``STREAMSEG_PROCESSING_GUARANTEE=exactly_once`` is rejected (tests/unit/test_delivery.py;
why: docs/RELIABILITY.md). What streamseg promises instead: a change published
twice (work redone after a crash) carries the same ``change_id`` and content,
and a subscriber that drops known ids sees each change once, in order per
customer. Here the reference subscriber ``examples/dedupe_consumer.py`` reads a
real topic holding the engine's changes with crash-like redo windows (the last
records published again), and must print every change exactly once.
"""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

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
         bootstrap_servers, "--topic", topic, "--group", group, "--idle", "3"],
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
