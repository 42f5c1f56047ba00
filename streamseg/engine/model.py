"""Clustering model snapshots: plain data, stable segment ids and names.

A :class:`ClusterModel` is what every worker needs to *assign* customers the
same way: the scaler (means and variances), which features are *active*, the
centroids in scaled space, stable segment ids and their names, and a version.
It round-trips through :meth:`~ClusterModel.to_dict` /
:meth:`~ClusterModel.from_dict` (the value of the compacted ``streamseg-models`` topic).

* Active features: a feature whose standard deviation over the trained
  population is below :data:`MIN_STD` (constant, e.g. cart behaviour in a
  purchase-only population) is left out of distances (its z-score is 0 for
  everyone and in every centroid) and out of names.
* Stable ids: :func:`match` pairs the new centroids with the previous ones
  (greedy on distances, closest pairs first); only an unmatched centroid gets a
  fresh id.
* Stable names: an id's name never changes. A segment keeps its name while its
  centroid stays within :data:`NAME_SHIFT` (z units) of the centroid it was
  named from (its anchor), and beyond that while the name still
  :func:`~streamseg.engine.clusternames.holds`
  (re-anchored there). Otherwise the centroid gets another id (see
  :func:`~streamseg.engine.clusterrefit.next_model`) and the old id is retired:
  its customers move (trigger ``population``). The names of retired ids (also
  of ids whose centroid is gone) stay in :attr:`ClusterModel.retired`, the
  latest :data:`~streamseg.engine.clusterrefit.RETIRED_KEEP`, so a change away
  from one names what the customer was told.
* Names told apart: a centroid named afresh with the words of another live
  cluster's name gets a comparison with that cluster
  (:func:`~streamseg.engine.clusternames.apart`: "rare buyer, smaller baskets than
  c6"), checked at each refit against that cluster's centroid while it is live
  (:func:`~streamseg.engine.clusternames.still_apart`), not by ``holds`` (it is
  relative to that cluster, not to the population).
* Names: :mod:`streamseg.engine.clusternames`.

A model is compiled for assigning customers (nearest centroid, hold, due times)
into a :class:`~streamseg.engine.clusterassign.Assigner`.

Examples
--------
>>> old = {"c1": [0.0, 0.0], "c2": [5.0, 5.0]}
>>> match(old, {0: [4.8, 5.1], 1: [0.2, -0.1], 2: [9.0, 0.0]}, next_id=3)
({0: 'c2', 1: 'c1', 2: 'c3'}, 4)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from streamseg.engine.clusternames import NAMES, describe

K = TypeVar("K")

RECENCY = NAMES.index("recency")  # the one feature that moves with the clock alone
PURCHASES = NAMES.index("purchases")
MIN_STD = 0.01  # a feature varying less than this over the population is constant: left out
NAME_SHIFT = 1.0  # z units a centroid may drift from its anchor before its name is checked


def distance(a: list[float], b: list[float]) -> float:
    """Euclidean distance."""
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))


def match(
    previous: Mapping[str, list[float]], new: Mapping[K, list[float]], next_id: int
) -> tuple[dict[K, str], int]:
    """Give each new centroid the id of the closest unclaimed previous centroid.

    Pairs are taken closest first (ties broken by ids, so the result is
    deterministic); a new centroid left without a partner gets ``c<next_id>``.
    Returns the mapping and the next free id number.
    """
    pairs = sorted(
        (distance(vec, old), str(key), old_id, key)
        for key, vec in new.items()
        for old_id, old in previous.items()
    )
    out: dict[K, str] = {}
    taken: set[str] = set()
    for _, _, old_id, key in pairs:
        if key in out or old_id in taken:
            continue
        out[key] = old_id
        taken.add(old_id)
    for key in sorted(new, key=str):
        if key not in out:
            out[key] = f"c{next_id}"
            next_id += 1
    return out, next_id


@dataclass(slots=True)
class ClusterModel:
    """One published version of the clustering model (plain data)."""

    version: int
    means: dict[str, float]
    variances: dict[str, float]
    centers: dict[str, list[float]]  # segment id -> centroid in scaled space
    active: list[str] = field(default_factory=lambda: list(NAMES))
    names: dict[str, str] = field(default_factory=dict)  # segment id -> stable description
    anchors: dict[str, list[float]] = field(default_factory=dict)  # raw centroid when named
    shares: dict[str, float] = field(default_factory=dict)
    retired: dict[str, str] = field(default_factory=dict)  # retired id -> its name, oldest first
    next_id: int = 1
    learned: int = 0  # events the trainer had seen
    customers: int = 0  # distinct customers the model was fitted on

    @property
    def features(self) -> list[str]:
        return list(NAMES)

    def published(self) -> list[str]:
        """Segment ids that customers can be assigned to."""
        return sorted(self.centers)

    def description(self, segment: str) -> str:
        """The stable name of ``segment`` (computed from its centroid if it has none; a
        retired id's as it was published; an unknown id: the id)."""
        name = self.names.get(segment)
        if name is not None:
            return name
        center = self.centers.get(segment)
        if center is None:
            return self.retired.get(segment, segment)
        return describe(dict(zip(NAMES, center, strict=True)), self.active)

    def raw(self, center: list[float]) -> list[float]:
        """A scaled centroid back in raw feature units."""
        return [z * math.sqrt(self.variances.get(f, 0.0)) + self.means.get(f, 0.0)
                for f, z in zip(NAMES, center, strict=True)]

    def scaled(self, raw: list[float]) -> list[float]:
        """Raw feature values -> z-scores (NaN or an inactive feature: 0)."""
        from streamseg.engine.clusterassign import Assigner  # (it imports this module)

        return Assigner(self).scale(raw)

    def assign(self, x: Mapping[str, float]) -> tuple[str, float]:
        """Nearest segment of raw features ``x`` and its margin
        (see :meth:`~streamseg.engine.clusterassign.Assigner.assign`)."""
        from streamseg.engine.clusterassign import Assigner  # (it imports this module)

        return Assigner(self).assign([x.get(name, math.nan) for name in NAMES])

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the models topic (descriptions included for readers)."""
        return {
            "segmenter": "cluster",
            "version": self.version,
            "features": self.features,
            "active": self.active,
            "means": self.means,
            "variances": self.variances,
            "centers": self.centers,
            "names": self.names,
            "anchors": self.anchors,
            "shares": self.shares,
            "retired": self.retired,
            "next_id": self.next_id,
            "learned": self.learned,
            "customers": self.customers,
            "descriptions": {s: self.description(s) for s in self.published()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterModel:
        """Inverse of :meth:`to_dict` (derived fields ignored).

        Raises
        ------
        ValueError
            If the snapshot was made over other features (an older release).
        """
        if list(data.get("features", ())) != list(NAMES) or "active" not in data:
            raise ValueError(f"cluster model over features {data.get('features')}, "
                             f"expected {list(NAMES)}")
        return cls(
            version=int(data["version"]),
            means={k: float(v) for k, v in data["means"].items()},
            variances={k: float(v) for k, v in data["variances"].items()},
            centers={k: [float(x) for x in v] for k, v in data["centers"].items()},
            active=[str(f) for f in data["active"]],
            names={str(k): str(v) for k, v in data.get("names", {}).items()},
            anchors={k: [float(x) for x in v] for k, v in data.get("anchors", {}).items()},
            shares={k: float(v) for k, v in data.get("shares", {}).items()},
            retired={str(k): str(v) for k, v in data.get("retired", {}).items()},
            next_id=int(data.get("next_id", 1)),
            learned=int(data.get("learned", 0)),
            customers=int(data.get("customers", 0)),
        )
