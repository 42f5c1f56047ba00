"""Profile attributes on a real broker: the worker consumes ``customer-profiles``.

One worker (lookup API on) gets purchases and profile records: the lookup shows
the attributes merged by event time (a late older record does not overwrite a
newer value), a profile-only customer has attributes and no segment, a record
with an unknown attribute is dead-lettered with its reason, and an erasure
request removes the customer (404) with its attributes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka_helpers import free_port
from test_lookup_api import aget, answer_until, customer_path
from worker_proc import T0, Message, Tail, Workers, _event, feed_all, make_settings

from streamseg import codec
from streamseg.app import ensure_topics
from streamseg.config import DAY
from streamseg.engine.events import format_ts


def profile(cid: str, eid: str, day: float, **attributes: Any) -> Message:
    body = {"event_id": eid, "customer_id": cid, "ts": format_ts(T0 + day * DAY),
            "attributes": attributes}
    return "profile", cid.encode(), codec.dumps(body)


def erasure(cid: str, day: float) -> Message:
    body = {"event_id": f"erase-{cid}", "customer_id": cid, "type": "erasure_requested",
            "ts": format_ts(T0 + day * DAY)}
    return "consent", cid.encode(), codec.dumps(body)


async def test_profile_attributes_in_the_lookup_and_erased(
    tmp_path: Path, broker_url: str, bootstrap_servers: str,
    assert_schema: Callable[[str, Any], None],
) -> None:
    port = free_port()
    settings = make_settings("profiles", tmp_path / "data", broker_url, partitions=2,
                             rfm_min_samples=10**9, cluster_warmup=10**9,
                             web_port=port, web_bind="127.0.0.1", web_host="127.0.0.1")
    inputs = [
        _event("purchase", "alice", "a1", T0),
        profile("alice", "pa1", 1, country="DE", age_band="25-34", x_tier="gold"),
        profile("alice", "pa0", 0.5, country="FR"),  # late and older: country stays DE
        profile("bob", "pb1", 1, household_size=3),  # a profile-only customer
        profile("bob", "pb2", 2, shoe_size=42),  # unknown attribute: dead letter
    ]
    await ensure_topics(settings)
    async with Tail(bootstrap_servers, settings.topic_dead_letters) as letters:
        with Workers(broker_url, tmp_path) as workers:
            proc = workers.new("profiles", settings)
            proc.start()
            await proc.ready(timeout=120)
            await feed_all(bootstrap_servers, settings, inputs)
            body: Any = None
            for _ in range(240):
                status, body = await aget(port, customer_path("bob"))
                if status == 200:
                    break
                await asyncio.sleep(0.5)
            assert (status, body["attributes"], body["segments"]) == (
                200, {"household_size": 3}, {}), body
            # alice's two profiles may be on another partition than bob's: not yet applied
            status, body = await answer_until(
                port, customer_path("alice"),
                lambda s, b: s == 200 and b["attributes"].get("x_tier") == "gold"
                and b["features"] is not None and b["features"]["purchases_total"] == 1)
            assert status == 200 and body["attributes"] == {
                "country": "DE", "age_band": "25-34", "x_tier": "gold"}, body
            assert body["features"]["purchases_total"] == 1 and body["segments"]
            assert_schema("lookup-customer", body)
            assert await letters.until(lambda t: len(t.values()) >= 1, timeout=60)
            (letter,) = letters.values()
            assert (letter["reason"], letter["field"]) == (
                "schema_invalid", "attributes.shoe_size"), letter
            assert letter["source"]["topic"] == settings.topic_profiles

            await feed_all(bootstrap_servers, settings,
                           [erasure("alice", 3), profile("alice", "pa2", 4, country="AT")])
            for _ in range(240):
                status, body = await aget(port, customer_path("alice"))
                if status == 404:
                    break
                await asyncio.sleep(0.5)
            assert (status, body) == (404, {"error": "unknown_customer"})
            assert proc.crashes() == [], proc.tail()
