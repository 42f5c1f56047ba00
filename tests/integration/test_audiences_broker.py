"""A worker with an audiences file on the real broker: an add-to-cart enters a cart audience.

The published audience change equals what the pure engine computes for the
same events, carries the holdout flag and matches the segment-change schema.
The audience is the example ``cart_abandoners`` without its idle hour (the
example enters by the clock an hour after the last activity; this test is about
an entry published at the event).
"""

from __future__ import annotations

import json
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
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "audiences.json"


def click(cid: str, eid: str, day: float, type_: str) -> Message:
    body = {"event_id": eid, "customer_id": cid, "ts": format_ts(T0 + day * DAY),
            "type": type_, "device": "desktop", "channel": "web", "session_id": f"s-{cid}"}
    return "click", cid.encode(), orjson.dumps(body)


@pytest.fixture
def worker(tmp_path: Path, broker_url: str) -> Iterator[Settings]:
    doc = json.loads(EXAMPLES.read_text())
    cart = doc["audiences"]["cart_abandoners"]
    cart["when"]["and"] = [c for c in cart["when"]["and"] if c.get("feature") != (
        "days_since_last_seen")]  # enters at the add-to-cart
    audiences = tmp_path / "audiences.json"
    audiences.write_text(json.dumps(doc))
    settings = make_settings("aud", tmp_path / "data", broker_url, partitions=2,
                             audiences_file=str(audiences), holdout_share=0.5)
    with running("aud", settings, broker_url, tmp_path):
        yield settings


async def test_worker_publishes_an_entered_audience_change(
    worker: Settings, bootstrap_servers: str, assert_schema: Any
) -> None:
    settings = worker
    inputs = [click("ann", "a1", 0.0, "page_view"), click("ann", "a2", 0.01, "add_to_cart")]
    for _, key, value in inputs:
        await produce(bootstrap_servers, settings.topic_clickstream, [(key, value)])
    expected = reference_changes(settings, inputs, Engine(settings))
    entered = [c for c in expected if c["segmenter"] == "audience:cart_abandoners"]
    assert [(c["from_segment"], c["to_segment"], c["trigger"]) for c in entered] == [
        (None, "in", "event")]
    got = await consume_all(bootstrap_servers, settings.topic_changes, len(expected),
                            timeout=90)
    changes = [orjson.loads(r.value) for r in got]
    for change in changes:
        assert_schema("segment-change", change)
    assert sorted(changes, key=lambda c: c["change_id"]) == sorted(
        expected, key=lambda c: c["change_id"])
    published = [c for c in changes if c["segmenter"] == "audience:cart_abandoners"]
    assert published == entered and isinstance(published[0]["holdout"], bool)
