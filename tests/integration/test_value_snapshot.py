"""Predicted-value model snapshots on the real broker (key ``value`` on the models topic).

Worker A trains (it owns clickstream partition 0): once 10 buyers are seen it fits the
BG/NBD population and publishes each version. Worker B is another app that cannot fit
its own (warm-up out of reach): its ``value`` changes can only use A's snapshot.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from worker_proc import Tail, Workers, another_app, make_settings, story

from streamseg import codec
from streamseg.engine.valuemodel import ValueModel

VALUE = {"value_min_customers": 10, "value_warmup_days": 0.0, "value_refit_days": 1.0,
         "model_publish_interval_s": 0.5}


@pytest.mark.asyncio
async def test_value_model_is_published_and_used_by_another_worker(
    broker_url: str, bootstrap_servers: str, tmp_path: Path
) -> None:
    a = make_settings("value-a", tmp_path / "a", broker_url, partitions=2, **VALUE)
    inputs = story(customers=40, events_per_customer=5, seed=3)  # 30 buyers
    with Workers(broker_url, tmp_path) as workers:
        wa = await workers.start_fed("a", a, bootstrap_servers, inputs)
        async with Tail(bootstrap_servers, a.topic_changes) as tail:
            await tail.until(lambda t: any(v["segmenter"] == "value" for v in t.values()),
                             timeout=60, settle=2.0)
            a_value = [v for v in tail.values() if v["segmenter"] == "value"]
        async with Tail(bootstrap_servers, a.topic_models) as models:
            await models.until(lambda t: any(k == b"value" for _, _, k, _ in t.records),
                               timeout=30, settle=1.5)
            snaps = [codec.loads(v) for _, _, k, v in models.records if v and k == b"value"]
        assert a_value and snaps, (a_value, snaps)
        versions = [s["version"] for s in snaps]
        assert versions == sorted(set(versions))
        model = ValueModel.from_dict(snaps[-1])
        assert model.to_dict() == snaps[-1] and model.customers >= 10
        # never a value label without a fitted model
        assert all(v["model_version"] for v in a_value)
        assert {v["to_segment"] for v in a_value} <= {"top10", "next40", "rest"}
        assert all(v["features"]["expected_purchases"] is not None for v in a_value)
        wa.stop()

        b = another_app(a, "value-b", tmp_path / "b", value_warmup_days=10_000.0)
        fresh = story(customers=8, events_per_customer=3, seed=5, prefix="n")  # 6 buyers
        wb = await workers.start_fed("b", b, bootstrap_servers, fresh)
        async with Tail(bootstrap_servers, b.topic_changes) as tail:
            ok = await tail.until(
                lambda t: len({v["customer_id"] for v in t.values()
                               if v["segmenter"] == "value"}) == 6, timeout=60, settle=1.0)
            got = [v for v in tail.values() if v["segmenter"] == "value"]
        assert ok, got
        assert {c["model_version"] for c in got} == {versions[-1]}
        assert wa.crashes() == [] and wb.crashes() == []
