"""The lookup API on two real workers, queried over HTTP with urllib (no Faust test client).

Two worker subprocesses share the partitions of one app id, each with its own
Faust web server. Input is keyed by the raw customer id and partitioned by the
Kafka default partitioner (murmur2), the routing assumption of
``streamseg.web``. Pseudonymisation is on, so the path carries the raw id, the
request is routed by it, and the owner looks up its keyed hash.

* ``GET /customers/{id}`` gives the same answer from either worker, equal to
  the pure engine's segments for that customer (and valid per
  ``streamseg/schemas/lookup-customer.schema.json``); ``?scope=local`` shows that
  exactly one worker holds the customer, so one of the two answers was routed.
* ``GET /segments`` from either worker is the sum of both workers'
  ``?scope=local`` shares and equals the engine's segment sizes.
* After an erasure request: 404 from both. After a consent withdrawal: 200
  with ``suppressed: true``, a suppression notice on ``segment-changes`` and a
  suppressed ``customer-segments`` record.

And with input produced by confluent-kafka's default partitioner (librdkafka,
CRC32) for customers whose CRC32 and murmur2 partitions differ, so the state
is not where the router looks: both workers still answer 200 with the engine's
segments (for some customers the routed worker holds nothing and the answer
comes from the other worker), and an unknown id is 404 from both. After a
withdrawal and a grant, once the consent copies on the other partitions are in
the table, the answer is still the customer's own state, not a copy's empty
profile (review10).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka_helpers import free_port
from test_partitioners import foreign_ids, librdkafka_produce
from worker_proc import T0, Tail, Workers, _event, engine_run, feed_all, make_settings, story

from streamseg import codec
from streamseg.app import ensure_topics
from streamseg.config import DAY, Settings
from streamseg.engine.events import format_ts
from streamseg.engine.kpis import merge, report
from streamseg.engine.lookup import segment_sizes
from streamseg.engine.processor import Engine
from streamseg.engine.validate import pseudonymise
from streamseg.punctuator import COPY

SECRET = "lookup-secret"


def sizes_of(body: dict[str, Any]) -> dict[str, Any]:
    """A ``GET /segments`` body without its KPIs."""
    return {k: v for k, v in body.items() if k != "kpis"}


def kpis_close(got: dict[str, Any], want: dict[str, Any]) -> bool:
    """Equal KPIs, floats to 1e-9 (two workers sum in another order than one engine)."""
    if {(s, g) for s, per in got.items() for g in per} != {
            (s, g) for s, per in want.items() for g in per}:
        return False
    for s, per in want.items():
        for g, cell in per.items():
            other = got[s][g]
            if set(other) != set(cell):
                return False
            for k, v in cell.items():
                if (v is None) != (other[k] is None) or (
                        v is not None and abs(v - other[k]) > 1e-9 * max(1.0, abs(v))):
                    return False
    return True


def get(port: int, path: str) -> tuple[int, Any]:
    """(status, decoded JSON body) of a GET on a worker's web server."""
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=20) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def status_of(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=20) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


async def aget(port: int, path: str) -> tuple[int, Any]:
    return await asyncio.to_thread(get, port, path)


async def answer_until(port: int, path: str, done: Callable[[int, Any], bool],
                       timeout: float = 60.0) -> tuple[int, Any]:
    """The lookup's answer once ``done(status, body)``, else the last one after ``timeout``.

    A worker sends a batch's outputs, acknowledged, before it writes the states that
    record them (``streamseg.batch.flush``): a record seen on an output topic may be
    ahead of what a lookup answers by that batch.
    """
    answer = await aget(port, path)
    deadline = asyncio.get_running_loop().time() + timeout
    while not done(*answer) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.25)
        answer = await aget(port, path)
    return answer


def customer_path(cid: str) -> str:
    return "/customers/" + urllib.parse.quote(cid, safe="")


def consent(cid: str, kind: str, day: float) -> tuple[str, bytes, bytes]:
    body = {"event_id": f"{kind}-{cid}", "customer_id": cid, "type": kind,
            "ts": format_ts(T0 + day * DAY)}
    return "consent", cid.encode(), codec.dumps(body)


def two_worker_settings(tag: str, tmp_path: Path, broker_url: str) -> list[Settings]:
    """Settings of two workers of one app (own web port and data dir each); the first is shared."""
    settings = make_settings(tag, tmp_path / "data", broker_url, partitions=4,
                             store="rocksdb://", rfm_min_samples=10**9, cluster_warmup=10**9,
                             pseudonymise_key=SECRET, web_bind="127.0.0.1",
                             web_host="127.0.0.1")
    return [dataclasses.replace(settings, web_port=free_port(), data_dir=str(tmp_path / f"d{n}"))
            for n in range(2)]


async def test_lookup_finds_customers_a_crc32_producer_placed(
    tmp_path: Path, broker_url: str, bootstrap_servers: str,
    assert_schema: Callable[[str, Any], None],
) -> None:
    per_worker = two_worker_settings("lookcrc", tmp_path, broker_url)
    settings, ports = per_worker[0], [s.web_port for s in per_worker]
    # six ids: whichever two partitions a worker gets, some of them cross workers
    cids = foreign_ids("crc-", 6, 4)
    inputs = [_event("purchase", cid, f"{cid}-{n}", T0 + n * 3600 + i * 60)
              for n in range(2) for i, cid in enumerate(cids)]
    states, _ = engine_run(settings, inputs)
    engine = Engine(settings)
    await ensure_topics(settings)
    with Workers(broker_url, tmp_path) as workers:
        procs = await workers.start_ready(
            [(f"crc-web-{n}", s) for n, s in enumerate(per_worker)])
        await asyncio.to_thread(librdkafka_produce, bootstrap_servers, settings, inputs)
        for _ in range(240):
            total = await aget(ports[0], "/segments")
            if total[0] == 200 and total[1]["customers"] == len(cids):
                break
            await asyncio.sleep(0.5)
        assert total[1]["customers"] == len(cids), total
        crossed = 0
        for cid in cids:
            alias = pseudonymise(SECRET, cid)
            answers = [await aget(port, customer_path(cid)) for port in ports]
            assert answers[0] == answers[1], (cid, answers)
            status, body = answers[0]
            assert status == 200, (cid, body)
            assert_schema("lookup-customer", body)
            state = states[alias]
            assert state is not None
            assert body["customer_id"] == alias and body["segments"] == engine.segment_views(state)
            assert body["features"]["purchases_total"] == 2
            # one worker holds the customer; the other is the routed owner holding
            # nothing (404: the answer came from the search) or not the owner (421)
            local = sorted([await aget(port, customer_path(cid) + "?scope=local")
                            for port in ports], key=lambda a: a[0])
            assert local[0] == answers[0] and local[1][0] in (404, 421), (cid, local)
            crossed += local[1][0] == 404
        assert crossed >= 1, "no customer whose routed worker lacks it: the search is untested"

        # withdrawn and granted again (review10): the consent copies on the other partitions
        # (markers, made fresh empty profiles by the grant's copy) are never the answer
        again = cids[:3]
        aliases = {pseudonymise(SECRET, cid).encode() for cid in again}
        await asyncio.to_thread(librdkafka_produce, bootstrap_servers, settings, [
            consent(cid, kind, day) for cid in again
            for kind, day in (("consent_withdrawn", 1.0), ("consent_granted", 2.0))])

        def copies_granted(tail: Tail) -> bool:  # every grant copy is in the table
            done = {k for _, _, k, v in tail.records
                    if v is not None and (d := codec.loads(v)).get(COPY) and not d["withdrawn"]}
            return aliases <= done

        topic = f"{settings.app_id}-customer-state-changelog"
        async with Tail(bootstrap_servers, topic) as changelog:
            assert await changelog.until(copies_granted, timeout=60.0)
        for cid in again:
            state = states[pseudonymise(SECRET, cid)]
            assert state is not None
            for port in ports:
                status, body = await aget(port, customer_path(cid))
                assert status == 200 and not body["suppressed"], (cid, port, body)
                assert body["segments"] == engine.segment_views(state), (cid, port, body)
                assert body["features"]["purchases_total"] == 2, (cid, port, body)
        unknown = [await aget(port, customer_path("crc-nobody")) for port in ports]
        assert unknown == [(404, {"error": "unknown_customer"})] * 2
        refused = (400, {"error": "bad_scope", "allowed": ["local"]})
        assert await aget(ports[0], "/segments?scope=bogus") == refused
        assert await aget(ports[1], customer_path("nobody") + "?scope=all") == refused
        for proc in procs:
            assert proc.crashes() == [], proc.tail()


async def test_lookup_from_either_worker(
    tmp_path: Path, broker_url: str, bootstrap_servers: str,
    assert_schema: Callable[[str, Any], None],
) -> None:
    settings = make_settings("lookup", tmp_path / "data", broker_url, partitions=4,
                             store="rocksdb://", rfm_min_samples=10**9, cluster_warmup=10**9,
                             pseudonymise_key=SECRET, web_bind="127.0.0.1",
                             web_host="127.0.0.1")
    ports = [free_port(), free_port()]
    per_worker = [
        dataclasses.replace(settings, web_port=port, data_dir=str(tmp_path / f"data-{n}"))
        for n, port in enumerate(ports)
    ]
    inputs = story(customers=12, events_per_customer=4, seed=5, prefix="shopper-")
    raw_ids = sorted({key.decode() for _, key, _ in inputs})
    ref = Engine(settings)
    states, _ = engine_run(settings, inputs, ref)
    engine = Engine(settings)
    await ensure_topics(settings)
    b = bootstrap_servers

    with Workers(broker_url, tmp_path) as workers:
        procs = await workers.start_ready([(f"web-{n}", s) for n, s in enumerate(per_worker)])
        await feed_all(b, settings, inputs)

        # both workers hold a share of the state, and the summed sizes are the engine's
        expected_sizes = segment_sizes(s for s in states.values() if s is not None)
        expected_sizes["workers"] = 2
        # KPIs: the two workers' shares summed, ratios from the sums: the one engine's
        expected_kpis = report(merge([ref.kpis.view()]))
        for _ in range(240):
            local = [(await aget(port, "/segments?scope=local"))[1] for port in ports]
            total = await aget(ports[0], "/segments")
            if (total[0] == 200 and sizes_of(total[1]) == expected_sizes
                    and kpis_close(total[1]["kpis"], expected_kpis)
                    and all(part["customers"] for part in local)):
                break
            await asyncio.sleep(0.5)
        assert (total[0], sizes_of(total[1])) == (200, expected_sizes), (total, local)
        assert kpis_close(total[1]["kpis"], expected_kpis), (total[1]["kpis"], expected_kpis)
        assert all(part["kpis"] for part in local), local  # each worker holds a share
        assert all(part["customers"] > 0 for part in local), local
        assert sum(part["customers"] for part in local) == len(raw_ids)
        assert await aget(ports[1], "/segments") == total
        assert_schema("lookup-segments", total[1])

        # every customer: the same answer from either worker, the engine's segments
        for cid in raw_ids:
            alias = pseudonymise(SECRET, cid)
            answers = [await aget(port, customer_path(cid)) for port in ports]
            assert answers[0] == answers[1], (cid, answers)
            # exactly one worker holds the customer: the other answer was forwarded
            local = [await aget(port, customer_path(cid) + "?scope=local") for port in ports]
            assert sorted(status for status, _ in local) == [200, 421], (cid, local)
            assert answers[0] in local
            status, body = answers[0]
            assert status == 200, (cid, body)
            assert_schema("lookup-customer", body)
            state = states[alias]
            assert state is not None
            assert body["customer_id"] == alias and body["suppressed"] is False
            assert body["segments"] == engine.segment_views(state)
            assert body["features"]["purchases_total"] == state.purchases
            assert body["features"]["currency"] == settings.base_currency
        # Faust's own table views stay off: they would show raw profiles
        table_view = await asyncio.to_thread(status_of, ports[0], "/table/customer-state/")
        assert table_view == 404
        unknown = [await aget(port, customer_path("nobody")) for port in ports]
        nobody = [await aget(port, customer_path("nobody") + "?scope=local") for port in ports]
        assert sorted(status for status, _ in nobody) == [404, 421], nobody
        assert unknown == [(404, {"error": "unknown_customer"})] * 2
        refused = (400, {"error": "bad_scope", "allowed": ["local"]})
        assert await aget(ports[0], "/segments?scope=bogus") == refused
        assert await aget(ports[1], customer_path("nobody") + "?scope=all") == refused

        # erasure -> 404 everywhere; withdrawal -> suppressed answer, notice, record
        erased, withdrawn = raw_ids[0], raw_ids[1]
        alias_w = pseudonymise(SECRET, withdrawn)
        async with Tail(b, settings.topic_segments) as segments, \
                Tail(b, settings.topic_changes) as changes:
            await feed_all(b, settings, [consent(erased, "erasure_requested", 400),
                                         consent(withdrawn, "consent_withdrawn", 400)])
            assert await segments.until(
                lambda t: (pseudonymise(SECRET, erased).encode(), None)
                in [(k, v) for _, _, k, v in t.records]
                and any(v is not None and v.get("customer_id") == alias_w and v["suppressed"]
                        for v in t.values()), timeout=60)
            assert await changes.until(
                lambda t: any(v.get("kind") == "suppression" and v["customer_id"] == alias_w
                              for v in t.values()), timeout=60)
            notice = next(v for v in changes.values() if v.get("kind") == "suppression")
            assert notice["suppressed"] is True and notice["segments"]
            assert_schema("segment-change", notice)
            for v in segments.values():
                if v is not None:
                    assert_schema("customer-segments", v)
        for port in ports:
            assert await answer_until(port, customer_path(erased), lambda s, _: s == 404) == (
                404, {"error": "unknown_customer"})
            status, body = await answer_until(port, customer_path(withdrawn),
                                              lambda s, b: s == 200 and b["suppressed"])
            assert (status, body["suppressed"], body["segments"], body["features"]) == (
                200, True, {}, None)
        after = await aget(ports[1], "/segments")
        assert (after[1]["customers"], after[1]["suppressed"]) == (len(raw_ids) - 2, 1)
        for proc in procs:
            assert proc.crashes() == [], proc.tail()
