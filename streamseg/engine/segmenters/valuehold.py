"""The value segmenter's verdict rules (the base class of its segmenter).

:class:`ValueHold` holds what
:class:`~streamseg.engine.segmenters.value.ValueSegmenter` decides once a model
exists: a customer's expectation today (:meth:`~ValueHold.predict`) and the one
they are ranked on (idle days within their grace not counted,
:func:`~streamseg.engine.valuemodel.ranked`), whether a published tier is held
(:meth:`~ValueHold.hold`: the hold share, the grace, the idle dwell, the promotion
band of a new model) and the day an idle customer's demotion is published: the day
the ranked expectation crosses the published tier's level plus the idle dwell
(:meth:`~ValueHold.due`). The population model (sample, fits,
versions, ``moved``, snapshots) and ``assign`` are the segmenter's
(:mod:`streamseg.engine.segmenters.value`, where the rules are described); its
``__init__`` sets the attributes declared here.
"""

from __future__ import annotations

import math
from typing import Any

from streamseg.config import DAY
from streamseg.engine import bgnbd
from streamseg.engine.buyingdays import buying_day
from streamseg.engine.features import CustomerState
from streamseg.engine.segmenters.base import Assignment
from streamseg.engine.valuemodel import (
    TIERS,
    ValueModel,
    crossing,
    grace_days,
    key_of,
    ranked,
    tier_of,
)

MAX_DAYS = 3650  # a due search looks this many days ahead at most


def _finite(pred: tuple[float, float]) -> tuple[float, float] | None:
    """``pred``, or None outside the precision of the closed form (abstain)."""
    if not math.isfinite(pred[1]) or pred[1] < 0.0:
        return None
    return pred


class ValueHold:
    """Predictions, hold and due rules of the value segmenter, over its current
    :class:`~streamseg.engine.valuemodel.ValueModel`."""

    name: str
    horizon: float  # settings.value_horizon_days
    day_s: float  # settings.buying_day_start_s
    margin: float  # settings.value_hold_share (0 with hysteresis off)
    grace: float  # settings.value_grace_gaps
    idle_dwell: float  # settings.value_idle_dwell_days (0 with hysteresis off)
    model: ValueModel | None
    _scorer: bgnbd.Scorer | None
    # customer -> [(x, t_x, first day), published tier, due day, (due cache key),
    #              guessed crossing day under the current model]
    local: dict[str, list[Any]]

    def predict(self, state: CustomerState, now: float) -> tuple[float, float] | None:
        """(p_alive, expected purchases in the next ``value_horizon_days``) at ``now``;
        None before the first fit or the customer's first purchase."""
        return self._predict(state, now, rank=False)

    def _predict(self, state: CustomerState, now: float, rank: bool = True
                 ) -> tuple[float, float] | None:
        """:meth:`predict`, or with ``rank`` the (p_alive, expected purchases) the
        customer is ranked on: at ``now`` less the idle days within their grace
        (:func:`~streamseg.engine.valuemodel.ranked`)."""
        inputs = self._inputs(state, now)
        if inputs is None:
            return None
        scorer, model, key, day = inputs
        x, t_x, first = ranked(key, self.grace, model.gap) if rank else key
        return _finite(scorer(x, t_x, max(day - first, t_x)))

    def _predict_both(self, state: CustomerState, now: float
                      ) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
        """(:meth:`predict`, the ranked :meth:`_predict`) at ``now``, evaluating BG/NBD once
        when the two ages coincide (on a purchase day, or without a grace): the same
        values, bit for bit, as the two calls."""
        inputs = self._inputs(state, now)
        if inputs is None:
            return None, None
        scorer, model, key, day = inputs
        x, t_x, first = key
        age = max(day - first, t_x)
        rank_age = max(day - ranked(key, self.grace, model.gap)[2], t_x)
        pred = scorer(x, t_x, age)
        return _finite(pred), _finite(pred if rank_age == age else scorer(x, t_x, rank_age))

    def _inputs(self, state: CustomerState, now: float
                ) -> tuple[bgnbd.Scorer, ValueModel, tuple[float, float, float], int] | None:
        """(scorer, model, :func:`~streamseg.engine.valuemodel.key_of`, day of ``now``) of a
        buyer under the current model; None before the first fit or purchase."""
        scorer = self._score()
        model = self.model
        if (scorer is None or model is None or state.first_purchase is None
                or state.last_purchase is None):
            return None
        return scorer, model, key_of(state, self.day_s), buying_day(now, self.day_s)

    def _score(self) -> bgnbd.Scorer | None:
        """The current model's :class:`~streamseg.engine.bgnbd.Scorer` (None: no model)."""
        model, scorer = self.model, self._scorer
        if model is None:
            return None
        if scorer is None or scorer.params is not model.params:
            scorer = self._scorer = bgnbd.Scorer(model.params, self.horizon)
        return scorer

    def _levels(self, model: ValueModel) -> tuple[float, float]:
        """Expected purchases at or below which a published ``top10`` / ``next40`` is left:
        the model's hold levels, or its cuts when this worker holds nothing (hysteresis off)."""
        return (model.level(0), model.level(1)) if self.margin > 0 else model.cuts

    def _level(self, label: str) -> float | None:
        """:meth:`_levels` of the current model for a published ``label`` (None: never left)."""
        model = self.model
        if model is None or label not in TIERS[:2]:
            return None
        return self._levels(model)[TIERS.index(label)]

    def _keeps(self, current: str, verdict: str, score: float, margin: bool = True) -> bool:
        """Whether the margin keeps ``current`` against a lower ``verdict`` (``margin``
        False: whether ``verdict`` is a demotion from ``current``)."""
        if current not in TIERS or TIERS.index(verdict) <= TIERS.index(current):
            return False  # a promotion (or an unknown label) is never held
        if not margin:
            return True
        level = self._level(current)
        return level is not None and score > level

    def _resting(self, state: CustomerState, now: float) -> bool:
        """Whether the customer is within their grace: idle (whole days since the last
        purchase) no longer than :func:`~streamseg.engine.valuemodel.grace_days` (> 0)."""
        model = self.model
        if model is None or state.last_purchase is None:
            return False
        x, t_x, first = key_of(state, self.day_s)
        grace = float(grace_days(x, t_x, self.grace, model.gap))
        return grace > 0 and buying_day(now, self.day_s) - (first + t_x) <= grace

    def hold(self, state: CustomerState, current: str, verdict: Assignment, now: float,
             trigger: str) -> bool:
        """Keep ``current`` against a demotion while within the margin of its cut or
        within the customer's grace; against a promotion until above the tier's ``up``
        level, unless the customer bought on the day evaluated (a purchase's promotion
        is never held). A rule on the state, not on ``trigger``: a promotion a new model
        brought (held at its trigger ``population``) is held alike at a later ``clock``
        evaluation, whichever evaluation looks first."""
        pred = self._predict(state, now)
        model = self.model
        if (pred is not None and model is not None
                and current in TIERS and verdict.segment in TIERS[:2]
                and TIERS.index(verdict.segment) < TIERS.index(current)):
            if self._bought(state, now):
                return False  # the purchase raised the expectation: published at once
            return pred[1] <= model.up(TIERS.index(verdict.segment))  # the model moved
        if pred is None or not self._keeps(current, verdict.segment, pred[1], margin=False):
            return False  # not a demotion (or no model)
        return (self._resting(state, now) or self._keeps(current, verdict.segment, pred[1])
                or self._dwelling(state, current, now))

    def _dwelling(self, state: CustomerState, current: str, now: float) -> bool:
        """Whether a demotion from ``current`` has been due for less than the idle dwell:
        the ranked expectation ``idle_dwell`` days before ``now`` (the state as it is:
        the same purchases) was still above the level of ``current``. A purchase within
        the dwell that lifts the expectation back above the level ends the demotion; one
        that comes late for the customer's rhythm can lower it (the grace then holds them).
        An idle customer is demoted ``idle_dwell`` days after the crossing (:meth:`due`),
        whatever evaluates them (clock, new model)."""
        if self.idle_dwell <= 0.0:
            return False
        level = self._level(current)
        then = self._predict(state, now - self.idle_dwell * DAY)
        return level is not None and then is not None and then[1] > level

    def _dwell_for(self, label: str | None) -> float:
        """The idle dwell a due day for published ``label`` includes: a demotion's (from a
        tier with one below it); none before a first tier or from the lowest."""
        return self.idle_dwell if label in TIERS[:2] else 0.0

    def _bought(self, state: CustomerState, now: float) -> bool:
        """Whether the customer's last purchase is on the (buying) day of ``now``."""
        lp = state.last_purchase
        return lp is not None and buying_day(lp, self.day_s) == buying_day(now, self.day_s)

    def due(self, state: CustomerState, after: float) -> float | None:
        model = self.model
        if model is None or state.first_purchase is None or state.last_purchase is None:
            return None
        cur = state.segments.get(self.name)
        label = None if cur is None else str(cur[0])
        level = None
        if label is not None:
            level = self._level(label)
        else:
            pred = self._predict(state, after)
            if pred is not None:
                raw = tier_of(pred[1], model.cuts)
                level = model.cuts[TIERS.index(raw)] if raw in TIERS[:2] else None
        d = None
        entry = self.local.get(state.customer_id)
        if level is not None:
            key = ranked(key_of(state, self.day_s), self.grace, model.gap)
            # a demotion waits out the idle dwell after the crossing, which may lie up to
            # the dwell in the past (a new model, a hold by the dwell)
            dwell = self._dwell_for(label)
            sig = (key, level, model.version, dwell)
            today = buying_day(after, self.day_s)
            if entry is not None and entry[3] == sig and (entry[2] is None or entry[2] > today):
                d = entry[2]  # the same customer, tier and model: the same crossing day
            else:
                scorer = self._score()
                assert scorer is not None
                # the crossing behind the due day found before (for label entry[1]: less
                # its dwell), unless a new model's pass guessed one (entry[4])
                guess = None if entry is None else (
                    (None if entry[2] is None else entry[2] - self._dwell_for(entry[1]))
                    if entry[4] is None else entry[4])
                d = crossing(scorer, key, today - dwell, level, MAX_DAYS, guess=guess)
                if d is not None:
                    d += dwell
                if entry is not None:
                    entry[3], entry[4] = sig, None
            if d is not None and label in TIERS[:2]:  # no demotion within the grace
                d = max(d, key[2] + key[1] + 1.0)  # the ranked first day: first + grace
        if entry is not None:
            entry[1], entry[2] = label, d
        return None if d is None else d * DAY + self.day_s
