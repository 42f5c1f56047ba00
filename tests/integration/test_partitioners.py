"""Partitioning is the producers' choice: streamseg is correct with any of them.

Inputs are produced with confluent-kafka (librdkafka: CRC32 ``consistent_random``
partitioner by default), with aiokafka (murmur2, like the Java client), mixed,
and with no key at all. The customer's state lives where its events arrive;
the worker's own work (clock moves, consent) must reach that partition:

* clock-driven moves happen for customers on a non-murmur2 partition;
* an erasure sent by one producer is final for events another producer sends;
* key-less messages are dead-lettered, never split a customer;
* the published changes equal the pure engine's, each change id once;
* a restarted worker keeps its event clock: a returning customer's event 12
  days after its last one (skew limit 7 days) is processed, not dead-lettered.
"""

from __future__ import annotations

import asyncio
import urllib.request
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from kafka_helpers import consume_all, free_port, produce
from prometheus_client.parser import text_string_to_metric_families
from worker_proc import (
    T0,
    Message,
    Tail,
    Workers,
    _event,
    change_ids,
    engine_run,
    first_purchases,
    make_settings,
    reference_changes,
    story,
    topic_of,
)

from streamseg import codec
from streamseg.app import ensure_topics
from streamseg.config import DAY, Settings
from streamseg.engine.events import format_ts
from streamseg.engine.processor import Engine
from streamseg.engine.segmenters.frequency import FrequencySegmenter
from streamseg.engine.segmenters.lifecycle import LifecycleSegmenter
from streamseg.partitions import home


def crc32_partition(key: bytes, partitions: int) -> int:
    """librdkafka's ``consistent_random`` for a non-empty key."""
    return zlib.crc32(key) % partitions


def foreign_ids(prefix: str, n: int, partitions: int) -> list[str]:
    """Customer ids that CRC32 and murmur2 put on different partitions."""
    out, i = [], 0
    while len(out) < n:
        cid = f"{prefix}{i}"
        if crc32_partition(cid.encode(), partitions) != home(cid.encode(), partitions):
            out.append(cid)
        i += 1
    return out


def librdkafka_produce(bootstrap: str, settings: Settings, messages: Sequence[Message],
                       keyless: bool = False) -> None:
    """Produce in order with confluent-kafka and its default partitioner (CRC32)."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5})
    for kind, key, value in messages:
        producer.produce(topic_of(settings, kind), value=value, key=None if keyless else key)
        producer.poll(0)
    assert producer.flush(30) == 0


def consent(cid: str, eid: str, typ: str, ts: float) -> Message:
    from datetime import UTC, datetime
    body = {"event_id": eid, "customer_id": cid, "type": typ,
            "ts": datetime.fromtimestamp(ts, tz=UTC).isoformat()}
    return "consent", cid.encode(), codec.dumps(body)


async def test_clock_moves_and_outputs_match_the_engine_with_a_crc32_producer(
    tmp_path: Path, broker_url: str, bootstrap_servers: str
) -> None:
    settings = make_settings("crc", tmp_path / "data", broker_url, partitions=4,
                             tick_interval_s=0.5)
    await ensure_topics(settings)
    quiet = foreign_ids("quiet", 3, 4)
    inputs = [_event("purchase", cid, f"{cid}-1", T0 + i * 60) for i, cid in enumerate(quiet)]
    inputs += story(customers=16, events_per_customer=8, seed=5, prefix="s")
    # a browser moves the clock 220 days on: the quiet buyers lapse with no event
    inputs += [_event("click", "busy", f"b{i}", T0 + 10 * i * DAY + 60) for i in range(23)]
    # the pure engine (per-customer rule segmenters: population ones depend on who saw
    # what), then one tick at the final watermark: changes carry their due times, so
    # any tick spacing gives these
    engine = Engine(settings, [FrequencySegmenter(settings), LifecycleSegmenter(settings)])
    states, steps = engine_run(settings, inputs, engine)
    watermark = max(ev.ts for ev, _ in steps) - settings.allowed_lateness_s
    reference = [c for _, out in steps for c in out.changes]
    for state in states.values():
        assert state is not None
        reference += engine.tick(state, watermark).changes
    rule_ref = {c["change_id"]: c for c in reference}
    expected_quiet = [c for c in reference if c["customer_id"] in quiet]
    assert sum(c["trigger"] == "clock" for c in expected_quiet) >= 6

    with Workers(broker_url, tmp_path) as workers:
        w = workers.new("crc-worker", settings)
        await w.start().ready()
        await asyncio.to_thread(librdkafka_produce, bootstrap_servers, settings, inputs)
        async with Tail(bootstrap_servers, settings.topic_changes) as tail:

            def quiet_changes(t: Tail) -> list[dict[str, Any]]:
                return [v for v in t.values() if v["customer_id"] in quiet
                        and v["segmenter"] in ("frequency", "lifecycle")]

            def done(t: Tail) -> bool:
                return (len(quiet_changes(t)) >= len(expected_quiet)
                        and set(change_ids(t.values())) >= set(rule_ref))

            finished = await tail.until(done, timeout=120, settle=3.0)
            key0 = ("customer_id", "segmenter", "to_segment", "trigger", "event_time")
            assert finished, (
                [tuple(c[k] for k in key0) for c in expected_quiet
                 if c not in quiet_changes(tail)][:10],
                len(set(rule_ref) - set(change_ids(tail.values()))),
                [tuple(c[k] for k in key0) for c in rule_ref.values()
                 if c["change_id"] not in set(change_ids(tail.values()))][:10])
            got = quiet_changes(tail)
            values = tail.values()
        key = ("customer_id", "segmenter", "from_segment", "to_segment", "trigger", "event_time")
        # clock moves reached the partitions CRC32 chose, at the engine's due times
        assert sorted(tuple(str(c[k]) for k in key) for c in got) == sorted(
            tuple(str(c[k]) for k in key) for c in expected_quiet)
        # rule changes: exactly the engine's, each change id published once
        ids = change_ids(values)
        assert set(ids) == set(rule_ref)
        assert [i for i, n in Counter(ids).items() if n > 1] == []
        for v in values:
            ref = rule_ref.get(v["change_id"])
            if ref is not None:
                assert all(v[k] == ref[k] for k in (*key, "sequence")), v
        assert w.crashes() == []


async def test_erasure_is_final_across_producers_and_keyless_input_is_dead_lettered(
    tmp_path: Path, broker_url: str, bootstrap_servers: str
) -> None:
    settings = make_settings("mixed", tmp_path / "data", broker_url, partitions=4)
    await ensure_topics(settings)
    eve = foreign_ids("eve", 1, 4)[0]
    b = bootstrap_servers
    with Workers(broker_url, tmp_path) as workers:
        w = workers.new("mixed-worker", settings)
        await w.start().ready()
        async with Tail(b, settings.topic_changes) as changes, \
                Tail(b, settings.topic_segments) as segments, \
                Tail(b, settings.topic_dead_letters) as dead:
            # eve buys through a Java-style producer (murmur2) and a librdkafka one (CRC32):
            # her events live on two partitions
            first = _event("purchase", eve, "e1", T0)
            await produce(b, settings.topic_purchases, [first[1:]])
            second = _event("purchase", eve, "e2", T0 + DAY)
            await asyncio.to_thread(librdkafka_produce, b, settings, [second])
            assert await changes.until(lambda t: {v["event_time"][:10] for v in t.values()}
                                       >= {format_ts(T0)[:10], format_ts(T0 + DAY)[:10]},
                                       timeout=60)
            # the erasure comes through librdkafka (CRC32 partition) ...
            erase = consent(eve, "x1", "erasure_requested", T0 + 2 * DAY)
            await asyncio.to_thread(librdkafka_produce, b, settings, [erase])
            assert await segments.until(lambda t: any(v is None for v in t.values()),
                                        timeout=60, settle=2.0)
            before = len(changes.records)
            # ... and a later event through murmur2 lands on the other partition: suppressed
            later = _event("purchase", eve, "e3", T0 + 3 * DAY)
            await produce(b, settings.topic_purchases, [later[1:]])
            # key-less page views (six, as in the issue): dead letters, no state anywhere
            keyless = [_event("click", "kim", f"k{i}", T0 + i * 60) for i in range(6)]
            await asyncio.to_thread(librdkafka_produce, b, settings, keyless, True)
            # barrier behind eve's later event on its partition: a junk message with her key
            await produce(b, settings.topic_purchases, [(eve.encode(), b"{")])
            assert await dead.until(lambda t: len(t.records) >= 7, timeout=60, settle=2.0)
            await changes.poll(1.0)
            assert len(changes.records) == before, "a change after the erasure"
            letters = dead.values()
            keyless_letters = [d for d in letters if d["key_b64"] is None]
            assert len(keyless_letters) == 6
            assert {d["reason"] for d in keyless_letters} == {"key_mismatch"}
        state = await consume_all(b, f"{settings.app_id}-customer-state-changelog", idle=2.0)
        assert not any(r.key == b"kim" for r in state)
        # every partition that held eve ends with the suppression marker
        latest: dict[int, Any] = {}
        for r in state:
            if r.key == eve.encode():
                latest[r.partition] = None if r.value is None else codec.loads(r.value)
        assert len(latest) >= 2
        for value in latest.values():
            assert value is None or (value["withdrawn"] and value["segments"] == {})
        assert w.crashes() == []


async def test_a_customer_split_by_two_partitioners_is_counted(
    tmp_path: Path, broker_url: str, bootstrap_servers: str
) -> None:
    """ivan clicks through a murmur2 producer and buys through a CRC32 one, ivy clicks
    through both: each has a state on two partitions, each numbering its changes from 1
    (an operator's run: the purchase's ``(none) -> one_time`` carried the id of the click's
    ``(none) -> prospect``, and a subscriber dropping known ids lost it; docs/RELIABILITY.md,
    "Store caveat"). The worker counts them (``streamseg_split_customers_total``, alert
    ``StreamsegSplitCustomers``) and says which partitions: the operator had no signal."""
    port = free_port()
    settings = make_settings("split", tmp_path / "data", broker_url, partitions=4,
                             metrics_port=port)
    await ensure_topics(settings)
    ivan, ivy = foreign_ids("ivan", 1, 4)[0], foreign_ids("ivy", 1, 4)[0]
    b = bootstrap_servers
    with Workers(broker_url, tmp_path) as workers:
        w = workers.new("split-worker", settings)
        await w.start().ready()
        async with Tail(b, settings.topic_changes) as changes:
            await produce(b, settings.topic_clickstream, [_event("click", ivan, "v1", T0)[1:],
                                                          _event("click", ivy, "y1", T0)[1:]])
            await asyncio.to_thread(librdkafka_produce, b, settings,
                                    [_event("purchase", ivan, "p1", T0 + 3600),
                                     _event("click", ivy, "y2", T0 + 60)])

            def both(t: Tail) -> bool:
                moves = [(v["customer_id"], v["segmenter"], v["to_segment"]) for v in t.values()]
                return {(ivan, "frequency", "prospect"), (ivan, "frequency", "one_time")} <= set(
                    moves) and moves.count((ivy, "frequency", "prospect")) == 2

            assert await changes.until(both, timeout=60, settle=2.0)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        split = {s.labels["stream"]: s.value for f in text_string_to_metric_families(text)
                 for s in f.samples if s.name == "streamseg_split_customers_total"}
        assert split == {"purchase": 1.0, "click": 1.0, "profile": 0.0}, split
        assert "two producer partitioners send its events" in w.tail()
        assert w.crashes() == []


async def test_restarted_worker_keeps_its_event_clock(
    tmp_path: Path, broker_url: str, bootstrap_servers: str
) -> None:
    settings = make_settings("clock", tmp_path / "data", broker_url, partitions=2,
                             max_future_skew_s=7 * DAY)
    await ensure_topics(settings)
    b = bootstrap_servers
    # "ret" buys once; others keep the clock moving for 11 days (steps under the skew)
    inputs = [_event("purchase", "ret", "r1", T0)]
    inputs += [_event("click", f"o{i % 5}", f"o{i}", T0 + i * DAY + 60) for i in range(1, 12)]
    back = _event("purchase", "ret", "r2", T0 + 12 * DAY)
    expected = [c for c in reference_changes(settings, [*inputs, back])
                if c["customer_id"] == "ret"]
    with Workers(broker_url, tmp_path) as workers:
        w = workers.new("clock-worker", settings)
        await w.start().ready()
        await produce(b, settings.topic_purchases, [inputs[0][1:]])
        await produce(b, settings.topic_clickstream, [m[1:] for m in inputs[1:]])
        async with Tail(b, f"{settings.app_id}-partition-clock-changelog") as clocks:
            newest = T0 + 11 * DAY + 60
            assert await clocks.until(
                lambda t: any(v is not None and float(v) >= newest for *_, v in t.records),
                timeout=60, settle=1.0)
        assert w.stop() == 0
        await w.start().ready()
        await produce(b, settings.topic_purchases, [back[1:]])
        async with Tail(b, settings.topic_changes) as changes:
            def ret(t: Tail) -> list[str]:
                return [v["change_id"] for v in t.values() if v["customer_id"] == "ret"
                        and v["segmenter"] in ("frequency", "lifecycle")]

            assert await changes.until(lambda t: set(ret(t)) >= {c["change_id"]
                                                                  for c in expected},
                                       timeout=60, settle=1.0)
        letters = await consume_all(b, settings.topic_dead_letters, idle=2.0)
        assert letters == [], [codec.loads(r.value or b"{}")["message"] for r in letters]
        assert w.crashes() == []


async def test_an_erasure_through_another_partitioner_leaves_the_compacted_topic_erased(
    tmp_path: Path, broker_url: str, bootstrap_servers: str
) -> None:
    """An operator's run with confluent-kafka: customers buy through a murmur2 producer,
    their erasure comes through librdkafka's partitioner (CRC32, another partition), and a
    purchase through murmur2 right after it is read on the profile's partition before the
    erasure's copy gets there. The original's tombstone then came before that purchase's
    profile record, and compaction keeps the last record: 7 of 10 erased customers ended
    with a live profile in ``customer-segments``. The copy that erases a profile now
    publishes a tombstone after it. Both inputs are produced while no worker runs, so the
    purchase is read before the copy exists."""
    settings = make_settings("erase2", tmp_path / "data", broker_url, partitions=4)
    await ensure_topics(settings)
    ids = foreign_ids("ed", 4, 4)
    b = bootstrap_servers
    with Workers(broker_url, tmp_path) as workers:
        w = workers.new("erase-worker", settings)
        await w.start().ready()
        await first_purchases(b, settings, ids)
        assert w.stop() == 0
        erasures = [consent(c, f"{c}-x", "erasure_requested", T0 + DAY) for c in ids]
        await asyncio.to_thread(librdkafka_produce, b, settings, erasures)
        await produce(b, settings.topic_purchases,
                      [_event("purchase", c, f"{c}-2", T0 + DAY + 60)[1:] for c in ids])
        again = workers.new("erase-worker-2", settings)
        await again.start().ready()
        async with Tail(b, settings.topic_segments) as segments:
            def erased_twice(t: Tail) -> bool:
                tombstones = Counter(key for _, _, key, value in t.records if value is None)
                return all(tombstones[c.encode()] >= 2 for c in ids)
            # (with one tombstone each, as before the fix, this waits out its timeout)
            await segments.until(erased_twice, timeout=30, settle=2.0)
        assert again.crashes() == []
    last: dict[bytes, bytes | None] = {}
    for r in await consume_all(b, settings.topic_segments, idle=2.0):
        last[r.key] = r.value
    assert {c: last[c.encode()] for c in ids} == dict.fromkeys(ids)
