"""Behavioural clusters: River KMeans over standard-scaled features, with stable ids.

Features (:func:`vector`) are mostly per-visit ratios (purchases, page views and
cart conversion per session, mobile share), which say *how* someone shops and
settle after a few visits, plus the decayed purchase and visit rates and the
log average basket (unknown for a customer who never bought: it scales to the
population mean rather than to an extreme).

Training (on the one worker that trains, and in replays) counts every event but
folds only a deterministic sample into a River
:class:`~river.preprocessing.StandardScaler` and a seeded
:class:`~river.cluster.KMeans`: customers with ``MIN_SESSIONS`` sessions or
more, on every ``STRIDE``-th event of theirs. The first ``INIT_SAMPLES``
samples seed the centroids (k-means++ and Lloyd, seeded); then KMeans moves them.

After ``cluster_warmup`` events, and then every ``cluster_refresh_every`` events,
a new :class:`~streamseg.engine.model.ClusterModel` version is published:
centroids are matched to the previous version's (ids stay stable), clusters
with less than ``cluster_min_share`` of the recent samples are merged into their
nearest neighbour, and each gets a description. Each version is compiled once
into an :class:`~streamseg.engine.model.Assigner`. Assignment only uses the
published snapshot, so a worker that adopted one (:meth:`ClusterSegmenter.adopt`)
assigns exactly like the trainer. Verdicts carry the model version and a
distance margin for hysteresis.

Examples
--------
>>> from streamseg.config import Settings
>>> seg = ClusterSegmenter(Settings(cluster_k=2, cluster_warmup=20, cluster_refresh_every=20))
>>> light, heavy = CustomerState.new("a", 0.0), CustomerState.new("b", 0.0)
>>> heavy.purchases, heavy.monetary, heavy.d_purchases, heavy.d_monetary = 9, 900.0, 9.0, 900.0
>>> heavy.d_devices, heavy.d_sessions, heavy.d_cart_adds = [5.0, 0.0, 0.0, 0.0], 10.0, 12.0
>>> light.d_devices, light.d_sessions, light.d_page_views = [0.0, 5.0, 0.0, 0.0], 10.0, 60.0
>>> light.events = light.sessions = heavy.events = heavy.sessions = MIN_SESSIONS
>>> for s in (heavy, light) * 10:
...     seg.learn(s, 0.0)
>>> seg.version, seg.samples
(1, 20)
>>> a, b = seg.assign(light, 0.0), seg.assign(heavy, 0.0)
>>> (a.segment, a.model_version), (b.segment, b.model_version)
(('c1', 1), ('c2', 1))
>>> seg.describe("c2")
'Cluster c2: buys most visits, converts carts, mobile'
"""

from __future__ import annotations

import collections
import functools
import math
import random
from collections.abc import Mapping
from typing import Any

from river import cluster, preprocessing

from streamseg.config import DAY, Settings
from streamseg.engine.features import CustomerState
from streamseg.engine.model import FEATURES, Assigner, ClusterModel, match, merge_tiny
from streamseg.engine.segmenters.base import Assignment, Trigger

COUNT_DECAY = 0.999  # per learned sample, for the cluster shares
MIN_SESSIONS = 3  # a customer's ratios are worth learning from after this many sessions
STRIDE = 8  # learn from every STRIDE-th event of a customer (from the MIN_SESSIONS-th)
INIT_SAMPLES = 400  # samples buffered to initialise the centroids
LLOYD_ROUNDS = 25
NAMES = tuple(FEATURES)


def vector(state: CustomerState, now: float, half_life_days: float) -> list[float]:
    """The raw clustering features of ``state`` at event time ``now``, in :data:`FEATURES` order.

    Rates are decayed to ``now``; ratios of two decayed sums need no decay.
    The basket of a customer who never bought is NaN (unknown).
    """
    factor = 0.5 ** (max(0.0, now - state.decay_ts) / (half_life_days * DAY))
    sessions = state.d_sessions
    devices = state.d_devices
    total = devices[0] + devices[1] + devices[2] + devices[3]
    return [
        math.log1p(state.d_purchases * factor),
        math.log1p(state.monetary / state.purchases) if state.purchases else math.nan,
        min(1.0, state.d_purchases / sessions) if sessions > 0.0 else 0.0,
        math.log1p(sessions * factor),
        math.log1p(state.d_page_views / sessions) if sessions > 0.0 else 0.0,
        min(1.0, state.d_purchases / state.d_cart_adds) if state.d_cart_adds > 0.0 else 0.0,
        devices[0] / total if total else 0.0,
    ]


def features(state: CustomerState, now: float, half_life_days: float) -> dict[str, float]:
    """:func:`vector` by feature name, without the unknown (NaN) values."""
    return {n: v for n, v in zip(NAMES, vector(state, now, half_life_days), strict=True)
            if v == v}


def kmeans_pp(points: list[list[float]], k: int, rng: random.Random,
              rounds: int = LLOYD_ROUNDS) -> list[list[float]]:
    """Seeded k-means++ seeding then Lloyd iterations over ``points`` (batch, small).

    >>> pts = [[0.0, 0.1], [0.1, 0.0], [5.0, 5.1], [5.1, 5.0], [0.0, 0.0]]
    >>> sorted(kmeans_pp(pts, 2, random.Random(1)))
    [[0.03333333333333333, 0.03333333333333333], [5.05, 5.05]]
    """
    def d2(a: list[float], b: list[float]) -> float:
        return sum((x - y) * (x - y) for x, y in zip(a, b, strict=True))

    centers = [list(points[rng.randrange(len(points))])]
    while len(centers) < k:
        weights = [min(d2(p, c) for c in centers) for p in points]
        if sum(weights) <= 0.0:
            break
        centers.append(list(rng.choices(points, weights=weights)[0]))
    for _ in range(rounds):
        groups: list[list[list[float]]] = [[] for _ in centers]
        for p in points:
            groups[min(range(len(centers)), key=lambda i: d2(p, centers[i]))].append(p)
        moved = [
            [sum(col) / len(g) for col in zip(*g, strict=True)] if g else c
            for c, g in zip(centers, groups, strict=True)
        ]
        if moved == centers:
            break
        centers = moved
    return centers


class ClusterSegmenter:
    """Distance-based segmenter over the published :class:`ClusterModel`."""

    name = "cluster"

    def __init__(self, settings: Settings, training: bool = True) -> None:
        self.settings = settings
        self.training = training
        self.half_life = settings.half_life_days
        self.scaler = preprocessing.StandardScaler()
        self.kmeans = cluster.KMeans(
            n_clusters=settings.cluster_k, halflife=settings.cluster_halflife,
            seed=settings.cluster_seed,
        )
        # draw the random initial centroids now, in feature order: River draws them
        # lazily while iterating a set of names, whose order depends on PYTHONHASHSEED
        for center in self.kmeans.centers.values():
            for f in FEATURES:
                center[f] = center[f]
        self.rng = random.Random(settings.cluster_seed)
        self.buffer: list[dict[str, float]] = []  # raw samples until the centroids are seeded
        self.seeded = False
        self.counts: dict[int, float] = {}
        self.learned = 0
        self.samples = 0
        self.model: ClusterModel | None = None
        self.assigner: Assigner | None = None

    @property
    def version(self) -> int | None:
        return None if self.model is None else self.model.version

    def _use(self, model: ClusterModel) -> None:
        self.model = model
        self.assigner = Assigner(model)

    def learn(self, state: CustomerState, now: float) -> None:
        if not self.training:
            return
        self.learned += 1
        if state.sessions >= MIN_SESSIONS and (state.events - MIN_SESSIONS) % STRIDE == 0:
            self._sample(features(state, now, self.half_life))
        warm, every = self.settings.cluster_warmup, self.settings.cluster_refresh_every
        if self.learned >= warm and (self.learned - warm) % every == 0:
            if not self.seeded:
                self._seed()
            self._use(self.refresh())

    def _sample(self, x: dict[str, float]) -> None:
        self.samples += 1
        self.scaler.learn_one(x)  # type: ignore[no-untyped-call]
        if not self.seeded:
            self.buffer.append(x)
            if len(self.buffer) >= INIT_SAMPLES:
                self._seed()
            return
        scaled = self.scaler.transform_one(x)  # type: ignore[no-untyped-call]
        rid: int = self.kmeans.learn_predict_one(scaled)  # type: ignore[no-untyped-call]
        for k in self.counts:
            self.counts[k] *= COUNT_DECAY
        self.counts[rid] = self.counts.get(rid, 0.0) + 1.0

    def _seed(self) -> None:
        """Centroids from the buffered samples (k-means++ and Lloyd), once it is full."""
        k = self.settings.cluster_k
        points = [self._scaled(x) for x in self.buffer]
        if len(points) < k:
            return
        rng = random.Random(self.settings.cluster_seed)
        centers = kmeans_pp(points, k, rng)
        self.seeded = len(self.buffer) >= INIT_SAMPLES
        if self.seeded:
            self.buffer = []
        self.counts = {}
        for rid in sorted(self.kmeans.centers):
            if rid < len(centers):
                center = self.kmeans.centers[rid]
                for f, z in zip(NAMES, centers[rid], strict=True):
                    center[f] = z
        for p in points:
            rid = min(range(len(centers)), key=lambda i: math.dist(p, centers[i]))
            self.counts[rid] = self.counts.get(rid, 0.0) + 1.0

    def _scaled(self, x: dict[str, float]) -> list[float]:
        return self._rescale(x, self.scaler.means, self.scaler.vars)

    def refresh(self) -> ClusterModel:
        """Build the next model version from the trainer (ids matched to the current one)."""
        new = {
            rid: [float(self.kmeans.centers[rid][f]) for f in FEATURES]
            for rid in sorted(self.kmeans.centers)
        }
        means = {f: float(self.scaler.means[f]) for f in FEATURES}
        variances = {f: float(self.scaler.vars[f]) for f in FEATURES}
        prev = self.model
        if prev is None:
            labels, next_id = match({}, new, 1)
        else:
            # the previous centroids, re-expressed in the current scaler's space
            old = {}
            for seg, center in prev.centers.items():
                raw = {
                    f: z * math.sqrt(prev.variances.get(f, 0.0)) + prev.means.get(f, 0.0)
                    for f, z in zip(FEATURES, center, strict=True)
                }
                old[seg] = self._rescale(raw, means, variances)
            labels, next_id = match(old, new, prev.next_id)
        centers = {labels[rid]: vec for rid, vec in new.items()}
        total = sum(self.counts.values()) or 1.0
        shares = {labels[rid]: round(self.counts.get(rid, 0.0) / total, 6) for rid in new}
        return ClusterModel(
            version=1 if prev is None else prev.version + 1,
            means=means,
            variances=variances,
            centers=centers,
            labels={str(rid): seg for rid, seg in labels.items()},
            merged=merge_tiny(centers, shares, self.settings.cluster_min_share),
            shares=shares,
            next_id=next_id,
            learned=self.learned,
            samples=self.samples,
        )

    @staticmethod
    def _rescale(raw: dict[str, float], means: Mapping[str, float],
                 variances: Mapping[str, float]) -> list[float]:
        """Raw values -> z-scores (a missing value, or no variance yet: 0)."""
        return [
            (raw[f] - means[f]) / math.sqrt(variances[f]) if f in raw and variances[f] > 0.0
            else 0.0
            for f in NAMES
        ]

    def adopt(self, snapshot: dict[str, Any]) -> bool:
        """Use a published snapshot if it is newer; restore the trainer from it too.

        A snapshot over other features (from an older release) is ignored.
        """
        try:
            model = ClusterModel.from_dict(snapshot)
        except ValueError:
            return False
        if self.model is not None and model.version <= self.model.version:
            return False
        self._use(model)
        self.learned = model.learned
        self.samples = model.samples
        self.scaler = preprocessing.StandardScaler()
        for f in FEATURES:
            self.scaler.counts[f] = model.samples
            self.scaler.means[f] = model.means.get(f, 0.0)
            self.scaler.vars[f] = model.variances.get(f, 0.0)
        gauss = functools.partial(self.kmeans._rng.gauss, self.kmeans.mu, self.kmeans.sigma)
        ids = {seg: int(rid) for rid, seg in model.labels.items()}
        self.kmeans.centers = {
            ids[seg]: collections.defaultdict(gauss, zip(FEATURES, center, strict=True))
            for seg, center in model.centers.items()
        }
        self.seeded, self.buffer = True, []
        total = sum(model.shares.values()) or 1.0
        self.counts = {ids[s]: share / total * 1000.0 for s, share in model.shares.items()}
        return True

    def snapshot(self) -> dict[str, Any] | None:
        """The current model as plain data (None before the first version)."""
        return None if self.model is None else self.model.to_dict()

    def assign(self, state: CustomerState, now: float) -> Assignment | None:
        assigner = self.assigner
        if assigner is None or state.events == 0:
            return None
        seg, margin = assigner.assign(vector(state, now, self.half_life))
        return Assignment(seg, assigner.reasons[seg], margin=margin,
                          model_version=assigner.version)

    def forget(self, customer_id: str) -> None:
        return None  # stub of the engine contract (the clusters rewrite implements it)

    def due(self, state: CustomerState, after: float) -> float | None:
        return None  # stub of the engine contract (the clusters rewrite implements it)

    def moved(self) -> list[str]:
        return []  # stub of the engine contract (the clusters rewrite implements it)

    def hold(
        self, state: CustomerState, current: str, verdict: Assignment, now: float,
        trigger: Trigger,
    ) -> bool:
        """Keep the current cluster while the new one is closer by less than ``min_margin``,
        or for its first 14 days (a stand-in for the dwell the blanket 7-day default gave)."""
        if verdict.margin is not None and verdict.margin < self.settings.min_margin:
            return True
        published = state.segments.get(self.name)
        return published is not None and now - float(published[1]) < 14 * DAY

    def describe(self, segment: str) -> str:
        if self.assigner is None:
            return segment
        name = self.assigner.titles.get(segment)
        return name if name is not None else f"Cluster {segment}: {segment}"
