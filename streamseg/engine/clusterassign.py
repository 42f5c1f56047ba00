"""The Assigner: a cluster model compiled for assignment, hold and due times (geometry).

:class:`Assigner` turns a :class:`~streamseg.engine.model.ClusterModel` (plain
data) into what the cluster segmenter
(:class:`~streamseg.engine.segmenters.clusters.ClusterSegmenter`) asks of it for
every customer: the scaled vector (:meth:`~Assigner.scale`), the nearest centroid
whose name may be told to the customer (:meth:`~Assigner.nearest`,
:meth:`~Assigner.fits`), how far past a border a customer lies (:meth:`~Assigner.past`:
the hold) and when growing recency alone changes the verdict (:meth:`~Assigner.next_change`,
:meth:`~Assigner.recency_time`: the due time).

Only ``recency`` (log days idle beyond a grace) changes with the clock
alone, and only along one axis, so the distance between two centroids'
squared distances is linear in its z-score: :meth:`Assigner.next_change` solves
exactly when an idle customer's verdict (or hold) changes.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from streamseg.engine.clusternames import BUYER_WORD, INACTIVE_WORD, NAMES, title
from streamseg.engine.model import (
    PURCHASES,
    RECENCY,
    ClusterModel,
)

STEP_S = 1.0  # a due time is one second past the exact crossing
DAY = 86_400.0
MAX_LOG_DAYS = 12.0  # recency beyond e^12 days (~450 centuries) never comes


class Assigner:
    """A :class:`~streamseg.engine.model.ClusterModel` compiled for assignment, hold and due
    times.

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
        """Raw feature values (in :data:`~streamseg.engine.clusternames.FEATURES` order)
        -> z-scores; NaN -> 0."""
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
        """:meth:`fits` but for the recency word: what holds for the whole idle spell (the
        segments :meth:`next_change` chooses among while recency grows)."""
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

    def nearest_rows(self, raw: NDArray[np.float64]) -> tuple[NDArray[np.float64], list[str]]:
        """:meth:`scale` and :meth:`nearest` (the segment) of every row of ``raw``, in
        numpy: a refit weighs a candidate model on its whole sample (thousands of rows),
        which row by row stalled a worker for up to 46 ms (Complete Journey).

        >>> m = ClusterModel(1, {"purchases": 1.0}, {"purchases": 4.0},
        ...                  {"c1": [-1.0] + [0.0] * 6, "c2": [1.0] + [0.0] * 6},
        ...                  active=["purchases"])
        >>> a = Assigner(m)
        >>> rows = [[3.0, math.nan, 0.0, 0.0, 0.0, 0.0, 9.0], [0.5] + [0.0] * 6]
        >>> z, segs = a.nearest_rows(np.array(rows))
        >>> segs == [a.nearest(a.scale(r))[0] for r in rows], z[0].tolist() == a.scale(rows[0])
        (True, True)
        """
        means = np.array([m for m, _ in self.scaler])
        inv = np.array([i for _, i in self.scaler])
        z = np.where(np.isnan(raw) | (inv == 0.0), 0.0, (raw - means) * inv)
        segs = list(self.centers)
        d = np.sqrt(((z[:, None, :] - np.array(list(self.centers.values()))[None]) ** 2)
                    .sum(axis=2))
        buyers = np.array([seg in self._buyers for seg in segs])
        inactive = np.array([seg in self._inactive for seg in segs])
        fit = ~(buyers & (z[:, PURCHASES] <= self._never_bought)[:, None])
        fit &= ~(inactive & (z[:, RECENCY] <= self._grace_z)[:, None])
        fit[~fit.any(axis=1)] = True  # none fits: the nearest of all
        chosen = np.where(fit, d, np.inf).argmin(axis=1)  # ties: the first (smaller id)
        return z, [segs[i] for i in chosen.tolist()]

    def past_rows(self, z: NDArray[np.float64], current: list[str],
                  other: list[str]) -> NDArray[np.float64]:
        """:meth:`past` of every row of ``z`` from ``current[i]`` towards ``other[i]``."""
        out = np.zeros(len(current))
        for (a, b), rows in _pairs_of(current, other).items():
            ca, cb = self.centers.get(a), self.centers.get(b)
            if cb is None or ca is None:
                out[rows] = -math.inf if cb is None else math.inf
                continue
            gap = math.dist(ca, cb)
            if gap == 0.0:
                continue
            sub = z[rows]
            da = ((sub - np.array(ca)) ** 2).sum(axis=1)
            db = ((sub - np.array(cb)) ** 2).sum(axis=1)
            out[rows] = (da - db) / (2.0 * gap)
        return out

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


def _pairs_of(current: list[str], other: list[str]) -> dict[tuple[str, str], list[int]]:
    """Row indices by (current, other) pair."""
    out: dict[tuple[str, str], list[int]] = {}
    for i, pair in enumerate(zip(current, other, strict=True)):
        out.setdefault(pair, []).append(i)
    return out
