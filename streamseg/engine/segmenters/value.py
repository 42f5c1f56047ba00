"""Predicted value: tiers by BG/NBD expected purchases among the current customers.

Per customer (every customer with a purchase) the BG/NBD model
(:mod:`streamseg.engine.bgnbd`) gives ``p_alive`` and the expected purchases
in the next ``value_horizon_days`` (:meth:`ValueSegmenter.predict`), from
``x`` = purchase days - 1, ``t_x`` = last - first purchase day, ``T`` = the
evaluation day - the first purchase day (UTC days).

The trainer keeps a deterministic sample of customers
(:class:`~streamseg.engine.clusterfit.Population`, ``value_sample_size``) and
refits the population parameters at most once every ``value_refit_days`` of
event time (the first event past the cadence pays for it: a warm-started fit,
off every other event), once purchases span ``value_warmup_days`` and the
sample holds ``value_min_customers``: **no model exists before that** and the
segmenter abstains. Each fit is a new model version, also carrying the tier
cut values: the expected purchases of the customer at the 90% and 50% rank
share of the sample at the fit time. A customer is ``top10`` when their
expected purchases are strictly above the first cut, ``next40`` above the
second, else ``rest`` (ties share the lower tier).

Customers are *ranked* (tiers, cuts, ``due``, ``hold``) on the expectation with the
idle days within their grace not counted (``value_grace_gaps`` x their own mean gap
between purchase days, the sample's median gap for a one-time buyer:
:func:`~streamseg.engine.valuemodel.ranked`), so a regular shopper's tier does not
decay between two purchases; :meth:`ValueSegmenter.predict` stays today's expectation.

Engine contract:

* ``hold``: promotions (a purchase raises the expectation) are never held; a
  demotion (the clock, a new model, or a same-day purchase that leaves the
  decayed expectation where it was) waits until the expected purchases fall
  to the value at the tier's rank share lowered by ``value_hold_share``
  (a share: 0.05 keeps ``top10`` while the customer is within the top 15% of
  the sample at the fit, ``next40`` within the top 55%). A share, not a
  fraction of the cut value: where every customer's expectation lies close to
  the cut (a population of one-time buyers), a relative margin kept most of
  the population in ``top10``. No demotion while the customer is within their grace
  (a purchase later than their rhythm lowers the ranked expectation), nor until the
  same state was a demotion ``value_idle_dwell_days`` earlier too (the idle dwell: a
  purchase within it that lifts the expectation back above the level ends the
  demotion). A promotion not
  on a purchase day (a new model's, whichever trigger looks first) waits until the
  expectation passes the tier's rank share raised by the share (``ValueModel.ups``); a
  purchase's is never held.
* ``due``: an idle customer's expected purchases only decay with ``T``; the
  exact day they fall to the lower bound of the published tier (the raw cut
  before any tier is published), found by a galloping search over days (from the
  dwell back: the crossing may lie in the past), plus the idle dwell for a demotion,
  and not before the day after the grace.
* ``moved``: at each new model version (refit or adopted snapshot), every
  local customer whose tier at that time differs beyond the margin, or whose
  due day comes earlier, is reported once (array evaluations per version, which
  also guess each tiered customer's new crossing day for the exact search in
  ``due``; one :class:`~streamseg.engine.bgnbd.Scorer` per version remembers the
  costly 2F1 term per (x, T)).
"""

from __future__ import annotations

import math
from itertools import chain
from typing import Any

import numpy as np

from streamseg.config import DAY, Settings
from streamseg.engine import bgnbd, bgnbdfit
from streamseg.engine.buyingdays import buying_day
from streamseg.engine.clusterfit import Population
from streamseg.engine.features import CustomerState
from streamseg.engine.population import WarmUp
from streamseg.engine.segmenters.base import Assignment
from streamseg.engine.segmenters.valuehold import MAX_DAYS, ValueHold
from streamseg.engine.valuemodel import (
    TIERS,
    ValueModel,
    crossings,
    grace_days,
    key_of,
    tier_cuts,
    tier_of,
)

NAMES = {
    "top10": "Top 10% predicted purchases",
    "next40": "Next 40% predicted purchases",
    "rest": "Rest (lower half of predicted purchases)",
}
RANK = {tier: i for i, tier in enumerate(TIERS)}
SANE_AGES = (30.0, 90.0, 365.0)  # days: ages at which an adopted model must reward a purchase


def sane(model: ValueModel, horizon: float) -> bool:
    """Whether a repeat purchase raises the expectation under ``model`` (a fit without the
    sample's ages: a snapshot to adopt, or the model in use when a refit was rejected)."""
    return bgnbd.rewards_purchases(model.params, horizon, SANE_AGES)


class ValueSegmenter(ValueHold):
    """Predicted-value tiers over the published BG/NBD :class:`ValueModel`."""

    name = "value"
    reads_segments = False
    # the BG/NBD inputs move only with purchases (else: time, population)
    reacts_to: frozenset[str] | None = frozenset({"purchase"})

    def __init__(self, settings: Settings) -> None:
        self.horizon = settings.value_horizon_days
        self.refit_s = settings.value_refit_days * DAY
        self.warmup_s = settings.value_warmup_days * DAY
        # day numbers (BG/NBD recency and age, due days, refits) start at the buying-day start
        self.day_s = settings.buying_day_start_s
        self.min_customers = settings.value_min_customers
        self.margin = settings.value_hold_share if settings.hysteresis else 0.0
        self.grace = settings.value_grace_gaps
        # whole days (the due search steps over buying days)
        self.idle_dwell = float(settings.value_idle_dwell_days) if settings.hysteresis else 0.0
        self.rejected = 0  # fits not used: a repeat purchase lowered the expectation
        self.failed = 0  # fits not used: it raised, or the closed form cannot evaluate it
        self.population = Population(settings.value_sample_size)
        # customer -> [(x, t_x, first day), published tier, due day, (due cache key),
        #              guessed crossing day under the current model]
        self.local: dict[str, list[Any]] = {}
        self._moved: dict[str, None] = {}
        # no fit before value_min_customers buyers' first purchases span the warm-up
        self.span = WarmUp(self.warmup_s, self.min_customers)
        self.next_fit = -math.inf
        self.model: ValueModel | None = None
        self._scorer: bgnbd.Scorer | None = None  # the model's scorer (remembers 2F1 terms)
        self.training = True

    @property
    def version(self) -> int | None:
        return None if self.model is None else self.model.version

    # ---- population model -------------------------------------------------------------------

    def learn(self, state: CustomerState, now: float) -> None:
        self._note(state)
        if (self.training and now >= self.next_fit and self.span.warm
                and len(self.population) >= self.min_customers):
            self.next_fit = ((now - self.day_s) // self.refit_s + 1) * self.refit_s + self.day_s
            model = self.refit(now)
            if model is not None:
                self._use(model, now)

    def _note(self, state: CustomerState) -> None:
        fp, lp = state.first_purchase, state.last_purchase
        if fp is None or lp is None or state.withdrawn:
            return
        cid = state.customer_id
        key = key_of(state, self.day_s)
        entry = self.local.get(cid)
        if entry is None:
            cur = state.segments.get(self.name)
            self.local[cid] = [key, None if cur is None else cur[0], None, None, None]
        else:
            entry[0] = key
        if self.training:
            self.population.put(cid, list(key), lp)
        self.span.note(cid, fp, lp)

    def restore(self, state: CustomerState) -> None:
        """Back into the sample after a restart or rebalance (no refit, no verdict)."""
        self._note(state)

    def forget(self, customer_id: str) -> None:
        self.span.forget(customer_id)
        self.local.pop(customer_id, None)
        self.population.drop(customer_id)
        self._moved.pop(customer_id, None)

    def customers(self) -> list[str]:
        """This worker's customers (the trainer's sample is drawn from them)."""
        local = self.local
        return [*local, *(c for c in self.population.rows if c not in local)]

    def refit(self, now: float) -> ValueModel | None:
        """The next model version from the sample at event time ``now`` (None: not used,
        counted in :attr:`rejected` if degenerate, else in :attr:`failed`)."""
        n = len(self.population.rows)
        rows = np.fromiter(chain.from_iterable(r[0] for r in self.population.rows.values()),
                           float, 3 * n)
        x, t_x, first = rows.reshape(n, 3).T
        day = buying_day(now, self.day_s)
        age = np.maximum(day - first, t_x)
        prev = self.model
        try:
            params = bgnbdfit.fit(x, t_x, age, start=None if prev is None else prev.params)
        except (ValueError, FloatingPointError, np.linalg.LinAlgError):
            self.failed += 1  # failed outright: keep the previous model
            return None
        if not all(math.isfinite(v) and v > 0 for v in params) or abs(params.a - 1.0) < 1e-6:
            self.failed += 1
            return None
        repeat = x > 0
        gap = float(np.median(t_x[repeat] / x[repeat])) if repeat.any() else 0.0
        # ranked as :meth:`_predict` ranks: idle days within the grace not counted
        shifted = first + grace_days(x, t_x, self.grace, gap)
        scores = np.sort(bgnbd.expected(params, self.horizon, x, t_x,
                                        np.maximum(day - shifted, t_x)))
        if not np.all(np.isfinite(scores)) or scores[0] < 0.0:
            self.failed += 1  # a fit the closed form cannot evaluate: keep the previous model
            return None
        if not bgnbd.rewards_purchases(params, self.horizon, np.quantile(age, (0.1, 0.5, 0.9))):
            self.rejected += 1  # degenerate (almost no repeat buyers): not used
            if self.model is not None and not sane(self.model, self.horizon):
                self.model = None  # nor a degenerate one adopted before: abstain
            return None
        cuts, holds, ups = tier_cuts(scores, self.margin)
        return ValueModel(1 if prev is None else prev.version + 1, params, cuts, now,
                          len(scores), self.horizon, holds, gap, ups)

    def _use(self, model: ValueModel, now: float) -> None:
        """Score with ``model`` from now on; queue the local customers it may move.

        Vectorised over the local customers: the expectation today, at the day
        before the crossing the engine plans for (its due day less the idle dwell: a
        crossing earlier than planned), and
        each tiered customer's crossing day under ``model``, kept as the guess of
        the next exact search (:meth:`due`: two evaluations when it is right).
        """
        self.model = model
        if not self.local:
            return
        entries = list(self.local.values())
        n = len(entries)
        keys = np.fromiter(chain.from_iterable(e[0] for e in entries), float, 3 * n)
        x, t_x, first = keys.reshape(n, 3).T
        first = first + grace_days(x, t_x, self.grace, model.gap)  # the ranked keys
        day = buying_day(now, self.day_s)
        params, h, cuts = model.params, self.horizon, model.cuts
        scores = bgnbd.expected(params, h, x, t_x, np.maximum(day - first, t_x))
        dwell = self.idle_dwell  # the due day is the crossing day plus the dwell (due)
        probe = np.fromiter((day + MAX_DAYS if e[2] is None else e[2] - dwell - 1
                             for e in entries), float, n)
        later = bgnbd.expected(params, h, x, t_x, np.maximum(probe - first, t_x))
        label = np.fromiter((RANK.get(e[1], -1) for e in entries), np.int64, n)  # -1: none
        raw = np.where(scores > cuts[0], 0, np.where(scores > cuts[1], 1, 2))
        tiered = (label == 0) | (label == 1)  # a published tier with a level below it
        levels = self._levels(model)
        level = np.where(label == 0, levels[0], levels[1])
        keeps = tiered & (raw > label) & (scores > level)
        moved = (label < 0) | ((raw != label) & ~keeps) | (tiered & (later <= level))
        ids = list(self.local)
        for i in np.flatnonzero(moved).tolist():
            self._moved[ids[i]] = None
        # the level due() will search for: the published tier's, or the raw tier's cut
        level = np.where(tiered, level, np.where(raw == 0, cuts[0], cuts[1]))
        near = np.fromiter((math.nan if e[2] is None else e[2] for e in entries), float, n)
        # searched as due() will: a tier's crossing from the dwell back (its due day less
        # the dwell), a first tier's from now (a due day found with no dwell)
        for search, back in ((tiered, dwell), ((label < 0) & (raw < 2), 0.0)):
            days = crossings(params, h, x[search], t_x[search], first[search], day - back,
                             level[search], MAX_DAYS, near[search] - back)
            for i, d in zip(np.flatnonzero(search).tolist(), days.tolist(), strict=True):
                entries[i][4] = None if math.isnan(d) else d

    def moved(self) -> list[str]:
        out = list(self._moved)
        self._moved.clear()
        return out

    # ---- verdicts ---------------------------------------------------------------------------

    def assign(self, state: CustomerState, now: float) -> Assignment | None:
        model = self.model
        pred, rank = self._predict_both(state, now)  # one evaluation when the ages coincide
        if pred is None or rank is None or model is None:
            return None
        p_alive, e = pred
        why = (f"expected purchases in {self.horizon:g} days {e:.3f}, "
               f"p_alive {p_alive:.3f}")
        if rank[1] != e:
            why += f", ranked on {rank[1]:.3f} (idle days within the grace not counted)"
        return Assignment(tier_of(rank[1], model.cuts), why, model_version=model.version)

    def segments(self) -> tuple[str, ...]:
        return TIERS

    def describe(self, segment: str) -> str:
        return NAMES.get(segment, segment)

    # ---- snapshots --------------------------------------------------------------------------

    def adopt(self, snapshot: dict[str, Any]) -> bool:
        """Use a published snapshot if it is newer (and fitted on enough customers)."""
        try:
            model = ValueModel.from_dict(snapshot)
        except (ValueError, KeyError, TypeError):
            return False
        if self.model is not None and model.version <= self.model.version:
            return False
        if model.customers < self.min_customers or model.horizon_days != self.horizon:
            return False
        if not sane(model, self.horizon):
            return False  # degenerate (stored by a version without the check): not used
        self._use(model, model.as_of)
        return True

    def snapshot(self) -> dict[str, Any] | None:
        """The current model as plain data (None before the first fit)."""
        return None if self.model is None else self.model.to_dict()
