"""Behavioural clusters: k-means over the current population, stable ids and names.

Features (:func:`vector`, names in :data:`~streamseg.engine.model.FEATURES`):
how someone shops while active (decayed purchase rate at their latest event,
log average basket, visits without a purchase, page views per visit, cart
conversion, mobile share), all fixed between their events, plus ``recency``
(log days idle beyond ``cluster_recency_grace_days``), the only one the clock
moves: a usual gap between visits moves nobody, so nobody flaps between a
cluster and an "inactive" one around every gap. The
basket of a customer who never bought is unknown and scales to the mean.

Training (the one worker that trains, and replays) keeps a deterministic
sample of *customers* (:class:`~streamseg.engine.clusterfit.Population`: at
most ``cluster_sample_size``, customers with ``MIN_SESSIONS`` visits or more)
and refits it (:func:`~streamseg.engine.clusterfit.fit`: Lloyd warm started
from the current centroids, with seeded k-means++ restarts competing on every
:data:`RESEED_EVERY`-th refit only) every ``cluster_refresh_every`` learned
events from ``cluster_warmup`` on, once the sample holds
``cluster_min_customers`` customers: **no model exists before that**, so no
customer is labelled by an untrained one. A refit becomes a new published
version only if the active features or the segments changed or a centroid
moved more than :data:`~streamseg.engine.clusterrefit.PUBLISH_SHIFT` z units
(:func:`~streamseg.engine.clusterrefit.next_model`); ids are matched to the previous
centroids, and an id's name never changes: kept while a centroid stays within
:data:`~streamseg.engine.model.NAME_SHIFT` of its anchor or the name still
holds (:func:`~streamseg.engine.model.holds`); otherwise the centroid gets
another id and the old one is retired (its customers move, trigger
``population``, and :meth:`ClusterSegmenter.describe` still gives a retired id
the name it was published with).

Engine contract:

* ``assign``: the nearest centroid whose name may be told to the customer
  (:meth:`~streamseg.engine.clusterassign.Assigner.fits`: not "frequent buyer" to one who
  never bought, not "long inactive" to one seen within the recency grace; the
  nearest of all when none may). Other words are relative to the population and
  are not checked per customer.
* ``hold``: the published cluster is kept until the customer is ``min_margin``
  z units past the border (bisecting hyperplane) between it and the new
  verdict, whatever the trigger: a band of twice the margin against flapping;
  and kept while the verdict is another published cluster with the same words
  (two centroids described alike: a move between them would tell the customer
  nothing); never once its name is false of the customer (:meth:`still_fits`:
  "frequent buyer" for one who never bought; "long inactive" for one seen within the
  recency grace, unless the customer moved into it within ``flap_window_s``: then
  held as any other until that window ends, so the visit undoes no recent move).
* ``due``: the exact event time at which growing recency alone takes an idle
  customer over a border or past the margin (one division per pair of centroids).
* ``moved``: when a new model version is used, every local customer (seen in
  ``learn`` or ``restore``) whose verdict changes under it and is not held, or whose next due
  time comes earlier than the one the engine has, is reported once. The work
  is one pass over this worker's customers per published version.

Examples
--------
>>> from streamseg.config import Settings
>>> cfg = Settings(cluster_k=2, cluster_warmup=1, cluster_refresh_every=1,
...                cluster_min_customers=4)
>>> seg = ClusterSegmenter(cfg)
>>> def shopper(cid, buys, mobile):
...     s = CustomerState.new(cid, 0.0)
...     s.events, s.sessions, s.d_sessions, s.d_page_views = 9, 3, 3.0, 6.0
...     s.purchases, s.monetary, s.d_purchases, s.d_cart_adds = buys, 50.0 * buys, buys, buys
...     s.d_devices = [3.0 * mobile, 3.0 * (1 - mobile), 0.0, 0.0]
...     return s
>>> people = [shopper(f"c{i}", 3 * (i % 2), i % 2) for i in range(4)]
>>> for s in people[:3]:
...     seg.learn(s, 0.0)
>>> seg.version, seg.assign(people[0], 0.0) is None  # 3 customers: no model yet
(None, True)
>>> seg.learn(people[3], 0.0)
>>> seg.version, [seg.assign(s, 0.0).segment for s in people]
(1, ['c1', 'c2', 'c1', 'c2'])
>>> seg.describe("c2"), seg.model.active  # every buyer's basket is 50: constant
('Cluster c2: seldom browses, converts carts, mobile', ['purchases', 'browse', 'cart', 'mobile'])
>>> sorted(seg.moved())  # nobody had a cluster yet: all four are to be scored
['c0', 'c1', 'c2', 'c3']
"""

from __future__ import annotations

import math
from typing import Any

from streamseg.config import Settings
from streamseg.engine.clusterassign import STEP_S, Assigner
from streamseg.engine.clusterfeatures import recency, static
from streamseg.engine.clusterfit import Population
from streamseg.engine.clusterrefit import next_model, words
from streamseg.engine.features import CustomerState
from streamseg.engine.model import ClusterModel, title
from streamseg.engine.segmenters.base import Assignment

MIN_SESSIONS = 3  # customers are sampled and assigned from their third visit (ratios settle)
DWELL_FACTOR = 5.0  # the hold margin is this much wider within flap_window_s of a change
RESEED_EVERY = 10  # refits: k-means++ restarts compete on every 10th (or when Lloyd from the
#                   current model loses a cluster); in between, Lloyd from the current model only


class ClusterSegmenter:
    """Distance-based segmenter over the published :class:`ClusterModel`."""

    name = "cluster"
    reads_segments = False
    reacts_to: frozenset[str] | None = None  # clicks move its features too

    def __init__(self, settings: Settings, training: bool = True) -> None:
        self.settings = settings
        self.training = training
        self.margin = settings.min_margin
        self.dwell = settings.flap_window_s
        self.grace = settings.cluster_recency_grace_days
        self.half_life = settings.half_life_days
        self.population = Population(settings.cluster_sample_size)
        # customers of this worker: [static features, last seen, label, due, label since,
        # due found after, by Assigner] (see due)
        self.local: dict[str, list[Any]] = {}
        self._moved: dict[str, None] = {}
        self.learned = 0
        self.refits = 0
        self.model: ClusterModel | None = None
        self.assigner: Assigner | None = None
        self._words: dict[str, frozenset[str]] = {}  # published id -> the words of its name
        self._row: tuple[tuple[float, ...], list[float]] | None = None  # see _static
        self._zmemo: tuple[Assigner, list[float], float, list[float]] | None = None  # see _z
        # (z, label, margin, Assigner.next_change of them): see _due_from
        self._ncmemo: tuple[list[float], str | None, float, float | None] | None = None

    def _static(self, state: CustomerState) -> list[float]:
        """:func:`static` of ``state``, remembered while its inputs stay the same
        (learn, assign, hold and due of one evaluation read the same row)."""
        d = state.d_devices
        key = (state.decay_ts, state.first_seen, state.d_purchases, state.purchases,
               state.monetary, state.d_sessions, state.d_page_views, state.d_cart_adds,
               d[0], d[1], d[2], d[3])
        row = self._row
        if row is not None and row[0] == key:
            return row[1]
        vals = static(state, self.half_life)
        self._row = (key, vals)
        return vals

    def _z(self, a: Assigner, state: CustomerState, now: float) -> list[float]:
        """The scaled vector of ``state`` at ``now``, remembered while the model, the
        static row (:meth:`_static`) and the recency stay the same."""
        row = self._static(state)
        rec = recency(state.last_seen, now, self.grace)
        m = self._zmemo
        if m is not None and m[0] is a and m[1] is row and m[2] == rec:
            return m[3]
        z = a.scale([*row, rec])
        self._zmemo = (a, row, rec, z)
        return z

    @property
    def version(self) -> int | None:
        return None if self.model is None else self.model.version

    # ---- population model -------------------------------------------------------------------

    def _note(self, state: CustomerState) -> None:
        """Keep ``state`` among this worker's customers (and in the trainer's sample)."""
        if state.sessions < MIN_SESSIONS:
            return
        cid = state.customer_id
        row = self._static(state)
        entry = self.local.get(cid)
        if entry is None:
            cur = state.segments.get(self.name)
            self.local[cid] = [row, state.last_seen, None if cur is None else cur[0], None,
                               None if cur is None else float(cur[1]), None, None]
        else:
            entry[0], entry[1], entry[6] = row, state.last_seen, None
        if self.training:
            self.population.put(cid, row, state.last_seen)

    def learn(self, state: CustomerState, now: float) -> None:
        if self.training:
            self.learned += 1
        self._note(state)
        if not self.training:
            return
        warm, every = self.settings.cluster_warmup, self.settings.cluster_refresh_every
        if (self.learned >= warm and (self.learned - warm) % every == 0
                and len(self.population) >= self.settings.cluster_min_customers):
            model = self.refit(now)
            if model is not None:
                self._use(model, now)

    def restore(self, state: CustomerState) -> None:
        """Back among this worker's customers (and the trainer's sample) after a restart
        or rebalance, with no refit and no verdict: the next model version then
        re-scores them too (:meth:`moved`), not only those seen since."""
        self._note(state)

    def forget(self, customer_id: str) -> None:
        self.local.pop(customer_id, None)
        self.population.drop(customer_id)
        self._moved.pop(customer_id, None)

    def customers(self) -> list[str]:
        """This worker's customers (the trainer's sample is drawn from them)."""
        local = self.local
        return [*local, *(c for c in self.population.rows if c not in local)]

    def refit(self, now: float) -> ClusterModel | None:
        """The next model version from the sample at event time ``now`` (None: no material move)."""
        lazy = self.refits % RESEED_EVERY != 0
        self.refits += 1
        return next_model(self.population.rows, self.model, now, self.settings, lazy,
                          self.learned)

    def _use(self, model: ClusterModel, now: float) -> None:
        """Assign with ``model`` from now on; queue the customers it may move (see moved)."""
        self.model = model
        self.assigner = a = Assigner(model)
        self._words = {seg: words(name) for seg, name in a.names.items()}
        for cid, (row, last_seen, label, due, since, _, _) in self.local.items():
            z = a.scale([*row, recency(last_seen, now, self.grace)])
            if label is None:
                self._moved[cid] = None
                continue
            seg, _ = a.nearest(z)
            if seg != label and not self.alike(label, seg) and (
                    not self.still_fits(a, label, z, since, now)
                    or a.past(z, label, seg) >= self.margin_at(since, now)):
                self._moved[cid] = None
                continue
            t = self._due_from(a, z, label, since, last_seen, now)
            if t is not None and (due is None or t < due):
                self._moved[cid] = None

    def moved(self) -> list[str]:
        out = list(self._moved)
        self._moved.clear()
        return out

    # ---- verdicts ---------------------------------------------------------------------------

    def assign(self, state: CustomerState, now: float) -> Assignment | None:
        a = self.assigner
        if a is None or state.sessions < MIN_SESSIONS:
            return None
        seg, margin = a.nearest(self._z(a, state, now))
        return Assignment(seg, a.reasons[seg], margin=margin, model_version=a.version)

    def still_fits(self, a: Assigner, current: str, z: list[float], since: float | None,
                   now: float) -> bool:
        """Whether the published ``current`` may still be held: a "frequent buyer" cluster
        never for a customer who never bought; a "long inactive" one not for a customer
        seen within the recency grace, once ``flap_window_s`` has passed since the
        customer's latest cluster change (before that, leaving it would undo a move of
        the last two weeks: it is held as any cluster, and the window's end is a due time)."""
        return a.fits(current, z) or (a.fits_static(current, z) and since is not None
                                       and now - since < self.dwell)

    def margin_at(self, since: float | None, now: float) -> float:
        """The hold margin: ``min_margin``, times :data:`DWELL_FACTOR` within
        ``flap_window_s`` of the customer's latest cluster change."""
        if since is not None and now - since < self.dwell:
            return self.margin * DWELL_FACTOR
        return self.margin

    def alike(self, current: str, other: str) -> bool:
        """Whether ``current`` and ``other`` are published clusters named with the same
        words (a move between them would tell the customer nothing)."""
        w = self._words.get(current)
        return w is not None and w == self._words.get(other)

    def hold(self, state: CustomerState, current: str, verdict: Assignment, now: float,
             trigger: str) -> bool:
        """Keep ``current`` until the customer is :meth:`margin_at` past its border with
        the verdict (whatever the trigger), and while the verdict is :meth:`alike`."""
        a = self.assigner
        if a is None:
            return False
        if self.alike(current, verdict.segment):
            return True
        cur = state.segments.get(self.name)
        since = None if cur is None else float(cur[1])
        z = self._z(a, state, now)
        if not self.still_fits(a, current, z, since, now):  # its name is false: no hold
            return False
        return a.past(z, current, verdict.segment) < self.margin_at(since, now)

    def due(self, state: CustomerState, after: float) -> float | None:
        a = self.assigner
        cur = state.segments.get(self.name)
        label, since = (None, None) if cur is None else (str(cur[0]), float(cur[1]))
        entry = self.local.get(state.customer_id)
        t = None
        if a is not None and state.sessions >= MIN_SESSIONS:
            if entry is not None and self._still(entry, a, state, label, since, after):
                return entry[3]  # type: ignore[no-any-return]
            z = self._z(a, state, after)
            t = self._due_from(a, z, label, since, state.last_seen, after)
        if entry is not None:
            entry[2], entry[3], entry[4], entry[5], entry[6] = label, t, since, after, a
        return t

    def _still(self, entry: list[Any], a: Assigner, state: CustomerState, label: str | None,
               since: float | None, after: float) -> bool:
        """Whether the due time in ``entry`` (found after ``entry[5]``) is the due time
        after ``after`` too: same model, row, last visit, label and margin, and still
        ahead. Border crossings are fixed recency levels
        (:meth:`~streamseg.engine.clusterassign.Assigner.next_change`), so a later look
        finds the same; a due time found within the wider margin's dwell is at
        most its end, so one still ahead was found under the same margin."""
        t, before = entry[3], entry[5]
        return not (entry[6] is not a or before is None or before > after
                    or (t is not None and t <= after + STEP_S) or entry[2] != label
                    or entry[4] != since or entry[1] != state.last_seen
                    or entry[0] != self._static(state))

    def _due_from(self, a: Assigner, z: list[float], label: str | None, since: float | None,
                  last_seen: float, after: float) -> float | None:
        best = None
        if since is not None and after < since + self.dwell:
            best = since + self.dwell + STEP_S  # the wider margin ends
        margin = self.margin_at(since, after)
        nc = self._ncmemo
        if nc is not None and nc[0] is z and nc[1] == label and nc[2] == margin:
            r = nc[3]
        else:
            r = a.next_change(z, label, margin)
            self._ncmemo = (z, label, margin, r)
        if r is not None:
            t = a.recency_time(r, last_seen, self.grace)
            if t != math.inf and (best is None or max(t, after) + STEP_S < best):
                best = max(t, after) + STEP_S
        return best

    def segments(self) -> tuple[str, ...]:
        """(): cluster ids come from the model (their series appear with it)."""
        return ()

    def describe(self, segment: str) -> str:
        """The title of ``segment``: an id's name never changes, and a retired id
        keeps the name it was published with (the model remembers it)."""
        a, m = self.assigner, self.model
        if a is None or m is None:
            return segment
        published = a.titles.get(segment)
        return published if published is not None else title(segment, m.description(segment))

    # ---- snapshots --------------------------------------------------------------------------

    def adopt(self, snapshot: dict[str, Any]) -> bool:
        """Use a published snapshot if it is newer (and trained on enough customers).

        A snapshot over other features (from an older release) is ignored. The
        trainer's sample is not in the snapshot: a restarted trainer refills it
        from the restored states (:meth:`restore`) and new events and refits once
        it holds ``cluster_min_customers`` customers, with ids and names matched
        to the adopted model.
        """
        try:
            model = ClusterModel.from_dict(snapshot)
        except (ValueError, KeyError):
            return False
        if self.model is not None and model.version <= self.model.version:
            return False
        if model.customers < self.settings.cluster_min_customers:
            return False
        self.learned = max(self.learned, model.learned)
        now = max((e[1] for e in self.local.values()), default=0.0)
        self._use(model, now)
        return True

    def snapshot(self) -> dict[str, Any] | None:
        """The current model as plain data (None before the first version)."""
        return None if self.model is None else self.model.to_dict()
