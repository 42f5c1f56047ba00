"""A new subscriber bootstraps every customer's current segments from the compacted
``customer-segments`` topic: latest value per key, erased customers tombstoned.

The bootstrapped view must equal the last ``customer-segments`` value the pure
engine produces per customer for the same events (population-learned
segmenters are kept out of reach so the comparison is exact).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from kafka_helpers import consume_all, topic_config
from worker_proc import T0, Message, Tail, Workers, engine_run, feed_all, make_settings, story

from streamseg import codec
from streamseg.config import DAY, Settings
from streamseg.engine.events import format_ts
from streamseg.resources import SCHEMA_DIR


def expected_view(settings: Settings, inputs: list[Message]) -> dict[str, dict[str, Any]]:
    _, steps = engine_run(settings, inputs)
    assert len(steps) == len(inputs)  # every input is valid
    view: dict[str, dict[str, Any]] = {}
    for ev, out in steps:
        if out.erased:
            view.pop(ev.customer_id, None)
        elif out.segments is not None:
            view[ev.customer_id] = out.segments
    return view


@pytest.mark.asyncio
async def test_new_subscriber_bootstraps_current_segments(
    broker_url: str, bootstrap_servers: str, tmp_path: Path
) -> None:
    settings = make_settings("segments", tmp_path / "data", broker_url, partitions=3,
                             rfm_min_samples=10**9, cluster_warmup=10**9)
    inputs = story(customers=12, events_per_customer=6, seed=11)
    erase = {"event_id": "x1", "customer_id": "c1", "type": "erasure_requested",
             "ts": format_ts(T0 + 400 * DAY)}
    inputs.append(("consent", b"c1", codec.dumps(erase)))
    expected = expected_view(settings, inputs)
    assert len(expected) == 11 and "c1" not in expected

    with Workers(broker_url, tmp_path) as workers:
        worker = workers.new("w", settings)
        worker.start()
        await worker.ready()
        await feed_all(bootstrap_servers, settings, inputs)
        async with Tail(bootstrap_servers, settings.topic_segments) as tail:
            ok = await tail.until(lambda t: any(v is None for v in t.values()), timeout=60,
                                  settle=2.0)
        assert ok, tail.values()
        assert worker.crashes() == []

    # a subscriber that arrives later: read everything, keep the latest value per key
    assert (await topic_config(bootstrap_servers, settings.topic_segments))[
        "cleanup.policy"] == "compact"
    records = await consume_all(bootstrap_servers, settings.topic_segments, timeout=30)
    view: dict[str, dict[str, Any]] = {}
    schema = jsonschema.Draft202012Validator(
        codec.loads((SCHEMA_DIR / "customer-segments.schema.json").read_bytes())
    )
    for r in records:
        assert r.key is not None
        cid = r.key.decode()
        if r.value is None:
            view.pop(cid, None)
            continue
        value = codec.loads(r.value)
        schema.validate(value)
        assert value["customer_id"] == cid
        view[cid] = value
    assert view == expected
