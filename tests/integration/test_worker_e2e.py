"""The worker end to end on the real broker: events in, schema-valid changes and dead letters out.

The changes the worker publishes must equal what the pure engine computes for
the same events (the engine is the reference; the worker is a thin edge).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka_helpers import consume_all, produce, unique_name

from streamseg.config import DAY, Settings
from streamseg.engine.events import format_ts
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine
from streamseg.engine.validate import Valid, Validator

REPO = Path(__file__).resolve().parents[2]
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def settings_env(settings: Settings, broker_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "STREAMSEG_BROKER": broker_url,
            "STREAMSEG_APP_ID": settings.app_id,
            "STREAMSEG_PARTITIONS": str(settings.partitions),
            "STREAMSEG_DATA_DIR": settings.data_dir,
            "STREAMSEG_METRICS_PORT": "0",
            "STREAMSEG_TICK_INTERVAL_S": "3600",
            "STREAMSEG_MAX_FUTURE_SKEW_S": str(settings.max_future_skew_s),
        }
    )
    for name in ("clickstream", "purchases", "consent", "changes", "segments", "dead_letters",
                 "models", "ticks"):
        env[f"STREAMSEG_TOPIC_{name.upper()}"] = getattr(settings, f"topic_{name}")
    return env


def make_settings(tmp_path: Path) -> Settings:
    tag = unique_name("e2e")
    return Settings(
        app_id=tag,
        partitions=2,
        data_dir=str(tmp_path / "data"),
        topic_clickstream=f"{tag}-clickstream",
        topic_purchases=f"{tag}-purchases",
        topic_consent=f"{tag}-consent",
        topic_changes=f"{tag}-changes",
        topic_segments=f"{tag}-segments",
        topic_dead_letters=f"{tag}-dead-letters",
        topic_models=f"{tag}-models",
        topic_ticks=f"{tag}-ticks",
        tick_interval_s=3600.0,
        # the inputs jump 30 days of event time at once; the default 7-day
        # future-skew guard (docs/RELIABILITY.md) would dead-letter them
        max_future_skew_s=365 * DAY,
    )


def event(kind: str, cid: str, eid: str, day: float, **fields: Any) -> tuple[str, bytes, bytes]:
    body: dict[str, Any] = {"event_id": eid, "customer_id": cid, "ts": format_ts(T0 + day * DAY)}
    body.update(fields)
    return kind, cid.encode(), orjson.dumps(body)


def purchase(cid: str, eid: str, day: float, amount: float) -> tuple[str, bytes, bytes]:
    return event("purchase", cid, eid, day, type="purchase", order_id=f"o-{eid}",
                 amount=amount, currency="EUR", device="mobile", channel="app")


def reference(settings: Settings, inputs: list[tuple[str, bytes, bytes]]) -> list[dict[str, Any]]:
    """What the pure engine publishes for the valid inputs, in input order."""
    engine, validator = Engine(settings), Validator(settings)
    states: dict[str, CustomerState | None] = {}
    changes: list[dict[str, Any]] = []
    for kind, key, value in inputs:
        result = validator.check(kind, key, value)  # type: ignore[arg-type]
        if isinstance(result, Valid):
            cid = result.event.customer_id
            out = engine.apply(states.get(cid), result.event)
            states[cid] = out.state
            changes.extend(out.changes)
    return changes


@pytest.fixture
def worker(tmp_path: Path, broker_url: str):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path)
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamseg", "worker"],
            env=settings_env(settings, broker_url),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while b"Ready" not in log_path.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    yield settings, log_path
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    crashed = [ln for ln in log_path.read_text().splitlines() if "Crashed" in ln]
    assert not crashed, crashed


async def test_changes_and_dead_letters(worker, bootstrap_servers: str, assert_schema) -> None:  # type: ignore[no-untyped-def]
    settings, _log = worker
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

    expected = reference(settings, inputs)
    # frequency, lifecycle and channel first assignments of 3 customers, plus 2 lifecycle
    # moves the next event catches up on (RFM and clusters are not warm yet)
    assert len(expected) == 11
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
    import base64

    for letter in dead:  # the original bytes and position are kept: nothing is lost
        original = base64.b64decode(letter["value_b64"])
        src = letter["source"]
        assert positions[original] == (src["topic"], src["partition"], src["offset"])

    segments = await consume_all(bootstrap_servers, settings.topic_segments, timeout=20)
    latest = {r.key: orjson.loads(r.value) for r in segments}
    assert set(latest) == {b"alice", b"bob", b"carol"}
    for record in latest.values():
        assert_schema("customer-segments", record)
    # alice's move to "high" (day 5) is still within the default 7-day dwell on day 10
    assert latest[b"alice"]["segments"]["frequency"]["segment"] == "low"
