"""The worker's /metrics endpoint: scraped over HTTP, parsed, exact values, promtool-clean.

A real worker subprocess on the test broker gets a few valid events and one
invalid one; the scrape must show exactly those counts, the transitions and
segment sizes the pure engine computes for the rule segmenters, a table size
of three customers, and no customer id anywhere in the labels. The KPI
counters per segment and the worker's ``GET /segments`` KPIs equal the pure
engine's sums.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka_helpers import create_topics, free_port, produce
from prometheus_client.parser import text_string_to_metric_families
from worker_proc import RULE_SEGMENTERS, T0, Workers, make_settings

from streamseg import codec
from streamseg.config import DAY
from streamseg.engine.events import format_ts
from streamseg.engine.features import CustomerState
from streamseg.engine.kpis import merge, report
from streamseg.engine.processor import Engine
from streamseg.engine.validate import Valid, Validator
from streamseg.metrics import KPI_COUNTERS

Sample = tuple[str, dict[str, str], float]



def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.status == 200
        return str(resp.read().decode())


def samples(text: str) -> list[Sample]:
    return [(s.name, dict(s.labels), s.value)
            for family in text_string_to_metric_families(text) for s in family.samples]


def value(parsed: list[Sample], name: str, **labels: str) -> float | None:
    for n, lab, v in parsed:
        if n == name and lab == labels:
            return v
    return None


def purchase(cid: str, eid: str, day: float, amount: float) -> dict[str, Any]:
    return {"event_id": eid, "customer_id": cid, "ts": format_ts(T0 + day * DAY),
            "type": "purchase", "order_id": f"o-{eid}", "amount": amount, "currency": "EUR"}


def click(cid: str, eid: str, day: float) -> dict[str, Any]:
    return {"event_id": eid, "customer_id": cid, "ts": format_ts(T0 + day * DAY),
            "type": "page_view", "session_id": f"s-{eid}", "device": "mobile"}


def get_json(port: int, path: str) -> tuple[int, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=20) as resp:
        return int(resp.status), json.loads(resp.read())


async def test_metrics_endpoint_scrape(
    tmp_path: Path, broker_url: str, promtool: str, assert_schema: Callable[[str, Any], None],
) -> None:
    started = time.time()
    port = free_port()
    settings = make_settings("metrics", tmp_path / "data", broker_url, partitions=2,
                             metrics_port=port, store="memory://", web_port=free_port(),
                             web_bind="127.0.0.1", web_host="127.0.0.1")
    inputs: list[tuple[str, dict[str, Any]]] = [
        ("purchase", purchase("m1", "e1", 0.0, 30.0)),
        ("click", click("m1", "e2", 1.0)),
        ("purchase", purchase("m1", "e3", 3.0, 25.0)),
        ("purchase", purchase("m2", "e4", 2.0, 80.0)),
        ("click", click("m3", "e5", 2.5)),
        ("purchase", purchase("m2", "e6", 4.0, -5.0)),  # invalid: negative amount
    ]
    await create_topics(broker_url.removeprefix("kafka://"),
                        [settings.topic_clickstream, settings.topic_purchases], partitions=2)
    with Workers(broker_url, tmp_path) as workers:
        worker = await workers.new("w1", settings).start().ready()
        deadline = time.monotonic() + 60
        # one input at a time, each consumed before the next is sent: the worker reads two
        # topics, and m1's purchase of day 3 read before its click of day 1 was credited to
        # channel "none", not "mobile_web" as in the pure engine below (a CI run)
        for i, (kind, body) in enumerate(inputs, 1):
            topic = settings.topic_purchases if kind == "purchase" else settings.topic_clickstream
            await produce(broker_url.removeprefix("kafka://"), topic,
                          [(body["customer_id"].encode(), codec.dumps(body))])
            while True:
                text = await asyncio.to_thread(scrape, port)
                parsed = samples(text)
                consumed = sum(v for n, _, v in parsed if n == "streamseg_events_consumed_total")
                if consumed >= i or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
        lookup = await asyncio.to_thread(get_json, settings.web_port, "/segments")
        assert not worker.crashes(), worker.tail()

    total = "streamseg_events_consumed_total"
    assert value(parsed, total, stream="purchase", outcome="processed") == 3.0
    assert value(parsed, total, stream="click", outcome="processed") == 2.0
    assert value(parsed, total, stream="purchase", outcome="dead_letter") == 1.0
    assert consumed == 6.0
    dead = {lab["reason"]: v for n, lab, v in parsed if n == "streamseg_dead_letters_written_total"}
    assert dead["schema_invalid"] == 1.0 and sum(dead.values()) == 1.0
    assert value(parsed, "streamseg_table_customers") == 3.0
    assert value(parsed, "streamseg_event_clock_timestamp_seconds") == T0 + 3 * DAY
    latency_count = sum(v for n, _, v in parsed if n == "streamseg_event_processing_seconds_count")
    assert latency_count == 5.0

    # transitions and segment sizes of the rule segmenters: exactly the pure engine's
    engine, validator = Engine(settings), Validator(settings)
    states: dict[str, CustomerState | None] = {}
    expected: Counter[tuple[str, str, str]] = Counter()
    for kind, body in inputs:
        result = validator.check_record(kind, None, body)  # type: ignore[arg-type]
        if isinstance(result, Valid):
            out = engine.apply(states.get(body["customer_id"]), result.event)
            states[body["customer_id"]] = out.state
            for c in out.changes:
                expected[(c["segmenter"], c["from_segment"] or "none", c["to_segment"])] += 1
    got = Counter({(lab["segmenter"], lab["from_segment"], lab["to_segment"]): int(v)
                   for n, lab, v in parsed
                   if n == "streamseg_segment_changes_published_total" and v > 0})
    for seg in RULE_SEGMENTERS:
        assert {k: v for k, v in got.items() if k[0] == seg} == {
            k: v for k, v in expected.items() if k[0] == seg}
        sizes = Counter(s.segments[seg][0] for s in states.values() if s is not None)
        scraped = {lab["segment"]: v for n, lab, v in parsed
                   if n == "streamseg_segment_customers" and lab["segmenter"] == seg and v}
        assert scraped == dict(sizes)
    # KPIs per segment: the counters are exactly the pure engine's sums, and so is GET /segments
    view = engine.kpis.view()
    for field, (name, _) in KPI_COUNTERS.items():
        scraped_kpi = {(lab["segmenter"], lab["segment"]): v for n, lab, v in parsed
                       if n == name + "_total" and v}
        assert scraped_kpi == {(seg, segment): float(cell[field]) for seg, per in view.items()
                               for segment, cell in per.items() if cell[field]}, name
    assert value(parsed, "streamseg_segment_revenue_total", segmenter="lifecycle",
                 segment="none") == 110.0  # the two first purchases: not yet published
    assert value(parsed, "streamseg_segment_repeat_orders_total", segmenter="lifecycle",
                 segment="new") == 1.0  # m1's second purchase, 3 days after the first
    assert value(parsed, "streamseg_segment_sessions_total", segmenter="lifecycle",
                 segment="lapsed") == 0.0  # declared from start
    status, body = lookup
    assert status == 200 and body["kpis"] == report(merge([view])), body
    assert body["kpis"]["lifecycle"]["none"]["aov"] == 55.0
    assert_schema("lookup-segments", body)
    # every segmenter: the sizes add up to the customers it has placed
    for seg in {k[0] for k in got}:
        placed = sum(v for k, v in got.items() if k[0] == seg and k[1] == "none")
        size = sum(v for n, lab, v in parsed
                   if n == "streamseg_segment_customers" and lab["segmenter"] == seg)
        assert size == placed

    # closed label sets: no customer id anywhere in the exposition
    for n, lab, _ in parsed:
        assert n.startswith("streamseg_") or not n.startswith("streamseg")
        assert not any("customer" in k for k in lab)
        assert not {"m1", "m2", "m3"} & set(lab.values())

    # worker health series, present from the start (closed label sets)
    inputs_topics = [settings.topic_clickstream, settings.topic_purchases,
                     settings.topic_consent, settings.topic_profiles, settings.topic_ticks]
    lag = {(lab["topic"], lab["partition"]) for n, lab, _ in parsed
           if n == "streamseg_consumer_lag_records"}
    assert lag == {(t, str(p)) for t in inputs_topics for p in range(2)}
    last = {lab["stream"]: v for n, lab, v in parsed
            if n == "streamseg_last_input_timestamp_seconds"}
    assert set(last) == {"click", "purchase", "consent", "profile", "tick"}
    assert last["purchase"] >= started and last["click"] >= started
    errors = {lab["component"] for n, lab, _ in parsed if n == "streamseg_errors_total"}
    assert errors == {"broker", "consumer", "producer", "framework", "streamseg", "other"}
    assert (value(parsed, "streamseg_rebalances_total") or 0) >= 1
    # 5 input topics (clickstream, purchases, consent, profiles, ticks) x 2 partitions
    assert value(parsed, "streamseg_assigned_partitions") == 2.0 * len(inputs_topics)
    # the process's start time: the StreamsegWorkerRestarting alert counts its changes
    assert (value(parsed, "process_start_time_seconds") or 0) > 1e9

    check = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=30)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
