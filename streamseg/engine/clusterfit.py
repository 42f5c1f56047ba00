"""Refitting the cluster model from the current population (batch k-means, seeded).

The trainer keeps :class:`Population`, a deterministic bounded sample of
*customers* (not of events): the ``capacity`` customers with the smallest hash
of their id (a bottom-k sample, independent of arrival order), each with its
latest clock-free features and last activity time. A customer who produces few
events (lapsed, seasonal) weighs as much as a daily visitor.

:func:`fit` clusters the scaled sample with Lloyd's algorithm from two kinds
of start: the previous centroids (warm) and ``inits`` seeded k-means++ draws
(the segmenter asks for draws on a cadence only: between them a refit is Lloyd
from the previous centroids, a few matrix products);
a fresh solution replaces the warm one only if it lowers the inertia by more
than :data:`SWITCH_GAIN` (the clusters stay put while the population does).
Clusters with less than ``min_share`` of the sample are dropped one at a time
(their customers go to the nearest remaining centroid) and Lloyd runs again:
tiny segments are merged rather than published. So is one of two centroids
closer than :data:`TWIN_Z` (identical customers split between two centres
differing by rounding: one cluster, not two with the same name).

Examples
--------
>>> import numpy as np
>>> pts = np.array([[0.0, 0.1], [0.1, 0.0], [5.0, 5.1], [5.1, 5.0], [0.0, 0.0]])
>>> centers, shares = fit(pts, 2, seed=1)
>>> sorted(centers.round(3).tolist()), sorted(shares.tolist())
([[0.033, 0.033], [5.05, 5.05]], [0.4, 0.6])
>>> p = Population(capacity=2)
>>> for cid in ("a", "b", "c", "d"):
...     p.put(cid, [1.0], 0.0)
>>> sorted(p.rows), p.seen
(['a', 'c'], 4)
"""

from __future__ import annotations

import hashlib
import heapq

import numpy as np
from numpy.typing import NDArray

LLOYD_ROUNDS = 50
INITS = 10  # seeded k-means++ starts per refit
SWITCH_GAIN = 0.02  # a fresh start must lower the inertia by 2% to replace the warm one
KEEP_SHARE = 0.75  # a warm (existing) cluster is dropped below this fraction of min_share only
TWIN_Z = 1e-6  # two centres closer than this (z units) are one cluster split in two: one goes

Array = NDArray[np.float64]


def id_hash(customer_id: str) -> int:
    """Stable 64-bit hash of a customer id (the sampling order).

    >>> id_hash("c1")
    4895413496900842574
    """
    return int.from_bytes(hashlib.blake2b(customer_id.encode(), digest_size=8).digest(), "big")


class Population:
    """The bottom-``capacity`` customers by :func:`id_hash`: id -> (features, last activity)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.rows: dict[str, tuple[list[float], float]] = {}
        self._heap: list[tuple[int, str]] = []  # (-hash, id): the largest hash on top
        self.seen = 0  # customers ever offered (distinct while they stay in)

    def put(self, customer_id: str, static: list[float], last_seen: float) -> None:
        """Record ``customer_id``'s latest features if it belongs to the sample."""
        if customer_id in self.rows:
            self.rows[customer_id] = (static, last_seen)
            return
        self.seen += 1
        h = id_hash(customer_id)
        if len(self.rows) >= self.capacity:
            self._trim()
            if -self._heap[0][0] <= h:
                return
            _, out = heapq.heappop(self._heap)
            del self.rows[out]
        self.rows[customer_id] = (static, last_seen)
        heapq.heappush(self._heap, (-h, customer_id))

    def drop(self, customer_id: str) -> None:
        """Forget a customer (erasure, withdrawal); its heap entry goes lazily."""
        self.rows.pop(customer_id, None)

    def _trim(self) -> None:
        while self._heap and self._heap[0][1] not in self.rows:
            heapq.heappop(self._heap)

    def __len__(self) -> int:
        return len(self.rows)


def _cross(points: Array, centers: Array) -> Array:
    """``|c|^2 - 2 p.c`` for every point and centre: the squared distance less ``|p|^2``."""
    out: Array = (centers * centers).sum(axis=1)[None, :] - 2.0 * (points @ centers.T)
    return out


def nearest_shares(points: Array, centers: Array) -> Array:
    """The share of ``points`` nearest each centre.

    >>> nearest_shares(np.array([[0.0], [0.1], [5.0]]), np.array([[0.0], [5.0]])).round(3)
    array([0.667, 0.333])
    """
    labels = _cross(points, centers).argmin(axis=1)
    out: Array = np.bincount(labels, minlength=len(centers)) / max(len(points), 1)
    return out


def lloyd(points: Array, centers: Array, rounds: int = LLOYD_ROUNDS) -> tuple[Array, Array]:
    """Lloyd iterations from ``centers``; returns the centers and each point's label.

    Stops when no label changes. An empty cluster keeps its centre. Distances
    are expanded (``|p|^2 - 2 p.c + |c|^2``, one matrix product per round) and
    the means are one product with the label indicator matrix.
    """
    centers = np.array(centers, dtype=np.float64)
    k = len(centers)
    labels = _cross(points, centers).argmin(axis=1)
    eye = np.eye(k)
    for _ in range(rounds):
        counts = np.bincount(labels, minlength=k)
        sums = eye[labels].T @ points
        full = counts > 0
        centers[full] = sums[full] / counts[full, None]
        new = _cross(points, centers).argmin(axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
    return centers, labels


def inertia(points: Array, centers: Array) -> float:
    d = _cross(points, centers).min(axis=1) + (points * points).sum(axis=1)
    return float(np.maximum(d, 0.0).sum())


def kmeans_pp(points: Array, k: int, rng: np.random.Generator) -> Array:
    """k-means++ seeding (seeded); fewer than ``k`` centres if the points run out."""
    first = points[int(rng.integers(len(points)))]
    centers = [first]
    d2 = ((points - first) ** 2).sum(axis=1)
    while len(centers) < k:
        total = float(d2.sum())
        if total <= 0.0:
            break
        nxt = points[int(rng.choice(len(points), p=d2 / total))]
        centers.append(nxt)
        d2 = np.minimum(d2, ((points - nxt) ** 2).sum(axis=1))
    return np.array(centers)


def fit(points: Array, k: int, seed: int, warm: Array | None = None,
        min_share: float = 0.0, inits: int = INITS, lazy: bool = False) -> tuple[Array, Array]:
    """Centroids of ``points`` (scaled) and the share of points of each.

    ``warm`` (the previous centroids in the same scaled space) is kept unless the
    best of ``inits`` seeded k-means++ starts beats it by :data:`SWITCH_GAIN` (both
    after dropping tiny clusters: below ``min_share`` of the points for a new
    cluster, below :data:`KEEP_SHARE` of that for a warm one, so that a cluster
    near the limit is not dropped and re-created on alternate refits). ``lazy``
    (with ``warm``): Lloyd from ``warm``
    only, unless it had to drop a cluster (the cheap refit between reseeds, see
    ``RESEED_EVERY`` in the segmenter).
    """
    kept: tuple[float, Array, Array] | None = None
    if warm is not None and len(warm):
        centers, shares = _drop_tiny(points, warm, min_share * KEEP_SHARE)
        if lazy and len(centers) == len(warm):
            return centers, shares
        kept = (inertia(points, centers), centers, shares)
    rng = np.random.default_rng(seed)
    best: tuple[float, Array, Array] | None = None
    for _ in range(max(inits, 1)):
        centers, shares = _drop_tiny(points, kmeans_pp(points, k, rng), min_share)
        score = inertia(points, centers)
        if best is None or score < best[0]:
            best = (score, centers, shares)
    assert best is not None
    if kept is not None and best[0] >= kept[0] * (1.0 - SWITCH_GAIN):
        return kept[1], kept[2]
    return best[1], best[2]


def _twin(centers: Array, shares: Array) -> int | None:
    """The smaller of the first two centres within :data:`TWIN_Z` of each other
    (the later one on equal shares), None if no two are that close."""
    for i in range(len(centers)):
        for j in range(i + 1, len(centers)):
            if float(np.linalg.norm(centers[i] - centers[j])) < TWIN_Z:
                return i if shares[i] < shares[j] else j
    return None


def _drop_tiny(points: Array, centers: Array, min_share: float) -> tuple[Array, Array]:
    """Lloyd, then drop a centre that is another's twin (:func:`_twin`), else the
    smallest cluster while it holds less than ``min_share``."""
    while True:
        centers, labels = lloyd(points, centers)
        shares = np.bincount(labels, minlength=len(centers)) / len(points)
        if len(centers) <= 1:
            return centers, shares
        twin = _twin(centers, shares)
        if twin is not None:
            centers = np.delete(centers, twin, axis=0)
            continue
        if shares.min() >= min_share:
            return centers, shares
        centers = np.delete(centers, int(shares.argmin()), axis=0)
