"""RFM, classic definition: exact quintile scores among the current customers.

The population is every customer with at least one purchase, counted once
with today's values (:class:`~streamseg.engine.population.Ranking`: old value
out, new value in):

* R ranks the last-purchase time (more recent is better);
* F ranks the number of purchases;
* M ranks the total spend in the base currency.

The score of a value among ``n`` customers is ``1 + floor(5 * below / n)``,
``below`` = customers with a strictly worse value: ties share the lowest
score (pandas ``1 + floor(5 * (rank(method="min") - 1) / n)``). The named
segment is :func:`segment_of` ``(R, (F + M) // 2)``. With ``rfm_recency=bands``
R comes from fixed day bands of the time since the last purchase instead
(clock-driven: :meth:`RFMSegmenter.due`).

RFM abstains until the purchases seen span ``rfm_warmup_days`` and there are
``rfm_min_samples`` buyers. Ranks move when *other* customers buy:
:meth:`RFMSegmenter.moved` lists the customers whose score a cut value crossed
(plus, once, everybody at the end of the warm-up), for the engine to re-score
with trigger ``population``. :meth:`RFMSegmenter.hold` damps such
population-driven moves: a published label stays while, in each of R, F and M,
a rank share within ``rfm_hold_margin`` of the customer's would still give it.
A move earned by the customer's own purchase is never held.

The population, its warm-up, model versions and snapshots are
:class:`~streamseg.engine.rfmmodel.RFMModel` (this segmenter's base class).

Examples
--------
>>> from streamseg.config import Settings
>>> seg = RFMSegmenter(Settings(rfm_warmup_days=1, rfm_min_samples=10, rfm_hold_margin=0.1))
>>> def buy(cid, n, spend, day):
...     s = CustomerState.new(cid, 0.0)
...     s.purchases, s.monetary, s.first_purchase, s.last_purchase = n, spend, 0.0, day * DAY
...     seg.learn(s, day * DAY)
...     return s
>>> pop = [buy(f"c{i}", i, 10.0 * i, float(i)) for i in range(1, 11)]
>>> seg.ready(), [seg.assign(s, 20 * DAY).reason for s in pop[::3]]
(True, ['R1 F1 M1', 'R2 F2 M2', 'R4 F4 M4', 'R5 F5 M5'])
>>> len(seg.moved())  # the warm-up just ended: everybody is re-scored once
10
>>> c11 = buy("c11", 11, 110.0, 11.0)  # ranks shift: 8 of 11 below c9 is a share of 0.73
>>> seg.assign(pop[8], 20 * DAY).reason, "c9" in seg.moved()
('R4 F4 M4', True)
>>> seg.hold(pop[8], "champions", seg.assign(pop[8], 20 * DAY), 20 * DAY, "population")
True
"""

from __future__ import annotations

from streamseg.config import DAY, Settings
from streamseg.engine.features import CustomerState
from streamseg.engine.rfmmodel import Cuts, RFMModel, above, recency_band
from streamseg.engine.segmenters.base import Assignment

STEP_S = 1.0  # event-time resolution of clock-driven due times (bands mode)

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


class RFMSegmenter(RFMModel):
    """Named RFM segments from exact quintiles of the current customers."""

    name = "rfm"
    reads_segments = False
    # R, F and M move only with the customer's own purchases (else: time, population)
    reacts_to: frozenset[str] | None = frozenset({"purchase"})

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.dwell_s = settings.rfm_hold_days * DAY
        # customer -> (held verdict, since): population/clock moves waiting out the dwell
        self.pending: dict[str, tuple[str, float]] = {}

    def forget(self, customer_id: str) -> None:
        """Drop a customer from the population (erasure, consent withdrawn)."""
        self.span.forget(customer_id)
        if self.values.pop(customer_id, None) is None:
            return
        self.updates += 1
        self._cache = None
        moved = [(r, span) for r in (self.recency, self.frequency, self.monetary)
                 for span in r.remove(customer_id)]
        self._moved.pop(customer_id, None)
        self.pending.pop(customer_id, None)
        self._held.discard(customer_id)
        self._note(moved, customer_id)

    # -- scores ---------------------------------------------------------------
    def _r(
        self, state: CustomerState, now: float, lp: float, rc: Cuts, idx: tuple[int, ...]
    ) -> int:
        if self.bands is None:
            return above(lp, rc, idx)
        return recency_band(self.bands, now, lp)

    def scores(self, state: CustomerState, now: float) -> tuple[int, int, int] | None:
        """(R, F, M) of ``state`` at ``now``; None while warming up or before a purchase."""
        lp = state.last_purchase
        model = self._model()
        if lp is None or model is None:
            return None
        _v, rc, fc, mc = model
        if self.bands is None:
            r = 1 + (lp > rc[0]) + (lp > rc[1]) + (lp > rc[2]) + (lp > rc[3])
        else:
            r = recency_band(self.bands, now, lp)
        f = float(state.purchases)
        m = state.monetary
        return (r, 1 + (f > fc[0]) + (f > fc[1]) + (f > fc[2]) + (f > fc[3]),
                1 + (m > mc[0]) + (m > mc[1]) + (m > mc[2]) + (m > mc[3]))

    def assign(self, state: CustomerState, now: float) -> Assignment | None:
        sc = self.scores(state, now)
        if sc is None:
            return None
        r, f, m = sc
        return Assignment(segment_of(r, (f + m) // 2), f"R{r} F{f} M{m}",
                          model_version=self._cache[0] if self._cache else None)

    def hold(
        self, state: CustomerState, current: str, verdict: Assignment, now: float, trigger: str
    ) -> bool:
        """Keep ``current`` if a rank share within the margin (each of R, F, M) still gives it.

        Never for the customer's own purchase (trigger ``event`` at a purchase whose
        values this segmenter just learned). Another event at the purchase's instant
        (a click read late is evaluated at the customer's latest look) earns nothing:
        a new verdict then comes from the population (a newer model), and is held.
        """
        lp = state.last_purchase
        if lp is None or not self.ready():
            return False
        cid = state.customer_id
        if trigger == "event" and lp == now and self.learned == cid:
            self.pending.pop(cid, None)
            return False
        if self._within_margin(state, current, now, lp):
            self.pending.pop(cid, None)
            self._held.add(cid)
            return True
        self._held.discard(cid)
        if self.dwell_s <= 0.0:
            return False
        since = self.pending.get(cid)
        if since is None or since[0] != verdict.segment:
            self.pending[cid] = (verdict.segment, now)
            return True
        if now - since[1] < self.dwell_s:
            return True
        del self.pending[cid]
        return False

    def _within_margin(self, state: CustomerState, current: str, now: float, lp: float) -> bool:
        if self.margin_bp == 0:
            return False
        rc, fc, mc = self.cuts()
        f, m = float(state.purchases), state.monetary
        r_lo, r_hi = self._r(state, now, lp, rc, self._low), self._r(state, now, lp, rc, self._high)
        if self.bands is not None:
            r_lo = r_hi = self._r(state, now, lp, rc, self._score)
        f_lo, f_hi = above(f, fc, self._low), above(f, fc, self._high)
        m_lo, m_hi = above(m, mc, self._low), above(m, mc, self._high)
        return any(
            segment_of(r, (fs + ms) // 2) == current
            for r in range(r_lo, r_hi + 1)
            for fs in range(f_lo, f_hi + 1)
            for ms in range(m_lo, m_hi + 1)
        )

    def due(self, state: CustomerState, after: float) -> float | None:
        """The release of a held move, or (bands mode) the next time R drops, after ``after``."""
        lp = state.last_purchase
        if lp is None or (self.bands is None and not self.pending) or not self.ready():
            return None
        best = None
        held = self.pending.get(state.customer_id)
        if held is not None and held[1] + self.dwell_s > after:
            best = held[1] + self.dwell_s
        for band in self.bands or ():
            at = lp + band * DAY + STEP_S
            if at > after:
                return at if best is None else min(at, best)
        return best

    def describe(self, segment: str) -> str:
        return NAMES.get(segment, segment)

    def segments(self) -> tuple[str, ...]:
        return tuple(NAMES)
