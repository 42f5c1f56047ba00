"""The reference subscriber's erasure rules, on a fake consumer (no broker).

``examples/dedupe_consumer.py`` reads ``segment-changes`` and the tombstones of
``customer-segments``; the two topics are not ordered with each other, so a tombstone can
be read after changes of a profile that started after it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dedupe_consumer.py"


def subscriber() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dedupe_consumer_rules", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def change(cid: str, seq: int, ts: int, **over: Any) -> SimpleNamespace:
    body = {"kind": "change", "change_id": f"{cid}-{seq}-{sorted(over.items())}",
            "customer_id": cid, "segmenter": "lifecycle", "sequence": seq, "epoch": 1, **over}
    return SimpleNamespace(topic="segment-changes", key=cid.encode(),
                           value=json.dumps(body).encode(), timestamp=ts, headers=())


def tombstone(cid: str, ts: int, epoch: bytes) -> SimpleNamespace:
    return SimpleNamespace(topic="customer-segments", key=cid.encode(), value=None,
                           timestamp=ts, headers=[("streamseg-epoch", epoch)])


def run(records: list[SimpleNamespace]) -> dict[str, int]:
    module = subscriber()

    class Fake:
        def __init__(self, *args: object, **kwargs: object) -> None:
            self.batches = [{0: records}]

        async def start(self) -> None: ...

        async def stop(self) -> None: ...

        async def commit(self) -> None: ...

        async def getmany(self, **kwargs: object) -> dict[int, list[SimpleNamespace]]:
            return self.batches.pop(0) if self.batches else {}

    module.AIOKafkaConsumer = Fake  # type: ignore[attr-defined]
    args = argparse.Namespace(topic="segment-changes", segments_topic="customer-segments",
                              bootstrap="x", group="g", window=100, idle=1)
    counts: dict[str, int] = asyncio.run(module.run(args))
    return counts


def test_a_late_tombstone_of_an_older_erasure_neither_erases_nor_lifts_a_suppression() -> None:
    """A reviewer's case: x1's tombstone (epoch 1) read after the fresh profile that
    started after it (epoch 1) withdrew: the subscriber printed an erasure, lifted the
    suppression and passed the withdrawn profile's next change."""
    counts = run([
        change("c1", 1, 100),  # the fresh profile (after x1 and a grant)
        change("c1", 1, 110, kind="suppression", suppressed=True),  # it withdraws
        tombstone("c1", 50, b"1"),  # x1's tombstone, read late
        change("c1", 2, 120),  # a change of the fresh, withdrawn profile
    ])
    assert (counts["changes"], counts["erasures"], counts["skipped"]) == (2, 0, 2)


def test_a_change_of_the_erased_profile_is_dropped_whenever_read() -> None:
    counts = run([
        tombstone("c1", 50, b"1"),
        change("c1", 3, 60, epoch=0),  # the erased profile's, published after the tombstone
        change("c1", 1, 70),  # the fresh profile's
    ])
    assert (counts["changes"], counts["erasures"], counts["skipped"]) == (1, 1, 1)
