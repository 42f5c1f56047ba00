"""Behavioural clusters: k-means over the current population, stable ids and names.

Features (:func:`vector`, names in :data:`~streamseg.engine.clusternames.FEATURES`):
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
(:func:`~streamseg.engine.clusterrefit.next_model`), and one that would move more
than :data:`~streamseg.engine.clusterrefit.MAX_MOVED` of the sample only if better
than the published centroids (Lloyd's: taken part-way unless clearly better); ids
are matched to the previous
centroids, and an id's name never changes: kept while a centroid stays within
:data:`~streamseg.engine.model.NAME_SHIFT` of its anchor or the name still
holds (:func:`~streamseg.engine.clusternames.holds`, within
:data:`~streamseg.engine.clusterrefit.NAME_BAND`); otherwise the centroid gets
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
  nothing; a comparison of :func:`~streamseg.engine.clusternames.apart` aside); never once
  its name is false of the customer
  (:meth:`~streamseg.engine.segmenters.clusterhold.ClusterHold.still_fits`:
  "frequent buyer" for one who never bought; "long inactive" for one seen within the
  recency grace, however recently the clock moved them into it).
* ``due``: the exact event time at which growing recency alone takes an idle
  customer over a border or past the margin (one division per pair of centroids),
  plus ``cluster_idle_dwell_days``: an idle customer is held until they were past the
  margin that long ago (``hold`` looks at the customer's recency a dwell ago, whatever
  the trigger), so a customer back within it is never moved by recency.
* ``moved``: when a new model version is used, every local customer (seen in
  ``learn`` or ``restore``) whose verdict changes under it and is not held, or whose next due
  time comes earlier than the one the engine has, is reported once. The work
  is one pass over this worker's customers per published version.

The hold and due rules are those of the base class,
:class:`~streamseg.engine.segmenters.clusterhold.ClusterHold`.

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

from typing import Any

from streamseg.config import DAY, Settings
from streamseg.engine.clusterassign import Assigner
from streamseg.engine.clusterfeatures import recency
from streamseg.engine.clusterfit import Population
from streamseg.engine.clusternames import comparison, title
from streamseg.engine.clusterrefit import next_model, words
from streamseg.engine.features import CustomerState
from streamseg.engine.model import ClusterModel
from streamseg.engine.segmenters.base import Assignment
from streamseg.engine.segmenters.clusterhold import MIN_SESSIONS, ClusterHold

RESEED_EVERY = 10  # refits: k-means++ restarts compete on every 10th (or when Lloyd from the
#                   current model loses a cluster); in between, Lloyd from the current model only


class ClusterSegmenter(ClusterHold):
    """Distance-based segmenter over the published :class:`ClusterModel` (its hold and due
    rules: :class:`~streamseg.engine.segmenters.clusterhold.ClusterHold`)."""

    name = "cluster"
    reads_segments = False
    reacts_to: frozenset[str] | None = None  # clicks move its features too

    def __init__(self, settings: Settings, training: bool = True) -> None:
        self.settings = settings
        self.training = training
        # hysteresis off: nothing held, and due times at the raw borders (a reviewer's
        # --no-hysteresis run left 93 idle-dwell holds on Complete Journey as stale labels)
        self.hysteresis = settings.hysteresis
        self.margin = settings.min_margin if settings.hysteresis else 0.0
        self.dwell = settings.flap_window_s
        self.grace = settings.cluster_recency_grace_days
        self.idle_dwell = settings.cluster_idle_dwell_days * DAY if settings.hysteresis else 0.0
        self.half_life = settings.half_life_days
        self.population = Population(settings.cluster_sample_size)
        # customers of this worker: [static features, last seen, label, due, label since,
        # due found after, by Assigner] (see due)
        self.local: dict[str, list[Any]] = {}
        self._moved: dict[str, None] = {}
        self.learned = 0
        self.refits = 0
        # the latest event time learned from: a refit's reference time (recency of the sample)
        self.clock: float | None = None
        # fits not used (Trained): none, a refit with no material move is no fit
        self.rejected = self.failed = 0
        self.model: ClusterModel | None = None
        self.assigner: Assigner | None = None
        self._words: dict[str, frozenset[str]] = {}  # published id -> the words of its name
        self._row: tuple[tuple[float, ...], list[float]] | None = None  # see _static
        self._zmemo: tuple[Assigner, list[float], float, list[float]] | None = None  # see _z
        # (z, label, margin, Assigner.next_change of them): see _due_from
        self._ncmemo: tuple[list[float], str | None, float, float | None] | None = None

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
        """Note ``state`` in the sample; every ``cluster_refresh_every`` events, refit.

        A refit is made at the latest event time learned from (:attr:`clock`), not at
        ``now``: the customer whose event triggers it may be behind the others (a late
        event, or another partition's in the worker), and the sample's recency would
        shift back and forth with who triggers (a reorder study found refits 3-8 days
        behind the latest event dropping a recency-defined cluster).
        """
        if self.clock is None or now > self.clock:
            self.clock = now
        if self.training:
            self.learned += 1
        self._note(state)
        if not self.training:
            return
        warm, every = self.settings.cluster_warmup, self.settings.cluster_refresh_every
        if (self.learned >= warm and (self.learned - warm) % every == 0
                and len(self.population) >= self.settings.cluster_min_customers):
            at = self.clock
            model = self.refit(at)
            if model is not None:
                self._use(model, at)

    def restore(self, state: CustomerState) -> None:
        """Back among this worker's customers (and the trainer's sample) after a restart
        or rebalance, with no refit and no verdict: the next model version then
        re-scores them too (:meth:`moved`), not only those seen since; the refit clock
        (:attr:`clock`) goes no earlier than their latest activity."""
        if self.clock is None or state.last_seen > self.clock:
            self.clock = state.last_seen
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
        self._words = {seg: frozenset(w for w in words(name) if not comparison(w))
                       for seg, name in a.names.items()}
        for cid, (row, last_seen, label, due, since, _, _) in self.local.items():
            z = a.scale([*row, recency(last_seen, now, self.grace)])
            if label is None:
                self._moved[cid] = None
                continue
            seg, _ = a.nearest(z)
            then = None
            if self.idle_dwell > 0.0 and now > last_seen:  # idle: where they were a dwell ago
                then = a.scale([*row, recency(last_seen, now - self.idle_dwell, self.grace)])
            if seg != label and not self.keeps(a, label, seg, z, then,
                                               self.margin_at(since, now)):
                self._moved[cid] = None
                continue
            t = self._due_from(a, z if then is None else then, label, since, last_seen, now)
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
