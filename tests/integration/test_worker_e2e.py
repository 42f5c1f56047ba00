"""The worker end to end on the real broker: events in, schema-valid changes and dead letters out.

The changes the worker publishes must equal what the pure engine computes for
the same events (the engine is the reference; the worker is a thin edge).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka_helpers import consume_all, produce
from worker_proc import Message, make_settings, reference_changes, running

from streamseg.config import DAY, Settings
from streamseg.engine.events import format_ts
from streamseg.engine.processor import Engine

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def event(kind: str, cid: str, eid: str, day: float, **fields: Any) -> Message:
    body: dict[str, Any] = {"event_id": eid, "customer_id": cid, "ts": format_ts(T0 + day * DAY)}
    body.update(fields)
    return kind, cid.encode(), orjson.dumps(body)


def purchase(cid: str, eid: str, day: float, amount: float) -> Message:
    return event("purchase", cid, eid, day, type="purchase", order_id=f"o-{eid}",
                 amount=amount, currency="EUR", device="mobile", channel="app")


@pytest.fixture
def worker(tmp_path: Path, broker_url: str) -> Iterator[Settings]:
    """One worker with every segmenter, on unique topics (2 partitions)."""
    settings = make_settings("e2e", tmp_path / "data", broker_url, partitions=2)
    with running("e2e", settings, broker_url, tmp_path):
        yield settings


async def test_changes_and_dead_letters(
    worker: Settings, bootstrap_servers: str, assert_schema: Any
) -> None:
    settings = worker
    inputs = [
        purchase("alice", "a1", 0, 30.0),
        event("click", "bob", "b1", 0.5, type="page_view", device="desktop", session_id="s1"),
        purchase("alice", "a2", 5, 45.0),
        purchase("alice", "a3", 10, 25.0),
        purchase("alice", "a3", 10, 25.0),  # duplicate event id: a counted skip
        event("click", "bob", "b2", 40, type="add_to_cart", device="mobile", session_id="s2"),
        purchase("carol", "c1", 1, 500.0),
        purchase("carol", "c2", 45, 80.0),
    ]
    bad = [
        ("click", b"bob", b"{not json"),
        ("click", b"bob", orjson.dumps({"event_id": "x", "customer_id": "bob",
                                        "type": "teleport", "ts": "2026-01-01T00:00:00Z"})),
        ("purchase", b"dave", orjson.dumps({"event_id": "d1", "customer_id": "dave",
                                            "ts": "2026-01-02T00:00:00Z", "order_id": "o",
                                            "amount": "12", "currency": "EUR"})),
        ("purchase", b"erin", orjson.dumps({"event_id": "e1", "customer_id": "mallory",
                                            "ts": "2026-01-02T00:00:00Z", "order_id": "o",
                                            "amount": 12, "currency": "EUR"})),
    ]
    topic = {"click": settings.topic_clickstream, "purchase": settings.topic_purchases}
    positions = {}
    for kind, key, value in [*inputs, *bad]:
        [(part, offset)] = await produce(bootstrap_servers, topic[kind], [(key, value)])
        positions[value] = (topic[kind], part, offset)

    expected = reference_changes(settings, inputs, Engine(settings))
    # frequency, lifecycle and channel first assignments of 3 customers; moves at the
    # customers' own events (alice one_time -> high, carol one_time -> low, bob's channel
    # to mobile_web) and carol new -> active, caught up before her next event (RFM and
    # clusters are not warm yet)
    assert len(expected) == 13
    got = await consume_all(bootstrap_servers, settings.topic_changes, len(expected), timeout=60)
    changes = [orjson.loads(r.value) for r in got]
    for record, change in zip(got, changes, strict=True):
        assert_schema("segment-change", change)
        assert record.key == change["customer_id"].encode()
    assert sorted(changes, key=lambda c: c["change_id"]) == sorted(
        expected, key=lambda c: c["change_id"]
    )
    for cid in ("alice", "bob", "carol"):  # per-customer order is preserved
        assert [c for c in changes if c["customer_id"] == cid] == [
            c for c in expected if c["customer_id"] == cid
        ]

    letters = await consume_all(bootstrap_servers, settings.topic_dead_letters, len(bad))
    dead = [orjson.loads(r.value) for r in letters]
    for letter in dead:
        assert_schema("dead-letter", letter)
    by_reason = sorted((d["reason"], d["field"]) for d in dead)
    assert by_reason == [
        ("key_mismatch", "customer_id"),
        ("not_json", None),
        ("schema_invalid", "amount"),
        ("unknown_event_type", "type"),
    ]
    for letter in dead:  # the original bytes and position are kept: nothing is lost
        original = base64.b64decode(letter["value_b64"])
        src = letter["source"]
        assert positions[original] == (src["topic"], src["partition"], src["offset"])

    segments = await consume_all(bootstrap_servers, settings.topic_segments, timeout=20)
    latest = {r.key: orjson.loads(r.value) for r in segments}
    assert set(latest) == {b"alice", b"bob", b"carol"}
    for record in latest.values():
        assert_schema("customer-segments", record)
    # alice's move to "high" is published at the purchase that earns it (day 5; issue 8)
    assert latest[b"alice"]["segments"]["frequency"]["segment"] == "high"
