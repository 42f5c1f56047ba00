"""Clustering model snapshots: plain data, stable segment ids, readable descriptions.

A :class:`ClusterModel` is what every worker needs to *assign* customers the
same way: the scaler (means and variances), the centroids in scaled space,
the label map (clusterer id -> published segment id), which tiny clusters are
merged into which, and a version. It round-trips through :meth:`to_dict` /
:meth:`from_dict` (the value of the compacted ``streamseg-models`` topic).

Segment ids stay stable across model updates: :func:`match` pairs the new
centroids with the previous ones (greedy on distances, closest pairs first)
and only an unmatched centroid gets a fresh id.

Examples
--------
>>> old = {"c1": [0.0, 0.0], "c2": [5.0, 5.0]}
>>> match(old, {0: [4.8, 5.1], 1: [0.2, -0.1], 2: [9.0, 0.0]}, next_id=3)
({0: 'c2', 1: 'c1', 2: 'c3'}, 4)
>>> describe({"purchases": 1.2, "basket": 0.9, "mobile": -0.7, "views": 0.1})
'frequent, high basket, desktop'
>>> describe({"purchases": 0.1})
'average'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

K = TypeVar("K")

# feature -> (word when high, word when low); the order is the vector order
FEATURES: dict[str, tuple[str, str]] = {
    "purchases": ("frequent", "rare buyer"),
    "basket": ("high basket", "low basket"),
    "conversion": ("buys most visits", "seldom buys"),
    "sessions": ("many visits", "few visits"),
    "views": ("heavy browser", "light browser"),
    "cart": ("converts carts", "abandons carts"),
    "mobile": ("mobile", "desktop"),
}
DESCRIBE_Z = 0.5  # |z| from which a feature is worth a word
DESCRIBE_WORDS = 3


def describe(center: Mapping[str, float]) -> str:
    """A short description of a centroid in scaled (z-score) space."""
    notable = sorted(
        ((abs(z), name, z) for name, z in center.items() if abs(z) >= DESCRIBE_Z),
        key=lambda t: (-t[0], t[1]),
    )[:DESCRIBE_WORDS]
    if not notable:
        return "average"
    return ", ".join(FEATURES[name][0 if z > 0 else 1] for _, name, z in notable)


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


class Assigner:
    """A :class:`ClusterModel` compiled for fast assignment (built once per model version).

    Holds the scaler as ``(mean, 1 / std)`` pairs, the centroids with the
    segment each one publishes as (tiny clusters point at their merge target)
    and the description of every segment, so that assigning a customer is one
    pass over a short list of floats, with no allocation but the z-vector.
    A missing value (NaN, e.g. the basket of a customer who never bought)
    scales to z = 0, the population mean.

    >>> m = ClusterModel(1, {"purchases": 1.0}, {"purchases": 4.0},
    ...                  {"c1": [-1.0] + [0.0] * 6, "c2": [1.0] + [0.0] * 6})
    >>> a = Assigner(m)
    >>> a.assign([3.0, math.nan, 0.0, 0.0, 0.0, 0.0, 0.0])
    ('c2', 2.0)
    >>> a.names["c2"], a.reasons["c2"], a.titles["c1"]
    ('frequent', 'closest to frequent', 'Cluster c1: rare buyer')
    """

    __slots__ = ("centers", "names", "reasons", "scaler", "titles", "version")

    def __init__(self, model: ClusterModel) -> None:
        self.version = model.version
        self.scaler: list[tuple[float, float]] = []
        for name in FEATURES:
            var = model.variances.get(name, 0.0)
            inv = 1.0 / math.sqrt(var) if var > 0.0 else 0.0
            self.scaler.append((model.means.get(name, 0.0), inv))
        self.centers: list[tuple[str, list[float]]] = sorted(
            (model.target(seg), model.centers[seg]) for seg in sorted(model.centers)
        )
        self.names = {seg: model.description(seg) for seg in sorted(model.centers)}
        self.reasons = {seg: f"closest to {name}" for seg, name in self.names.items()}
        self.titles = {seg: f"Cluster {seg}: {name}" for seg, name in self.names.items()}

    def scale(self, values: list[float]) -> list[float]:
        """Raw feature values (in :data:`FEATURES` order) -> z-scores; NaN -> 0."""
        return [
            (v - mean) * inv if v == v else 0.0
            for v, (mean, inv) in zip(values, self.scaler, strict=True)
        ]

    def assign(self, values: list[float]) -> tuple[str, float]:
        """Nearest published segment of raw feature ``values`` and its distance margin.

        The margin is the distance to the runner-up segment minus the distance
        to the chosen one (infinite when only one segment is published); ties
        go to the smaller segment id.
        """
        z = self.scale(values)
        dist = math.dist
        first = second = math.inf
        chosen = ""
        group, low = "", math.inf
        # centroids are sorted by target: a target's centroids are consecutive
        for target, center in self.centers:
            d = dist(z, center)
            if target == group:
                if d < low:
                    low = d
                continue
            if group:
                if low < first:
                    first, second, chosen = low, first, group
                elif low < second:
                    second = low
            group, low = target, d
        if low < first:
            first, second, chosen = low, first, group
        elif low < second:
            second = low
        return chosen, second - first


@dataclass(slots=True)
class ClusterModel:
    """One published version of the clustering model (plain data)."""

    version: int
    means: dict[str, float]
    variances: dict[str, float]
    centers: dict[str, list[float]]  # segment id -> centroid in scaled space
    labels: dict[str, str] = field(default_factory=dict)  # clusterer id -> segment id
    merged: dict[str, str] = field(default_factory=dict)  # tiny segment -> published one
    shares: dict[str, float] = field(default_factory=dict)
    next_id: int = 1
    learned: int = 0  # events the trainer had seen (versions follow this count)
    samples: int = 0  # of which folded into the scaler and the clusterer

    @property
    def features(self) -> list[str]:
        return list(FEATURES)

    def published(self) -> list[str]:
        """Segment ids that customers can be assigned to (tiny ones merged away)."""
        return sorted(s for s in self.centers if s not in self.merged)

    def target(self, segment: str) -> str:
        return self.merged.get(segment, segment)

    def scale(self, x: Mapping[str, float]) -> list[float]:
        """Raw features -> z-scores with this snapshot's scaler (missing or NaN: 0)."""
        return Assigner(self).scale([x.get(name, math.nan) for name in FEATURES])

    def assign(self, x: Mapping[str, float]) -> tuple[str, float]:
        """Nearest published segment of raw features ``x`` and its margin.

        The margin is the distance to the runner-up segment minus the distance
        to the chosen one (infinite when only one segment is published). For
        many assignments with one model, compile it once: :class:`Assigner`.
        """
        return Assigner(self).assign([x.get(name, math.nan) for name in FEATURES])

    def description(self, segment: str) -> str:
        center = self.centers.get(self.target(segment))
        if center is None:
            return segment
        return describe(dict(zip(FEATURES, center, strict=True)))

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the models topic (descriptions included for readers)."""
        return {
            "segmenter": "cluster",
            "version": self.version,
            "features": self.features,
            "means": self.means,
            "variances": self.variances,
            "centers": self.centers,
            "labels": self.labels,
            "merged": self.merged,
            "shares": self.shares,
            "next_id": self.next_id,
            "learned": self.learned,
            "samples": self.samples,
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
        if list(data.get("features", FEATURES)) != list(FEATURES):
            raise ValueError(f"cluster model over features {data.get('features')}, "
                             f"expected {list(FEATURES)}")
        return cls(
            version=int(data["version"]),
            means={k: float(v) for k, v in data["means"].items()},
            variances={k: float(v) for k, v in data["variances"].items()},
            centers={k: [float(x) for x in v] for k, v in data["centers"].items()},
            labels={str(k): str(v) for k, v in data.get("labels", {}).items()},
            merged=dict(data.get("merged", {})),
            shares={k: float(v) for k, v in data.get("shares", {}).items()},
            next_id=int(data.get("next_id", 1)),
            learned=int(data.get("learned", 0)),
            samples=int(data.get("samples", 0)),
        )


def merge_tiny(centers: Mapping[str, list[float]], shares: Mapping[str, float],
               min_share: float) -> dict[str, str]:
    """Map every segment below ``min_share`` to the nearest segment that is not.

    >>> merge_tiny({"c1": [0.0], "c2": [1.0], "c3": [5.0]},
    ...            {"c1": 0.6, "c2": 0.38, "c3": 0.02}, 0.05)
    {'c3': 'c2'}
    """
    big = [s for s in sorted(centers) if shares.get(s, 0.0) >= min_share]
    if not big:
        big = [max(sorted(centers), key=lambda s: shares.get(s, 0.0))]
    return {
        s: min(big, key=lambda b: (distance(centers[s], centers[b]), b))
        for s in sorted(centers)
        if s not in big
    }
