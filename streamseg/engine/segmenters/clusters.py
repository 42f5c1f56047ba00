"""Behavioural clusters: River KMeans over standard-scaled features, with stable ids.

Training (on the one worker that trains, and in replays) folds every event's
customer features into a River :class:`~river.preprocessing.StandardScaler`
and a seeded :class:`~river.cluster.KMeans`. After ``cluster_warmup`` events,
and then every ``cluster_refresh_every`` events, the segmenter publishes a new
:class:`~streamseg.engine.model.ClusterModel` version: centroids are matched
to the previous version's (so ids stay stable), clusters holding less than
``cluster_min_share`` of the recent assignments are merged into their nearest
neighbour, and each published cluster gets a description from its centroid.

Assignment only ever uses the published snapshot, so a worker that adopted a
snapshot (:meth:`ClusterSegmenter.adopt`) assigns exactly like the trainer.
Every verdict carries the model version and a distance margin for hysteresis.

Examples
--------
>>> from streamseg.config import Settings
>>> seg = ClusterSegmenter(Settings(cluster_k=2, cluster_warmup=20, cluster_refresh_every=20))
>>> light, heavy = CustomerState.new("a", 0.0), CustomerState.new("b", 0.0)
>>> heavy.purchases, heavy.monetary, heavy.d_purchases, heavy.d_monetary = 9, 900.0, 9.0, 900.0
>>> heavy.d_devices = [5.0, 0.0, 0.0, 0.0]
>>> light.d_devices, light.events, heavy.events = [0.0, 5.0, 0.0, 0.0], 3, 9
>>> for s in (light, heavy) * 10:
...     seg.learn(s, 0.0)
>>> seg.version
1
>>> a, b = seg.assign(light, 0.0), seg.assign(heavy, 0.0)
>>> (a.segment, a.model_version), (b.segment, b.model_version)
(('c1', 1), ('c2', 1))
>>> seg.describe("c2")
'Cluster c2: mobile, frequent, high basket'
"""

from __future__ import annotations

import collections
import functools
import math
from typing import Any

from river import cluster, preprocessing

from streamseg.config import DAY, Settings
from streamseg.engine.features import CustomerState
from streamseg.engine.model import FEATURES, ClusterModel, match, merge_tiny
from streamseg.engine.segmenters.base import Assignment

COUNT_DECAY = 0.999  # per learned event, for the cluster shares


def features(state: CustomerState, now: float, half_life_days: float) -> dict[str, float]:
    """The raw clustering features of ``state`` at event time ``now`` (decayed to ``now``)."""
    factor = 0.5 ** (max(0.0, now - state.decay_ts) / (half_life_days * DAY))
    devices = sum(state.d_devices)
    aov = state.monetary / state.purchases if state.purchases else 0.0
    conversion = state.d_purchases / state.d_cart_adds if state.d_cart_adds > 0 else 0.0
    return {
        "purchases": math.log1p(state.d_purchases * factor),
        "basket": math.log1p(aov),
        "sessions": math.log1p(state.d_sessions * factor),
        "views": math.log1p(state.d_page_views * factor),
        "cart": min(1.0, conversion),
        "mobile": state.d_devices[0] / devices if devices else 0.0,
    }


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
        self.counts: dict[int, float] = {}
        self.learned = 0
        self.model: ClusterModel | None = None

    @property
    def version(self) -> int | None:
        return None if self.model is None else self.model.version

    def learn(self, state: CustomerState, now: float) -> None:
        if not self.training:
            return
        x = features(state, now, self.half_life)
        self.scaler.learn_one(x)  # type: ignore[no-untyped-call]
        scaled = self.scaler.transform_one(x)  # type: ignore[no-untyped-call]
        rid: int = self.kmeans.learn_predict_one(scaled)  # type: ignore[no-untyped-call]
        for k in self.counts:
            self.counts[k] *= COUNT_DECAY
        self.counts[rid] = self.counts.get(rid, 0.0) + 1.0
        self.learned += 1
        warm, every = self.settings.cluster_warmup, self.settings.cluster_refresh_every
        if self.learned >= warm and (self.learned - warm) % every == 0:
            self.model = self.refresh()

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
        )

    @staticmethod
    def _rescale(raw: dict[str, float], means: dict[str, float],
                 variances: dict[str, float]) -> list[float]:
        return [
            (raw[f] - means[f]) / math.sqrt(variances[f]) if variances[f] else 0.0
            for f in FEATURES
        ]

    def adopt(self, snapshot: dict[str, Any]) -> bool:
        """Use a published snapshot if it is newer; restore the trainer from it too."""
        model = ClusterModel.from_dict(snapshot)
        if self.model is not None and model.version <= self.model.version:
            return False
        self.model = model
        self.learned = model.learned
        self.scaler = preprocessing.StandardScaler()
        for f in FEATURES:
            self.scaler.counts[f] = model.learned
            self.scaler.means[f] = model.means.get(f, 0.0)
            self.scaler.vars[f] = model.variances.get(f, 0.0)
        gauss = functools.partial(self.kmeans._rng.gauss, self.kmeans.mu, self.kmeans.sigma)
        ids = {seg: int(rid) for rid, seg in model.labels.items()}
        self.kmeans.centers = {
            ids[seg]: collections.defaultdict(gauss, zip(FEATURES, center, strict=True))
            for seg, center in model.centers.items()
        }
        total = sum(model.shares.values()) or 1.0
        self.counts = {ids[s]: share / total * 1000.0 for s, share in model.shares.items()}
        return True

    def snapshot(self) -> dict[str, Any] | None:
        """The current model as plain data (None before the first version)."""
        return None if self.model is None else self.model.to_dict()

    def assign(self, state: CustomerState, now: float) -> Assignment | None:
        if self.model is None or state.events == 0:
            return None
        seg, margin = self.model.assign(features(state, now, self.half_life))
        why = f"closest to {self.model.description(seg)}"
        return Assignment(seg, why, margin=margin, model_version=self.model.version)

    def describe(self, segment: str) -> str:
        if self.model is None:
            return segment
        return f"Cluster {segment}: {self.model.description(segment)}"
