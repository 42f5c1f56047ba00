"""One refit of the cluster model: scale the sample, fit, keep ids and names stable.

:func:`next_model` turns the trainer's sample
(:attr:`~streamseg.engine.clusterfit.Population.rows`) into the next
:class:`~streamseg.engine.model.ClusterModel` version, or None when nothing
moved materially (same active features and segments, no centroid moved more
than :data:`PUBLISH_SHIFT` z units). Called by
:meth:`~streamseg.engine.segmenters.clusters.ClusterSegmenter.refit`.

A version moves few customers at once (review 19, Instacart: version 17, a
k-means++ restart after a warm refit had lost a cluster, moved 216 of 571
labelled customers; version 22 moved 157): a refit that would move more than
:data:`MAX_MOVED` of the sample past the hold margin (:func:`moved`) is
published whole only if it lowers the inertia of the published centroids by
:data:`FIT_GAIN`. Short of that, a k-means++ restart that won
(:func:`~streamseg.engine.clusterfit.fit`) is published if it lowers it at all
(holding restarts back more kept 300 simulated personas at ARI 0.72 instead of
0.98), and Lloyd's refit goes part-way (:data:`PART_WAY`: the longest step that
moves few, else the step that moves fewest, as a name no longer true moves its
customers at any step). A fit no better than the published centroids is not
published (with the part-way rule alone, a restart that had dropped two clusters
moved 753 of CJ's customers at once, its inertia 10% above the published centroids').
A published name holds with a band
(:data:`NAME_BAND`): renaming a centroid moves all of its customers.

Ids are matched to the previous centroids (:func:`~streamseg.engine.model.match`)
and an id's name never changes, so a published id never changes meaning: a
centroid keeps its id while it stays within :data:`~streamseg.engine.model.NAME_SHIFT`
of where its name was given, or the name still
:func:`~streamseg.engine.clusternames.holds` for it. Otherwise it is named afresh (told
apart from a live cluster with the same words:
:func:`~streamseg.engine.clusternames.apart`; such a comparison must stay true of
the centroids kept: :func:`~streamseg.engine.clusternames.still_apart`) and
takes the id of a previous centroid not kept with the same words (in any
order: :func:`words`), else of the latest retired id with those words (it
comes back with its own name), else a new id; a previous id not kept is
retired, its name kept in :attr:`~streamseg.engine.model.ClusterModel.retired`
(the latest :data:`RETIRED_KEEP`) for the records of the customers who leave it.
So one set of words keeps one id across refits (review 18: a "frequent buyer"
retired at one refit came back under a new id at the next, and 44 customers moved
from one "frequent buyer" id to another within eight days).

Examples
--------
>>> from streamseg.config import Settings
>>> cfg = Settings(cluster_k=2, cluster_min_share=0.0)
>>> rows = {f"c{i}": ([0.1 * (i % 2), 3.0 * (i % 2), 1.0, 2.0, 0.5, 0.9 * (i % 2)], 0.0)
...         for i in range(8)}
>>> m = next_model(rows, None, 0.0, cfg, lazy=False, learned=8)
>>> m.version, sorted(m.centers), m.customers
(1, ['c1', 'c2'], 8)
>>> next_model(rows, m, 0.0, cfg, lazy=True, learned=9) is None  # nothing moved
True
"""

from __future__ import annotations

import math

import numpy as np

from streamseg.config import Settings
from streamseg.engine.clusterassign import Assigner
from streamseg.engine.clusterfeatures import recencies
from streamseg.engine.clusterfit import fit, inertia, nearest_shares
from streamseg.engine.clusternames import NAMES, apart, describe, holds, still_apart
from streamseg.engine.model import MIN_STD, NAME_SHIFT, ClusterModel, match

MAX_MOVED = 0.05  # a new version moves at most this share of the sample (see next_model)
PART_WAY = (0.5, 0.25, 0.125)  # steps towards a fit that would move more
FIT_GAIN = 0.1  # a fit that moves more is published whole if its inertia is this much lower
NAME_BAND = 0.25  # z units a published name's words may fall short of DESCRIBE_Z (hysteresis)
PUBLISH_SHIFT = 0.25  # z units a centroid must move for a refit to become a new version
SCALE_FLOOR = 0.2  # a feature's scale is at least this (a barely varying one barely counts)
RETIRED_KEEP = 256  # names of retired ids kept in the model (the most recently retired)


def words(name: str) -> frozenset[str]:
    """The words of a cluster name (:func:`~streamseg.engine.clusternames.describe`), in any order.

    >>> words("rare buyer, abandons carts") == words("abandons carts, rare buyer")
    True
    """
    return frozenset(name.split(", "))


def _order(seg: str) -> tuple[int, str]:
    """Ids in the order they were minted (``c2`` before ``c10``)."""
    return (int(seg[1:]), seg) if seg[1:].isdigit() else (-1, seg)


def next_model(
    rows: dict[str, tuple[list[float], float]], prev: ClusterModel | None, now: float,
    settings: Settings, lazy: bool, learned: int,
) -> ClusterModel | None:
    """The model after ``prev`` fitted on the sample ``rows`` (customer -> (static
    features, last seen)) at event time ``now``; None if it would not be a new version.

    ``lazy``: Lloyd from ``prev``'s centroids only, no seeded k-means++ restarts.
    ``learned`` is recorded in the model (learned events at the refit).
    """
    ids = sorted(rows)
    picked = [rows[c] for c in ids]
    raw = np.empty((len(ids), len(NAMES)))
    raw[:, :-1] = [static for static, _ in picked]
    raw[:, -1] = recencies(np.array([seen for _, seen in picked]), now,
                           settings.cluster_recency_grace_days)
    known = ~np.isnan(raw)
    counts = known.sum(axis=0)
    filled = np.where(known, raw, 0.0)
    means = filled.sum(axis=0) / np.maximum(counts, 1)
    variances = (np.where(known, raw - means, 0.0) ** 2).sum(axis=0) / np.maximum(counts, 1)
    std = np.sqrt(variances)
    on = std >= MIN_STD
    active = [f for f, ok in zip(NAMES, on, strict=True) if ok]
    inv = np.where(on, 1.0 / np.maximum(std, SCALE_FLOOR), 0.0)
    points = np.where(known, (raw - means) * inv, 0.0)
    mean_d = {f: float(m) for f, m in zip(NAMES, means, strict=True)}
    var_d = {f: float(v) for f, v in zip(NAMES, variances, strict=True)}

    def rescale(raw_center: list[float]) -> list[float]:
        return [float((x - m) * i) for x, m, i in zip(raw_center, means, inv, strict=True)]

    old: dict[str, list[float]] = {}
    if prev is not None:
        old = {seg: rescale(prev.raw(c)) for seg, c in sorted(prev.centers.items())}
    warm = np.array(list(old.values())) if old else None
    k, seed, share = settings.cluster_k, settings.cluster_seed, settings.cluster_min_share
    centers, shares = fit(points, k, seed, warm, share, lazy=lazy)

    def build(centers: np.ndarray, shares: np.ndarray | None = None) -> ClusterModel | None:
        return _named(centers, shares, points, old, prev, active, means, inv, mean_d, var_d,
                      learned, len(ids))

    model = build(centers, shares)
    if prev is None or model is None or warm is None:
        return model
    cap = MAX_MOVED * len(ids)
    was = nearest_ids(prev, raw)  # each sample customer's cluster under prev, once
    whole = moved(was, model, raw, settings.min_margin)
    if whole <= cap:
        return model
    published = inertia(points, warm)  # the published centroids on today's sample
    fitted = inertia(points, centers)
    if fitted <= published * (1.0 - FIT_GAIN):
        return model  # clearly better than the published centroids
    if not lazy:  # a restart that won over Lloyd: published if better than the published
        return model if fitted < published else None
    # part-way from the previous centroids towards the fit (each previous centroid towards
    # its match; one without a match stays, a new one waits): the longest step that moves
    # few
    labels, _ = match(old, {i: [float(x) for x in c] for i, c in enumerate(centers)}, 0)
    target = {labels[i]: c for i, c in enumerate(centers) if labels[i] in old}
    best, fewest = model, whole
    for step in PART_WAY:
        part = np.array([np.asarray(o) + step * (target[s] - np.asarray(o)) if s in target
                         else np.asarray(o) for s, o in old.items()])
        candidate = build(part)
        if candidate is None:
            continue
        n = moved(was, candidate, raw, settings.min_margin)
        if n <= cap:
            return candidate
        if n < fewest:
            best, fewest = candidate, n
    # no step moves few: the one that moves fewest if the fit is better than the published
    # centroids; else keep them (Lloyd lost a cluster: the next refit would bring it back)
    return best if fitted < published else None


def nearest_ids(model: ClusterModel, raw: np.ndarray) -> list[str]:
    """The nearest cluster of each sample customer (``raw`` features) under ``model``."""
    return Assigner(model).nearest_rows(raw)[1]


def moved(was: list[str], model: ClusterModel, raw: np.ndarray, margin: float) -> int:
    """Sample customers (``raw`` features) whom ``model`` would move from their cluster
    ``was`` (:func:`nearest_ids` under the published model): its nearest cluster is
    another, ``margin`` past the border, or their cluster is gone (a retired id is never
    held)."""
    b = Assigner(model)
    z, now = b.nearest_rows(raw)
    rows = [i for i, (n, c) in enumerate(zip(now, was, strict=True)) if n != c]
    if not rows:
        return 0
    past = b.past_rows(z[rows], [was[i] for i in rows], [now[i] for i in rows])
    return int((past >= margin).sum())


def _named(
    centers: np.ndarray, shares: np.ndarray | None, points: np.ndarray, old: dict[str, list[float]],
    prev: ClusterModel | None, active: list[str], means: np.ndarray, inv: np.ndarray,
    mean_d: dict[str, float], var_d: dict[str, float], learned: int, customers: int,
) -> ClusterModel | None:
    """The model of ``centers`` (scaled) with ids matched to ``old`` (``prev``'s centroids in
    this scale) and stable names; None if it is not a new version (see :func:`next_model`)."""
    if shares is None:  # centroids not from a fit: the share of the points nearest each
        shares = nearest_shares(points, centers)

    def rescale(raw_center: list[float]) -> list[float]:
        return [float((x - m) * i) for x, m, i in zip(raw_center, means, inv, strict=True)]

    def unscale(vec: list[float]) -> list[float]:  # a scaled centroid's raw values (its anchor)
        return [float(z / i + m) if i else float(m)
                for z, m, i in zip(vec, means, inv, strict=True)]

    new = {i: [float(x) for x in c] for i, c in enumerate(centers)}
    labels, next_id = match(old, new, 1 if prev is None else prev.next_id)
    segs = {labels[i]: vec for i, vec in new.items()}
    if prev is not None and prev.active == active and set(segs) == set(old) and all(
        math.dist(vec, old[s]) <= PUBLISH_SHIFT for s, vec in segs.items()
    ):
        return None
    # an id never changes its name (see the module docstring)
    names: dict[str, str] = {}
    anchors: dict[str, list[float]] = {}
    pub: dict[str, str] = {}  # matched id -> the id published
    renamed: dict[str, tuple[str, list[float]]] = {}  # matched id -> (new name, anchor)
    for seg, vec in sorted(segs.items()):
        anchor = None if prev is None or prev.active != active else prev.anchors.get(seg)
        if anchor is not None and math.dist(vec, rescale(anchor)) <= NAME_SHIFT:
            pub[seg] = seg
            names[seg], anchors[seg] = prev.names[seg], anchor  # type: ignore[union-attr]
            continue
        center = dict(zip(NAMES, vec, strict=True))
        name = describe(center, active)
        anchor = unscale(vec)
        was = None if prev is None or seg not in prev.centers else prev.description(seg)
        if was is None or not holds(was, center, active, NAME_BAND):
            renamed[seg] = (name, anchor)  # a new centroid, or its id's name is no longer true
        else:  # the published name is still true (re-anchored here)
            pub[seg], names[seg], anchors[seg] = seg, was, anchor
    # a kept name's comparison with another kept cluster ("buys less than c2") must
    # still be true too: that cluster moved, or this one, without either being renamed
    kept_at = {seg: dict(zip(NAMES, segs[seg], strict=True)) for seg in pub}
    for seg in sorted(pub):
        if not still_apart(names[seg], kept_at[seg], kept_at, NAME_BAND):
            del pub[seg], names[seg], anchors[seg]  # its id retires: not compared with
            renamed[seg] = (describe(kept_at.pop(seg), active), unscale(segs[seg]))
    before = {} if prev is None else {
        seg: prev.description(seg) for seg in sorted(prev.centers, key=_order)}
    free: dict[frozenset[str], str] = {}  # words -> the earliest previous id not kept
    for seg, name in before.items():
        if seg not in pub:
            free.setdefault(words(name), seg)
    retired = {} if prev is None else dict(prev.retired)
    for seg, name in reversed(retired.items()):  # then the latest retired id with the words
        free.setdefault(words(name), seg)
    # the live ids so far (kept): the words of their names -> (id, centroid)
    live = {words(names[s]): (s, segs[m]) for m, s in pub.items()}
    for seg, (name, anchor) in sorted(renamed.items(), key=lambda kv: _order(kv[0])):
        alike = live.get(words(name))
        if alike is not None:  # called like a live cluster: told apart from it
            name = apart(name, dict(zip(NAMES, segs[seg], strict=True)),
                         dict(zip(NAMES, alike[1], strict=True)), alike[0], live)
        to = free.pop(words(name), None)
        if to is None and (prev is None or seg not in prev.centers):
            to = seg  # a new centroid: the fresh id match gave it
        elif to is None:
            to, next_id = f"c{next_id}", next_id + 1
        # a previous or retired id comes with its own name (the same words)
        own = before.get(to) or retired.pop(to, None) or name
        pub[seg], names[to], anchors[to] = to, own, anchor
        live.setdefault(words(own), (to, segs[seg]))
    kept = set(pub.values())
    retired.update((seg, name) for seg, name in before.items() if seg not in kept)
    while len(retired) > RETIRED_KEEP:  # the oldest retired names go first
        del retired[next(iter(retired))]
    return ClusterModel(
        version=1 if prev is None else prev.version + 1,
        means=mean_d, variances=var_d,
        centers={pub[s]: vec for s, vec in segs.items()}, active=active, names=names,
        anchors=anchors,
        shares={pub[labels[i]]: round(float(s), 6) for i, s in enumerate(shares)},
        retired=retired,
        next_id=next_id, learned=learned, customers=customers,
    )
