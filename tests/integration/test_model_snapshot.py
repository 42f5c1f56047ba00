"""Cluster model snapshots on the real broker: published to the compacted models topic,
restored by a fresh worker, and carried as ``model_version`` on every cluster change.

Worker A trains (it owns clickstream partition 0) and publishes each model
version. Worker B is a different app (empty state) that cannot train a model
of its own (warm-up out of reach): the cluster changes it publishes can only
come from the snapshot it restored from the topic on start. The RFM cut points
travel the same way (key ``rfm``): B scores RFM with A's population.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kafka_helpers import topic_config
from worker_proc import Tail, Workers, another_app, make_settings, story

from streamseg import codec
from streamseg.engine.model import ClusterModel

CLUSTERS = {"cluster_k": 3, "cluster_warmup": 40, "cluster_refresh_every": 40,
            "cluster_min_share": 0.05, "cluster_min_customers": 10,
            "model_publish_interval_s": 0.5, "rfm_warmup_days": 0.0}


@pytest.mark.asyncio
async def test_snapshot_is_published_and_restored_by_another_worker(
    broker_url: str, bootstrap_servers: str, tmp_path: Path
) -> None:
    a = make_settings("model-a", tmp_path / "a", broker_url, partitions=2, **CLUSTERS)
    inputs = story(customers=30, events_per_customer=5, seed=3)  # 150 events
    # refits at 40, 80 and 120 learned events once 10 customers had 3 visits; a refit
    # that barely moves the centroids is no new version, so the count depends on order

    with Workers(broker_url, tmp_path) as workers:
        wa = await workers.start_fed("a", a, bootstrap_servers, inputs)
        async with Tail(bootstrap_servers, a.topic_models) as models:
            ok = await models.until(
                lambda t: any(v["segmenter"] == "cluster" and v["learned"] >= 120
                              for v in t.values()),
                timeout=20, settle=1.5,
            )
            if not ok:  # the refit at 120 moved nothing: the newest version stands
                await models.until(lambda t: False, timeout=5.0)
            every = [(k, codec.loads(v)) for _, _, k, v in models.records if v]
        assert any(k == b"cluster" for k, _ in every), every
        assert {k for k, _ in every} == {b"cluster", b"rfm"}
        assert all(s["segmenter"] == k.decode() for k, s in every)
        snapshots = [(k, s) for k, s in every if k == b"cluster"]
        # the newest version at each publish tick: increasing, ending with the last one
        cluster_versions = [s["version"] for _, s in snapshots]
        assert cluster_versions == sorted(set(cluster_versions))
        last_version = cluster_versions[-1]
        # never a model fitted on fewer than cluster_min_customers customers
        assert all(s["customers"] >= 10 for _, s in snapshots)
        rfm = [s for k, s in every if k == b"rfm"]
        rfm_versions = [s["version"] for s in rfm]
        assert rfm_versions == sorted(set(rfm_versions)) and rfm_versions[0] >= 20
        assert (await topic_config(bootstrap_servers, a.topic_models))["cleanup.policy"] == (
            "compact"
        )
        snap = snapshots[-1][1]
        model = ClusterModel.from_dict(snap)
        assert model.to_dict() == snap  # the topic value round-trips
        published = model.published()
        assert published and set(snap["descriptions"]) == set(published)
        async with Tail(bootstrap_servers, a.topic_changes) as tail:
            await tail.until(lambda t: False, timeout=2.0)
            a_versions = {v["model_version"] for v in tail.values() if v["segmenter"] == "cluster"}
        assert a_versions and a_versions <= set(range(1, last_version + 1))
        wa.stop()

        # B: another app, same models topic, no chance to train its own model
        b = another_app(a, "model-b", tmp_path / "b", cluster_warmup=10**9)
        # three visits each: a customer is clustered from its third visit
        fresh = story(customers=8, events_per_customer=3, seed=5, prefix="n")
        wb = await workers.start_fed("b", b, bootstrap_servers, fresh)
        async with Tail(bootstrap_servers, b.topic_changes) as tail:

            def clusters(t: Tail) -> list[dict[str, Any]]:
                return [v for v in t.values() if v["segmenter"] == "cluster"]

            ok = await tail.until(lambda t: len({c["customer_id"] for c in clusters(t)}) == 8,
                                  timeout=60, settle=1.0)
            got = clusters(tail)
        assert ok, got
        assert {c["model_version"] for c in got} == {last_version}
        assert {c["to_segment"] for c in got} <= set(published)
        # RFM: B has too few buyers of its own to score, so it scores with A's cut points
        async with Tail(bootstrap_servers, b.topic_changes) as tail:
            await tail.until(lambda t: False, timeout=1.0)
            b_rfm = [v for v in tail.values() if v["segmenter"] == "rfm"]
        b_purchases = sum(1 for kind, _, _ in fresh if kind == "purchase")
        assert b_purchases < 20 and b_rfm
        assert {c["model_version"] for c in b_rfm} == {rfm_versions[-1]}
        for c in got:
            seg = c["to_segment"]
            assert c["to_name"] == f"Cluster {seg}: {model.description(seg)}"
        # B republished no cluster model: the newest one on the topic is still A's
        async with Tail(bootstrap_servers, a.topic_models) as models:
            await models.until(lambda t: False, timeout=2.0)
            assert [codec.loads(v)["version"] for _, _, k, v in models.records
                    if v and k == b"cluster"] == cluster_versions
        assert wa.crashes() == [] and wb.crashes() == []
