"""Clustering model snapshots: plain data, stable segment ids and names, geometry.

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
  named from (its anchor), and beyond that while the name still :func:`holds`
  (re-anchored there). Otherwise the centroid gets another id (see
  :func:`~streamseg.engine.clusterrefit.next_model`) and the old id is retired:
  its customers move (trigger ``population``). The names of retired ids (also
  of ids whose centroid is gone) stay in :attr:`ClusterModel.retired`, the
  latest :data:`~streamseg.engine.clusterrefit.RETIRED_KEEP`, so a change away
  from one names what the customer was told.

Only ``recency`` (log days idle beyond a grace) changes with the clock
alone, and only along one axis, so the distance between two centroids'
squared distances is linear in its z-score: :meth:`Assigner.next_change` solves
exactly when an idle customer's verdict (or hold) changes.

Examples
--------
>>> old = {"c1": [0.0, 0.0], "c2": [5.0, 5.0]}
>>> match(old, {0: [4.8, 5.1], 1: [0.2, -0.1], 2: [9.0, 0.0]}, next_id=3)
({0: 'c2', 1: 'c1', 2: 'c3'}, 4)
>>> describe({"purchases": 1.2, "basket": 0.9, "mobile": -0.7, "views": 0.1})
'frequent buyer, high basket, desktop'
>>> describe({"purchases": 1.2, "cart": -2.0}, active=["purchases"])
'frequent buyer'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

K = TypeVar("K")

# feature -> (word when high, word when low); the order is the vector order
FEATURES: dict[str, tuple[str, str]] = {
    "purchases": ("frequent buyer", "rare buyer"),
    "basket": ("high basket", "low basket"),
    "browse": ("browses often", "seldom browses"),
    "views": ("many views per visit", "few views per visit"),
    "cart": ("converts carts", "abandons carts"),
    "mobile": ("mobile", "desktop"),
    "recency": ("long inactive", "recently active"),
}
NAMES = tuple(FEATURES)
RECENCY = NAMES.index("recency")  # the one feature that moves with the clock alone
PURCHASES = NAMES.index("purchases")
BUYER_WORD = FEATURES["purchases"][0]  # never told to a customer who never bought
INACTIVE_WORD = FEATURES["recency"][0]  # never told to a customer seen within the grace
MIN_STD = 0.01  # a feature varying less than this over the population is constant: left out
NAME_SHIFT = 1.0  # z units a centroid may drift from its anchor before its name is checked
DESCRIBE_Z = 0.5  # |z| from which a feature is worth a word
DESCRIBE_WORDS = 3
STEP_S = 1.0  # a due time is one second past the exact crossing
DAY = 86_400.0
MAX_LOG_DAYS = 12.0  # recency beyond e^12 days (~450 centuries) never comes


def describe(center: Mapping[str, float], active: Iterable[str] | None = None) -> str:
    """A short description of a centroid in scaled (z-score) space (active features only)."""
    allowed = set(NAMES if active is None else active)
    notable = sorted(
        ((abs(z), name, z) for name, z in center.items()
         if name in allowed and abs(z) >= DESCRIBE_Z),
        key=lambda t: (-t[0], t[1]),
    )[:DESCRIBE_WORDS]
    if not notable:
        return "average"
    return ", ".join(FEATURES[name][0 if z > 0 else 1] for _, name, z in notable)


WORDS = {word: (name, side) for name, pair in FEATURES.items()
         for word, side in zip(pair, (1.0, -1.0), strict=True)}


def holds(name: str, center: Mapping[str, float], active: Iterable[str] | None = None) -> bool:
    """Whether ``name`` (a :func:`describe` of another centroid) is still true of
    ``center``: each of its words' feature active and at least :data:`DESCRIBE_Z`
    on its side ("average": no feature worth a word).

    >>> holds("frequent buyer", {"purchases": 0.8, "mobile": 1.5})
    True
    >>> holds("frequent buyer, desktop", {"purchases": 0.8, "mobile": 1.5})
    False
    >>> holds("average", {"purchases": 0.8})
    False
    """
    if name == "average":
        return describe(center, active) == "average"
    allowed = set(NAMES if active is None else active)
    for word in name.split(", "):
        feature = WORDS.get(word)
        if feature is None or feature[0] not in allowed:
            return False
        if center.get(feature[0], 0.0) * feature[1] < DESCRIBE_Z:
            return False
    return True


def title(segment: str, name: str) -> str:
    """The human title of a cluster id.

    >>> title("c3", "frequent buyer, mobile")
    'Cluster c3: frequent buyer, mobile'
    """
    return f"Cluster {segment}: {name}"


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
        return Assigner(self).scale(raw)

    def assign(self, x: Mapping[str, float]) -> tuple[str, float]:
        """Nearest segment of raw features ``x`` and its margin (see :meth:`Assigner.assign`)."""
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


class Assigner:
    """A :class:`ClusterModel` compiled for assignment, hold and due times.

    >>> m = ClusterModel(1, {"purchases": 1.0}, {"purchases": 4.0},
    ...                  {"c1": [-1.0] + [0.0] * 6, "c2": [1.0] + [0.0] * 6},
    ...                  active=["purchases"])
    >>> a = Assigner(m)
    >>> a.assign([3.0, math.nan, 0.0, 0.0, 0.0, 0.0, 9.0])
    ('c2', 2.0)
    >>> a.titles["c2"], a.titles["c1"]
    ('Cluster c2: frequent buyer', 'Cluster c1: rare buyer')
    >>> round(a.past(a.scale([1.2] + [0.0] * 6), "c1", "c2"), 9)  # z = 0.1: past the border
    0.1
    """

    __slots__ = ("_buyers", "_grace_z", "_inactive", "_never_bought", "_pairs", "_vecs",
                 "centers", "names", "reasons", "scaler", "titles", "version")

    def __init__(self, model: ClusterModel) -> None:
        self.version = model.version
        self.scaler: list[tuple[float, float]] = []
        for name in NAMES:
            var = model.variances.get(name, 0.0)
            on = name in model.active and var > 0.0
            self.scaler.append((model.means.get(name, 0.0), 1.0 / math.sqrt(var) if on else 0.0))
        self.centers: dict[str, list[float]] = {
            seg: [0.0 if inv == 0.0 else z for z, (_, inv) in zip(c, self.scaler, strict=True)]
            for seg, c in sorted(model.centers.items())
        }
        self.names = {seg: model.description(seg) for seg in self.centers}
        self.reasons = {seg: f"closest to {name}" for seg, name in self.names.items()}
        self.titles = {seg: title(seg, name) for seg, name in self.names.items()}
        # segments named "frequent buyer" (not for a customer who never bought: see fits)
        # and "long inactive" (not for a customer seen within the recency grace); the
        # z-scores of a purchase rate of 0 and of a recency of 0 (-inf when recency is
        # inactive: never within the grace)
        self._buyers = {seg for seg, name in self.names.items() if BUYER_WORD in name.split(", ")}
        self._inactive = {seg for seg, name in self.names.items()
                          if INACTIVE_WORD in name.split(", ")}
        zero = self.scale([0.0] * len(NAMES))
        self._never_bought = zero[PURCHASES]
        self._grace_z = zero[RECENCY] if self.scaler[RECENCY][1] != 0.0 else -math.inf
        # for next_change: the centroids in order, and per pair (i, j, ids, the slope of
        # |z - a|^2 - |z - b|^2 in the recency coordinate, 2 * the distance between them)
        items = list(self.centers.items())
        self._vecs = [c for _, c in items]
        self._pairs = [
            (i, j, sa, sb, -2.0 * (ca[RECENCY] - cb[RECENCY]), 2.0 * math.dist(ca, cb))
            for i, (sa, ca) in enumerate(items)
            for j, (sb, cb) in enumerate(items) if j > i
        ]

    def scale(self, values: list[float]) -> list[float]:
        """Raw feature values (in :data:`FEATURES` order) -> z-scores; NaN -> 0."""
        return [
            (v - mean) * inv if v == v and inv else 0.0
            for v, (mean, inv) in zip(values, self.scaler, strict=True)
        ]

    def fits(self, seg: str, z: list[float]) -> bool:
        """Whether ``seg``'s name may be told to a customer at ``z``: not "frequent buyer"
        to one who never bought (its purchase rate is 0), nor "long inactive" to one seen
        within the recency grace (its recency is 0: at its own event, for one), however
        near its other features put it to such a centroid. Other words are relative to
        the population (a centroid's side of the mean): the nearest centroid measures them.

        >>> m = ClusterModel(1, {"purchases": 1.0, "mobile": 0.5},
        ...                  {"purchases": 4.0, "mobile": 0.25},
        ...                  {"c1": [2.0, 0, 0, 0, 0, 1.0, 0], "c2": [-1.0, 0, 0, 0, 0, 0.0, 0]},
        ...                  active=["purchases", "mobile"])
        >>> a = Assigner(m)
        >>> a.names
        {'c1': 'frequent buyer, mobile', 'c2': 'rare buyer'}
        >>> never_bought_on_mobile = a.scale([0.0, 0, 0, 0, 0, 2.5, 0])
        >>> a.fits("c1", never_bought_on_mobile), a.nearest(never_bought_on_mobile)[0]
        (False, 'c2')
        >>> bought_once_on_mobile = a.scale([0.1, 0, 0, 0, 0, 2.5, 0])
        >>> a.fits("c1", bought_once_on_mobile), a.nearest(bought_once_on_mobile)[0]
        (True, 'c1')
        """
        return self.fits_static(seg, z) and not (
            seg in self._inactive and z[RECENCY] <= self._grace_z)

    def fits_static(self, seg: str, z: list[float]) -> bool:
        """:meth:`fits` but for the recency word: what holds for the whole idle spell, and
        what a published cluster must still fit to be held (a customer in a "long inactive"
        cluster who comes back is not moved out at the visit and back after the grace)."""
        return not (seg in self._buyers and z[PURCHASES] <= self._never_bought)

    def nearest(self, z: list[float]) -> tuple[str, float]:
        """Nearest segment of scaled ``z`` whose name :meth:`fits` it (nearest of all when
        none does) and the margin to the runner-up among those (ties: smaller id)."""
        return self._nearest_in(z, [seg for seg in self.centers if self.fits(seg, z)])

    def _nearest_in(self, z: list[float], fitting: list[str]) -> tuple[str, float]:
        """:meth:`nearest` among ``fitting`` (among all segments when it is empty)."""
        centers = self.centers
        if fitting and len(fitting) < len(centers):
            centers = {seg: centers[seg] for seg in fitting}
        first = second = math.inf
        chosen = ""
        for seg, center in centers.items():
            d = math.dist(z, center)
            if d < first:
                first, second, chosen = d, first, seg
            elif d < second:
                second = d
        return chosen, second - first

    def assign(self, values: list[float]) -> tuple[str, float]:
        """Nearest segment of raw feature ``values`` and its distance margin.

        The margin is the distance to the runner-up segment minus the distance
        to the chosen one (infinite when only one segment is published).
        """
        return self.nearest(self.scale(values))

    def past(self, z: list[float], current: str, other: str) -> float:
        """How far ``z`` lies past the border from ``current`` towards ``other`` (z units).

        The signed distance to the bisecting hyperplane of the two centroids,
        positive on ``other``'s side; ``-inf`` if ``other`` is unknown and
        ``+inf`` if ``current`` is (a retired segment never holds).
        """
        a, b = self.centers.get(current), self.centers.get(other)
        if b is None:
            return -math.inf
        if a is None:
            return math.inf
        gap = math.dist(a, b)
        if gap == 0.0:
            return 0.0
        da = sum((x - c) ** 2 for x, c in zip(z, a, strict=True))
        db = sum((x - c) ** 2 for x, c in zip(z, b, strict=True))
        return (da - db) / (2.0 * gap)

    def next_change(self, z: list[float], current: str | None, margin: float) -> float | None:
        """The smallest recency z-score above ``z[RECENCY]`` at which, all else equal,
        the nearest segment changes or ``past(z, current, j)`` crosses ``margin``.

        The nearest segment changes where it ties with another, so only the
        borders of the segment nearest to ``z`` count (two other segments
        trading places change nothing).

        Squared-distance differences are linear in the recency coordinate, so
        every crossing is one division, and it is a fixed recency level (worked
        out at recency 0): any ``z`` with the same other coordinates gets the
        same levels, to the last bit, whatever its own recency. None if recency
        is inactive or no crossing lies ahead. Within the recency grace (recency
        0, where :meth:`fits` bars "long inactive"), ``z[RECENCY]`` itself when the
        verdict changes as soon as the grace ends (its time is the grace's end,
        :meth:`recency_time`).
        """
        if self.scaler[RECENCY][1] == 0.0:
            return None
        r0 = z[RECENCY]
        at0 = list(z)
        at0[RECENCY] = 0.0
        dist = math.dist
        sq = [dist(at0, cen) ** 2 for cen in self._vecs]
        # the segments nearest() chooses among once recency grows (fixed while the customer
        # is idle: the purchase rate is fixed between events), and the nearest of them:
        # only a border of the nearest segment changes the verdict
        fitting = [seg for seg in self.centers if self.fits_static(seg, z)]
        near = self._nearest_in(z, fitting)[0]
        among = set(fitting or self.centers)
        best: float | None = None
        if r0 <= self._grace_z and near != self.nearest(z)[0]:
            best = r0  # "long inactive" is barred within the grace: its end changes the verdict
        for i, j, sa, sb, slope, twogap in self._pairs:
            if slope == 0.0 or sa not in among or sb not in among:
                continue
            level = sq[i] - sq[j]
            if near in (sa, sb):
                r = -level / slope
                if r > r0 and (best is None or r < best):
                    best = r
            if current in (sa, sb):  # past(z, current, other) >= margin
                r = ((twogap if current == sa else -twogap) * margin - level) / slope
                if r > r0 and (best is None or r < best):
                    best = r
        return best

    def recency_time(self, r: float, last_seen: float, grace_days: float) -> float:
        """Event time at which recency's z-score reaches ``r`` (inverse of
        ``log1p(days idle - grace_days)``)."""
        mean, inv = self.scaler[RECENCY]
        g = r / inv + mean
        if g > MAX_LOG_DAYS:
            return math.inf
        return last_seen + (grace_days + max(0.0, math.expm1(g))) * DAY
