"""Behavioural clusters: seeded training, versions, stable ids, merging, snapshots, margins."""

from __future__ import annotations

import os
import subprocess
import sys

from streamseg import codec
from streamseg.config import Settings
from streamseg.engine.changes import ChangeDetector
from streamseg.engine.features import CustomerState
from streamseg.engine.segmenters.clusters import ClusterSegmenter, features

CFG = Settings(cluster_k=3, cluster_warmup=30, cluster_refresh_every=30, cluster_min_share=0.05)


def person(cid: str, buys: float, money: float, mobile: float) -> CustomerState:
    s = CustomerState.new(cid, 0.0)
    s.events, s.purchases, s.monetary = 10, max(1, int(buys)), money
    s.d_purchases, s.d_monetary = buys, money
    s.d_devices = [mobile, 1.0 - mobile, 0.0, 0.0]
    return s


LIGHT = person("light", 0.0, 0.0, 0.1)
HEAVY = person("heavy", 9.0, 900.0, 0.9)


def train(seg: ClusterSegmenter, rounds: int) -> None:
    for _ in range(rounds):
        for s in (LIGHT, HEAVY):
            seg.learn(s, 0.0)


def test_versions_follow_warm_up_and_refresh() -> None:
    seg = ClusterSegmenter(CFG)
    versions = []
    for _ in range(50):  # 100 learned events
        train(seg, 1)
        versions.append(seg.version)
    assert versions[13] is None and versions[14] == 1  # 30th event
    assert [versions[i] for i in (29, 44, 49)] == [2, 3, 3]  # 60th, 90th, 100th


def test_two_groups_two_published_clusters_tiny_one_merged() -> None:
    seg = ClusterSegmenter(CFG)
    train(seg, 15)
    model = seg.model
    assert model is not None
    assert model.published() == ["c1", "c2"]
    assert model.merged == {"c3": "c2"}  # the third centroid never won a point
    assert model.shares["c3"] == 0.0
    light, heavy = seg.assign(LIGHT, 0.0), seg.assign(HEAVY, 0.0)
    assert light is not None and heavy is not None
    assert (light.segment, heavy.segment) == ("c1", "c2")
    assert seg.describe("c1") == "Cluster c1: desktop, low basket, rare buyer"
    assert seg.describe("c2") == "Cluster c2: mobile, frequent, high basket"
    assert model.description("c3") == model.description("c2")  # merged: its target's words
    assert light.model_version == heavy.model_version == 1
    assert light.margin is not None and light.margin > 2.0


def test_ids_stable_across_model_updates() -> None:
    seg = ClusterSegmenter(CFG)
    train(seg, 15)
    first = (seg.assign(LIGHT, 0.0), seg.assign(HEAVY, 0.0))
    train(seg, 60)
    assert seg.version == 5
    later = (seg.assign(LIGHT, 0.0), seg.assign(HEAVY, 0.0))
    assert [a.segment for a in first] == [a.segment for a in later]  # type: ignore[union-attr]
    assert [a.model_version for a in later] == [5, 5]  # type: ignore[union-attr]


def test_ids_follow_centroids_when_the_clusterer_relabels() -> None:
    seg = ClusterSegmenter(CFG)
    train(seg, 15)
    before = {seg.assign(s, 0.0).segment for s in (LIGHT,)}  # type: ignore[union-attr]
    # a clusterer that renumbers its clusters (as density methods do)
    c = seg.kmeans.centers
    seg.kmeans.centers = {0: c[1], 1: c[2], 2: c[0]}
    seg.counts = {0: seg.counts.get(1, 0.0), 1: seg.counts.get(2, 0.0),
                  2: seg.counts.get(0, 0.0)}
    seg.model = seg.refresh()
    assert seg.model.labels == {"0": "c2", "1": "c3", "2": "c1"}
    assert {seg.assign(s, 0.0).segment for s in (LIGHT,)} == before  # type: ignore[union-attr]
    assert seg.assign(HEAVY, 0.0).segment == "c2"  # type: ignore[union-attr]


def test_follower_adopts_snapshot_and_assigns_like_the_trainer() -> None:
    trainer = ClusterSegmenter(CFG)
    train(trainer, 45)
    snap = trainer.snapshot()
    assert snap is not None and snap["version"] == 3
    follower = ClusterSegmenter(CFG, training=False)
    train(follower, 45)  # not training: learns nothing
    assert follower.model is None and follower.learned == 0
    assert follower.adopt(codec.loads(codec.dumps(snap)))
    assert not follower.adopt(snap)  # same version: no-op
    for s in (LIGHT, HEAVY, person("mid", 4.0, 300.0, 0.5)):
        assert follower.assign(s, 0.0) == trainer.assign(s, 0.0)
    # the adopted trainer state carries on from the snapshot
    follower.training = True
    train(follower, 15)
    assert follower.version == 4 and follower.learned == 120
    assert follower.assign(HEAVY, 0.0).segment == "c2"  # type: ignore[union-attr]


def test_margin_hysteresis_keeps_a_border_customer() -> None:
    seg = ClusterSegmenter(CFG)
    train(seg, 15)
    state = person("b", 0.0, 0.0, 0.1)
    detector = ChangeDetector(min_margin=0.5)
    verdict = seg.assign(state, 0.0)
    assert verdict is not None
    assert detector.confirm(state, "cluster", verdict, 0.0) == (None, 1)
    assert verdict.segment == "c1"
    border = person("b", 2.0, 60.0, 0.5)
    border.segments = state.segments
    v = seg.assign(border, 1.0)
    assert v is not None and v.segment == "c2" and v.margin is not None
    assert round(v.margin, 4) == 0.4118
    assert detector.confirm(border, "cluster", v, 1.0) is None  # stays in c1
    assert ChangeDetector(min_margin=0.0).confirm(border, "cluster", v, 1.0) == ("c1", 2)


def test_features_decay_with_event_time() -> None:
    s = person("d", 4.0, 400.0, 1.0)
    s.d_sessions, s.d_page_views, s.d_cart_adds = 2.0, 6.0, 8.0
    assert features(s, 0.0, 30.0) == {
        "purchases": 1.6094379124341003, "basket": 4.61512051684126,
        "sessions": 1.0986122886681096, "views": 1.9459101490553132, "cart": 0.5, "mobile": 1.0,
    }
    assert features(s, 30 * 86400.0, 30.0)["purchases"] == 1.0986122886681096  # log1p(2)


SCRIPT = """
from streamseg import codec
from tests.unit.test_clusters import CFG, train
from streamseg.engine.segmenters.clusters import ClusterSegmenter
seg = ClusterSegmenter(CFG)
train(seg, 40)
print(codec.dumps(seg.snapshot()).decode())
"""


def test_training_does_not_depend_on_the_hash_seed() -> None:
    outs = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outs.add(subprocess.run([sys.executable, "-c", SCRIPT], env=env, check=True,
                                capture_output=True, text=True).stdout)
    assert len(outs) == 1
