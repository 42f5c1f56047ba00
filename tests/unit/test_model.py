"""Cluster model snapshots: id matching, merging, descriptions, assignment, round trip."""

from __future__ import annotations

import math

import pytest

from streamseg.engine.clusterassign import Assigner
from streamseg.engine.clusternames import describe
from streamseg.engine.model import ClusterModel, match


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


def test_describe_from_z_scores_active_features_only() -> None:
    assert describe({"purchases": -1.5, "basket": 0.2, "views": 2.0, "mobile": 0.6}) == (
        "many views per visit, rare buyer, mobile"
    )
    assert describe({"recency": 0.9, "cart": -1.0, "browse": 0.7}) == (
        "abandons carts, long inactive, browses often"
    )
    assert describe({"cart": -0.5, "browse": 0.49}) == "abandons carts"
    assert describe({"cart": -3.0, "browse": 2.0}, active=["purchases"]) == "average"
    assert describe({}) == "average"


NAMES = ("purchases", "basket", "browse", "views", "cart", "mobile", "recency")


def model() -> ClusterModel:
    zeros = dict.fromkeys(NAMES, 0.0)
    return ClusterModel(
        version=4,
        means=dict(zeros, purchases=1.0, recency=1.0),
        variances=dict(zeros, purchases=4.0, mobile=0.25, recency=1.0),
        centers={
            "c1": [-1.0, 0.0, 0.0, 0.0, 0.0, -1.0, -1.0],
            "c2": [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0],
        },
        active=["purchases", "mobile", "recency"],
        names={"c1": "rare buyer, desktop"},
        anchors={"c1": [-1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]},
        shares={"c1": 0.5, "c2": 0.5},
        next_id=3,
        learned=1000,
        customers=120,
    )


def test_assign_uses_the_snapshot_scaler_and_active_features() -> None:
    m = model()
    assert m.published() == ["c1", "c2"]
    x = dict.fromkeys(NAMES, 0.0) | {"purchases": 3.0, "mobile": 0.5, "recency": 2.0}
    a = Assigner(m)
    z = a.scale([x[n] for n in NAMES])
    assert z == [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    assert m.assign(x) == ("c2", math.sqrt(12.0))
    # an inactive feature (views) counts for nothing, even if a centroid had a value there
    m.centers["c2"][3] = 5.0
    assert Assigner(m).assign([x[n] for n in NAMES]) == ("c2", math.sqrt(12.0))
    assert m.scaled([3.0, math.nan, 9.0, 9.0, 9.0, 0.5, 2.0]) == z  # NaN and inactive: 0


def test_names_are_stable_and_fall_back_to_the_centroid() -> None:
    m = model()
    a = Assigner(m)
    assert a.names == {"c1": "rare buyer, desktop", "c2": "mobile, frequent buyer, long inactive"}
    assert a.titles["c1"] == "Cluster c1: rare buyer, desktop"
    assert a.reasons["c2"] == "closest to mobile, frequent buyer, long inactive"
    assert m.description("c9") == "c9"


def test_past_is_the_signed_distance_beyond_the_bisector() -> None:
    a = Assigner(model())
    gap = math.dist([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0])
    z = [0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert math.isclose(a.past(z, "c1", "c2"), 0.3 * 2.0 / gap)
    assert math.isclose(a.past(z, "c2", "c1"), -0.3 * 2.0 / gap)
    assert a.past(z, "c1", "c9") == -math.inf and a.past(z, "c9", "c1") == math.inf


def test_next_change_solves_the_recency_crossings_exactly() -> None:
    m0 = model()
    m0.means["purchases"] = 3.0  # z = -0.5 is a buyer (a purchase rate of 0 is z = -1.5)
    a = Assigner(m0)
    z = [-0.5, 0.0, 0.0, 0.0, 0.0, -0.5, -2.0]  # in c1; recency will take it towards c2
    r = a.next_change(z, "c1", 0.0)
    assert r is not None and math.isclose(r, 1.0)  # -0.5 - 0.5 + r = 0 on the bisector
    z[6] = r + 1e-9
    assert a.nearest(z)[0] == "c2"
    z[6] = r - 1e-9
    assert a.nearest(z)[0] == "c1"
    m = 0.4  # the release: past(z, c1, c2) = (sum of z) * 2 / gap = m
    rel = a.next_change([-0.5, 0.0, 0.0, 0.0, 0.0, -0.5, 1.0 + 1e-12], "c1", m)
    gap = math.dist([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0])
    assert rel is not None and math.isclose(rel, 1.0 + m * gap / 2.0)
    # the time of a recency z-score: days = grace + expm1(z / inv + mean)
    assert a.recency_time(0.0, 0.0, 30.0) == (30.0 + math.expm1(1.0)) * 86400.0
    assert a.recency_time(50.0, 0.0, 30.0) == math.inf
    inactive = model()
    inactive.active = ["purchases"]
    assert Assigner(inactive).next_change(z, "c1", 0.0) is None


def test_next_change_levels_do_not_depend_on_the_recency_looked_from() -> None:
    # a crossing is a fixed recency level: looking from any recency below it finds the
    # same float, bit for bit (due times do not depend on how ticks are spaced)
    a = Assigner(model())
    for base in ([-0.5, 0.0, 0.0, 0.0, 0.0, -0.5], [0.3, 0.1, -0.2, 0.0, 0.4, -0.7]):
        for current, margin in (("c1", 0.0), ("c1", 0.4), ("c2", 0.25), (None, 0.0)):
            seen = set()
            first = a.next_change([*base, -3.0], current, margin)
            r0 = -3.0
            while first is not None and r0 < first:
                seen.add(a.next_change([*base, r0], current, margin))
                r0 += (first + 3.0) / 7.3
            assert seen == {first} or first is None


def test_next_change_ignores_borders_between_two_other_segments() -> None:
    # c2 and c3 trade places at recency 0.5, far from z; z stays nearest to c1 until
    # recency 4, where c3 ties with it: the verdict can first change there
    m = model()
    m.means["purchases"] = 3.0  # z = -1 is a buyer (a purchase rate of 0 is z = -1.5)
    m.centers = {"c1": [-1.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0],
                 "c2": [3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                 "c3": [3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]}
    a = Assigner(m)
    z = [-1.0, 0.0, 0.0, 0.0, 0.0, 0.0, -2.0]
    assert a.next_change(z, "c1", 0.0) == 4.0
    assert a.nearest([*z[:6], 3.99])[0] == "c1" and a.nearest([*z[:6], 4.01])[0] == "c3"
    assert a.next_change(z, "c2", 0.0) == 0.5  # published c2: its own borders count


def test_round_trip() -> None:
    m = model()
    data = m.to_dict()
    assert data["descriptions"] == {"c1": "rare buyer, desktop",
                                    "c2": "mobile, frequent buyer, long inactive"}
    assert data["segmenter"] == "cluster" and data["version"] == 4
    assert data["features"] == list(NAMES) and data["customers"] == 120
    assert ClusterModel.from_dict(data) == m
    m.retired = {"c0": "browses often"}  # retired ids keep their published names
    assert ClusterModel.from_dict(m.to_dict()) == m
    assert ClusterModel.from_dict({k: v for k, v in m.to_dict().items() if k != "retired"}
                                  ).retired == {}  # a snapshot from before retired ids
    old = dict(data, features=["purchases", "basket", "sessions", "views", "cart", "mobile"])
    with pytest.raises(ValueError, match="expected"):
        ClusterModel.from_dict(old)
    without = {k: v for k, v in data.items() if k != "active"}  # an older release's snapshot
    with pytest.raises(ValueError, match="expected"):
        ClusterModel.from_dict(without)


def test_a_customer_who_never_bought_is_not_put_in_a_frequent_buyer_cluster() -> None:
    a = Assigner(model())  # c2: "frequent buyer, ..."; a purchase rate of 0 is z = -0.5
    assert "frequent buyer" in a.names["c2"].split(", ")
    never = a.scale([0.0, math.nan, 0.0, 0.0, 0.0, 1.0, 1.0])  # mobile, long idle: near c2
    bought = a.scale([0.2, math.nan, 0.0, 0.0, 0.0, 1.0, 1.0])
    assert math.dist(never, a.centers["c2"]) < math.dist(never, a.centers["c1"])
    assert (a.nearest(never)[0], a.nearest(bought)[0]) == ("c1", "c2")
    assert (a.fits("c2", never), a.fits("c1", never), a.fits("c2", bought)) == (False, True, True)
    # idle, it stays out: no recency crossing towards c2 is due
    assert a.next_change(never, "c1", 0.0) is None


def test_long_inactive_is_barred_within_the_recency_grace_and_due_at_its_end() -> None:
    a = Assigner(model())  # c2: "..., long inactive"; recency z within the grace: -1
    assert "long inactive" in a.names["c2"].split(", ")
    at_event = a.scale([1.5, math.nan, 0.0, 0.0, 0.0, 1.0, 0.0])  # a buyer on mobile, just seen
    assert at_event[6] == -1.0
    assert math.dist(at_event, a.centers["c2"]) < math.dist(at_event, a.centers["c1"])
    assert a.nearest(at_event)[0] == "c1" and not a.fits("c2", at_event)
    # the verdict changes as soon as the grace ends: due at its end, 30 days after the event
    r = a.next_change(at_event, "c1", 0.0)
    assert r == -1.0 and a.recency_time(r, 0.0, 30.0) == 30.0 * 86400.0
    idle = [*at_event[:6], -1.0 + 1e-9]
    assert a.nearest(idle)[0] == "c2" and a.fits("c2", idle)
