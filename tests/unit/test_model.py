"""Cluster model snapshots: id matching, merging, descriptions, assignment, round trip."""

from __future__ import annotations

import math

import pytest

from streamseg.engine.model import Assigner, ClusterModel, describe, match, merge_tiny


def test_match_keeps_ids_when_the_clusterer_relabels() -> None:
    old = {"c1": [0.0, 0.0], "c2": [10.0, 0.0], "c3": [0.0, 10.0]}
    # the same centroids, moved a little, under shuffled clusterer ids
    new = {7: [0.5, 9.0], 3: [9.5, 0.5], 5: [0.2, -0.3]}
    assert match(old, new, next_id=4) == ({7: "c3", 3: "c2", 5: "c1"}, 4)


def test_match_gives_fresh_ids_only_to_unmatched_centroids() -> None:
    assert match({"c1": [0.0]}, {0: [5.0], 1: [0.1], 2: [9.0]}, next_id=2) == (
        {1: "c1", 0: "c2", 2: "c3"}, 4
    )
    assert match({}, {1: [1.0], 0: [0.0]}, next_id=1) == ({0: "c1", 1: "c2"}, 3)
    # fewer new centroids than old ones: the closest pairs win, the rest retire
    assert match({"c1": [0.0], "c2": [4.0], "c3": [9.0]}, {0: [8.0]}, next_id=4) == (
        {0: "c3"}, 4
    )


def test_match_closest_pairs_first() -> None:
    # greedy: 1<->c2 (0.1) is taken before 0<->c2 (0.4), so 0 gets c1
    assert match({"c1": [0.0], "c2": [1.0]}, {0: [0.6], 1: [1.1]}, next_id=3)[0] == {
        1: "c2", 0: "c1"
    }


def test_merge_tiny_into_nearest_big() -> None:
    centers = {"c1": [0.0], "c2": [10.0], "c3": [9.0], "c4": [1.0]}
    shares = {"c1": 0.5, "c2": 0.46, "c3": 0.03, "c4": 0.01}
    assert merge_tiny(centers, shares, 0.05) == {"c3": "c2", "c4": "c1"}
    assert merge_tiny(centers, shares, 0.0) == {}
    # nobody big enough: the largest survives
    assert merge_tiny(centers, shares, 0.9) == {"c2": "c1", "c3": "c1", "c4": "c1"}


def test_describe_from_z_scores() -> None:
    assert describe({"purchases": -1.5, "basket": 0.2, "views": 2.0, "mobile": 0.6}) == (
        "heavy browser, rare buyer, mobile"
    )
    assert describe({"conversion": 0.9, "cart": -1.0, "sessions": 0.7}) == (
        "abandons carts, buys most visits, many visits"
    )
    assert describe({"cart": -0.5, "sessions": 0.49}) == "abandons carts"
    assert describe({}) == "average"


NAMES = ("purchases", "basket", "conversion", "sessions", "views", "cart", "mobile")


def model() -> ClusterModel:
    zeros = dict.fromkeys(NAMES, 0.0)
    return ClusterModel(
        version=4,
        means=dict(zeros, purchases=1.0),
        variances=dict(zeros, purchases=4.0, mobile=0.25),
        centers={
            "c1": [-1.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0],
            "c2": [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
            "c3": [1.2, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        },
        labels={"0": "c1", "1": "c2", "2": "c3"},
        merged={"c3": "c2"},
        shares={"c1": 0.5, "c2": 0.48, "c3": 0.02},
        next_id=4,
        learned=1000,
        samples=120,
    )


def test_assign_uses_the_snapshot_scaler_and_merged_targets() -> None:
    m = model()
    assert m.published() == ["c1", "c2"]
    x = dict.fromkeys(NAMES, 0.0) | {"purchases": 3.4, "mobile": 0.5}
    assert m.scale(x) == [1.2, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    seg, margin = m.assign(x)  # sits on c3, which is merged into c2
    assert seg == "c2"
    assert math.isclose(margin, math.dist([1.2, 1.0], [-1.0, -1.0]))
    mid = dict(x, purchases=-1.0, mobile=0.0)  # z = (-1, 0, .., 0): nearer c1
    seg, margin = m.assign(mid)
    assert seg == "c1" and math.isclose(margin, math.sqrt(5.0) - 1.0)
    # equal |z|: words in name order
    assert m.description("c3") == m.description("c2") == "mobile, frequent"
    assert m.description("c9") == "c9"


def test_missing_or_unknown_values_scale_to_the_mean() -> None:
    m = model()
    assert m.scale({"purchases": 3.0}) == [1.0] + [0.0] * 6
    assert m.scale({"purchases": math.nan, "mobile": 0.5}) == [0.0] * 6 + [1.0]


def test_assigner_compiles_once_and_agrees_with_the_model() -> None:
    m = model()
    a = Assigner(m)
    assert a.version == 4
    assert a.centers == [("c1", m.centers["c1"]), ("c2", m.centers["c2"]), ("c2", m.centers["c3"])]
    assert a.names == {"c1": "desktop, rare buyer", "c2": "mobile, frequent",
                       "c3": "mobile, frequent"}
    assert a.titles["c2"] == "Cluster c2: mobile, frequent"
    assert a.reasons["c1"] == "closest to desktop, rare buyer"
    for p, mob in ((3.4, 0.5), (-1.0, 0.0), (1.0, 0.25), (2.0, 0.1)):
        x = dict.fromkeys(NAMES, 0.0) | {"purchases": p, "mobile": mob}
        assert a.assign([x[n] for n in NAMES]) == m.assign(x)


def test_single_segment_margin_is_infinite() -> None:
    m = model()
    m.merged = {"c2": "c1", "c3": "c1"}
    zeros = dict.fromkeys(NAMES, 0.0)
    assert m.assign(zeros) == ("c1", math.inf)
    m.merged = {}
    # a tie (c1, c2 equally far) goes to the smaller id
    assert m.assign(dict(zeros, purchases=1.0)) == ("c1", 0.0)


def test_round_trip() -> None:
    m = model()
    data = m.to_dict()
    assert data["descriptions"] == {"c1": "desktop, rare buyer", "c2": "mobile, frequent"}
    assert data["segmenter"] == "cluster" and data["version"] == 4
    assert data["features"] == list(NAMES) and data["samples"] == 120
    assert ClusterModel.from_dict(data) == m
    old = dict(data, features=["purchases", "basket", "sessions", "views", "cart", "mobile"])
    with pytest.raises(ValueError, match="expected"):
        ClusterModel.from_dict(old)
