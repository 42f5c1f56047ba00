"""RFM: recency, frequency and monetary scores 1-5 from streaming quantiles.

The population model is three sets of River :class:`~river.stats.Quantile`
estimators (the 20th, 40th, 60th and 80th percentiles) updated on every
purchase, in event order:

* recency reference: the customer's typical gap between purchases in days
  (first-time buyers do not contribute), so "how late is this customer,
  compared with how often customers come back";
* frequency: the customer's number of purchases;
* monetary: the customer's total spend in the base currency.

A score is 1 + the number of cut points the value is above (recency is
inverted: fewer days is better). The named segment follows the usual
R x FM grid, with FM the rounded-down mean of F and M. Until
``rfm_min_samples`` purchases have been seen the segmenter abstains.

Like the cluster model, the cut points are snapshotted to the models topic
(:meth:`RFMSegmenter.snapshot`; version = purchases summarised): the worker
that trains publishes them, the others :meth:`RFMSegmenter.adopt` them, so
every worker scores with the same cut points.

Recency falls with the event-time clock alone, so :meth:`RFMSegmenter.due`
gives the next instant a score can drop without a new event.

Examples
--------
>>> from streamseg.config import Settings
>>> seg = RFMSegmenter(Settings(rfm_min_samples=20))
>>> s = CustomerState.new("c", 0.0)
>>> for i in range(1, 101):
...     s.purchases, s.monetary, s.gap_days, s.last_purchase = i, 10.0 * i, float(i), float(i)
...     seg.learn(s, float(i))
>>> seg.cuts()
([20.0, 40.0, 60.0, 80.0], [20.0, 40.0, 60.0, 80.0], [200.0, 400.0, 600.0, 800.0])
>>> s.purchases, s.monetary, s.last_purchase = 90, 900.0, 0.0
>>> seg.scores(s, 3 * DAY)
(5, 5, 5)
>>> seg.assign(s, 3 * DAY)
Assignment(segment='champions', reason='R5 F5 M5', margin=None, model_version=100)
>>> seg.assign(s, 30 * DAY).segment, seg.assign(s, 70 * DAY).segment
('loyal', 'cannot_lose')
>>> seg.due(s, 3 * DAY) == 20 * DAY + 1.0
True
"""

from __future__ import annotations

from typing import Any

from river import stats

from streamseg.config import DAY, Settings
from streamseg.engine.features import CustomerState
from streamseg.engine.segmenters.base import Assignment, Trigger

LEVELS = (0.2, 0.4, 0.6, 0.8)
STEP_S = 1.0  # event-time resolution of clock-driven due times

NAMES = {
    "champions": "Champions (bought recently, buy often, spend the most)",
    "loyal": "Loyal customers",
    "potential_loyalist": "Potential loyalists",
    "new": "New customers (RFM)",
    "promising": "Promising",
    "need_attention": "Need attention",
    "about_to_sleep": "About to sleep",
    "at_risk": "At risk (RFM)",
    "cannot_lose": "Cannot lose them",
    "hibernating": "Hibernating",
    "lost": "Lost",
}


def segment_of(r: int, fm: int) -> str:
    """The named RFM segment of a recency score and a frequency-monetary score.

    >>> [segment_of(r, 1) for r in (1, 2, 3, 4, 5)]
    ['lost', 'hibernating', 'about_to_sleep', 'promising', 'new']
    >>> [segment_of(r, 5) for r in (1, 2, 3, 4, 5)]
    ['cannot_lose', 'cannot_lose', 'loyal', 'loyal', 'champions']
    """
    if r <= 2:
        if fm == 5:
            return "cannot_lose"
        if fm >= 3:
            return "at_risk"
        return "lost" if r == 1 and fm == 1 else "hibernating"
    if r == 3:
        if fm >= 4:
            return "loyal"
        return "need_attention" if fm == 3 else "about_to_sleep"
    if fm >= 4:
        return "champions" if r == 5 else "loyal"
    if fm >= 2:
        return "potential_loyalist"
    return "new" if r == 5 else "promising"


def _score(value: float, cuts: list[float]) -> int:
    return 1 + sum(1 for c in cuts if value > c)


class RFMSegmenter:
    """Named RFM segments from population quintiles learned online (River quantiles)."""

    name = "rfm"

    def __init__(self, settings: Settings) -> None:
        self.min_samples = settings.rfm_min_samples
        self.samples = 0
        self.recency = [stats.Quantile(q) for q in LEVELS]
        self.frequency = [stats.Quantile(q) for q in LEVELS]
        self.monetary = [stats.Quantile(q) for q in LEVELS]
        self.gaps = 0
        self._training = True
        self.local = 0  # purchases learned here (the others came with an adopted snapshot)
        self.adopted: tuple[list[float], list[float], list[float]] | None = None
        # cut points as last read, and the recency cuts sorted (for ``due``); the
        # quantiles only move in ``learn`` and ``adopt``, which drop the cache
        self._cuts: tuple[list[float], list[float], list[float]] | None = None
        self._recency_sorted: list[float] = []

    @property
    def training(self) -> bool:
        """Whether this instance learns (the trainer) or only adopts snapshots."""
        return self._training

    @training.setter
    def training(self, value: bool) -> None:
        self._training = value
        self._cuts = None  # which cut points apply depends on it

    @property
    def version(self) -> int | None:
        """Model version: the number of purchases the cut points summarise (None: not ready)."""
        return self.samples if self.ready() else None

    def learn(self, state: CustomerState, now: float) -> None:
        """Fold a purchase into the quantiles (other events are ignored)."""
        if not self.training or state.last_purchase is None or state.last_purchase != now:
            return
        self.samples += 1
        self.local += 1
        self._cuts = None
        for q in self.frequency:
            q.update(float(state.purchases))
        for q in self.monetary:
            q.update(state.monetary)
        if state.gap_days is not None:
            self.gaps += 1
            for q in self.recency:
                q.update(state.gap_days)

    def cuts(self) -> tuple[list[float], list[float], list[float]]:
        """Current cut points: recency (days), frequency (purchases), monetary."""
        r, f, m = self._current()
        return list(r), list(f), list(m)

    def _current(self) -> tuple[list[float], list[float], list[float]]:
        """The cut points, read once per model change (shared lists: do not mutate)."""
        if self._cuts is not None:
            return self._cuts
        if self.adopted is not None and (not self.training or self.local < self.min_samples):
            r, f, m = self.adopted
            self._cuts = (list(r), list(f), list(m))
        else:

            def get(qs: list[stats.Quantile]) -> list[float]:
                return [float(q.get() or 0.0) for q in qs]

            self._cuts = (get(self.recency), get(self.frequency), get(self.monetary))
        self._recency_sorted = sorted(self._cuts[0])
        return self._cuts

    def snapshot(self) -> dict[str, Any] | None:
        """The cut points as plain data for the models topic (None before warm-up)."""
        if self.version is None:
            return None
        r, f, m = self.cuts()
        return {"segmenter": "rfm", "version": self.samples, "gaps": self.gaps,
                "cuts": {"recency_days": r, "frequency": f, "monetary": m}}

    def adopt(self, snapshot: dict[str, Any]) -> bool:
        """Assign with a newer published snapshot's cut points (local learning restarts)."""
        version = int(snapshot["version"])
        if self.version is not None and version <= self.version:
            return False
        cuts = snapshot["cuts"]
        self.adopted = (
            [float(x) for x in cuts["recency_days"]],
            [float(x) for x in cuts["frequency"]],
            [float(x) for x in cuts["monetary"]],
        )
        self.samples, self.gaps, self.local = version, int(snapshot["gaps"]), 0
        self._cuts = None
        self.recency = [stats.Quantile(q) for q in LEVELS]
        self.frequency = [stats.Quantile(q) for q in LEVELS]
        self.monetary = [stats.Quantile(q) for q in LEVELS]
        return True

    def ready(self) -> bool:
        """Whether enough purchases were seen for the scores to mean anything."""
        return self.samples >= self.min_samples and self.gaps > 0

    def scores(self, state: CustomerState, now: float) -> tuple[int, int, int] | None:
        """(R, F, M) scores of ``state`` at ``now``; None before warm-up or before a purchase."""
        if not self.ready() or state.last_purchase is None:
            return None
        rc, fc, mc = self._current()
        days = max(0.0, now - state.last_purchase) / DAY
        return 6 - _score(days, rc), _score(float(state.purchases), fc), _score(state.monetary, mc)

    def assign(self, state: CustomerState, now: float) -> Assignment | None:
        sc = self.scores(state, now)
        if sc is None:
            return None
        r, f, m = sc
        return Assignment(segment_of(r, (f + m) // 2), f"R{r} F{f} M{m}",
                          model_version=self.version)

    def due(self, state: CustomerState, now: float) -> float | None:
        """The next event time after ``now`` at which the recency score drops, if any."""
        if not self.ready() or state.last_purchase is None:
            return None
        self._current()
        for cut in self._recency_sorted:
            at = state.last_purchase + cut * DAY + STEP_S
            if at > now:
                return at
        return None

    def forget(self, customer_id: str) -> None:
        return None  # stub of the engine contract (the RFM rewrite implements it)

    def moved(self) -> list[str]:
        return []  # stub of the engine contract (the RFM rewrite implements it)

    def hold(
        self, state: CustomerState, current: str, verdict: Assignment, now: float,
        trigger: Trigger,
    ) -> bool:
        return False  # stub of the engine contract (the RFM rewrite implements it)

    def describe(self, segment: str) -> str:
        return NAMES.get(segment, segment)
