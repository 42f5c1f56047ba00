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

from typing import Any

from streamseg.config import DAY, Settings
from streamseg.engine.features import CustomerState
from streamseg.engine.population import BP, Range, Ranking
from streamseg.engine.segmenters.base import Assignment

STEP_S = 1.0  # event-time resolution of clock-driven due times (bands mode)
QUINTILES = (2000, 4000, 6000, 8000)  # score boundaries, in basis points of rank share

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

Cuts = list[float | None]
_NEG = float("-inf")  # the cut value of a share every value meets


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


def _above(value: float, cuts: Cuts, idx: tuple[int, ...]) -> int:
    """1 + how many of the cut values ``cuts[i]`` (i in ``idx``) ``value`` is above."""
    n = 1
    for i in idx:
        c = cuts[i]
        if c is None or value > c:
            n += 1
    return n


class RFMSegmenter:
    """Named RFM segments from exact quintiles of the current customers."""

    name = "rfm"

    def __init__(self, settings: Settings) -> None:
        self.min_customers = settings.rfm_min_samples
        self.warmup_s = settings.rfm_warmup_days * DAY
        self.bands = settings.rfm_bands() if settings.rfm_recency == "bands" else None
        bp = round(settings.rfm_hold_margin * BP)
        self.margin_bp = bp
        self.dwell_s = settings.rfm_hold_days * DAY
        # customer -> (held verdict, since): population/clock moves waiting out the dwell
        self.pending: dict[str, tuple[str, float]] = {}
        self._held: set[str] = set()  # customers whose label the margin keeps (may be stale)
        shares = sorted({q + d for q in QUINTILES for d in (-bp, 0, bp)})
        self._score = tuple(shares.index(q) for q in QUINTILES)
        self._low = tuple(shares.index(q + bp) for q in QUINTILES)  # share - margin
        self._high = tuple(shares.index(q - bp) for q in QUINTILES)  # share + margin
        self.recency = Ranking(shares)
        self.frequency = Ranking(shares)
        self.monetary = Ranking(shares)
        self.values: dict[str, tuple[float, float, float]] = {}
        self.first: float | None = None  # earliest and latest purchase seen (warm-up span)
        self.last: float | None = None
        self.updates = 0  # population changes so far: the local model version
        self.warm = False
        self._moved: dict[str, None] = {}  # an ordered set: replays stay deterministic
        self._training = True
        self.adopted: tuple[int, Cuts, Cuts, Cuts] | None = None  # version, R/F/M cut values
        self._cache: tuple[int | None, list[float], list[float], list[float]] | None = None

    # -- population ----------------------------------------------------------
    def learn(self, state: CustomerState, now: float) -> None:
        """Put the customer's current (last purchase, purchases, spend) into the population."""
        lp = state.last_purchase
        if lp is None or state.withdrawn:
            return
        cid = state.customer_id
        vals = (lp, float(state.purchases), state.monetary)
        old = self.values.get(cid)
        if old == vals:
            return
        self.values[cid] = vals
        self.updates += 1
        self._cache = None
        first = lp if state.first_purchase is None else state.first_purchase
        self.first = first if self.first is None else min(self.first, first)
        self.last = lp if self.last is None else max(self.last, lp)
        moved: list[tuple[Ranking, Range]] = []
        for ranking, v, was in zip(
            (self.recency, self.frequency, self.monetary), vals, old or (None,) * 3, strict=True
        ):
            if v != was:
                moved += [(ranking, span) for span in ranking.set(cid, v)]
        self._note(moved, cid)

    def restore(self, state: CustomerState) -> None:
        """Rebuild after a restart or rebalance: learn a state restored from the table."""
        self.learn(state, state.last_seen)

    def forget(self, customer_id: str) -> None:
        """Drop a customer from the population (erasure, consent withdrawn)."""
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

    def _note(self, moved: list[tuple[Ranking, Range]], cid: str) -> None:
        """Remember the customers whose score the moved cut values crossed."""
        if not self.warm:
            self.warm = self._warm_now()
            if self.warm and self._local():
                self._moved.update(dict.fromkeys(self.values))
            return
        if not self._local():
            return
        held = self._held
        for ranking, (share, lo, hi) in moved:
            if ranking is self.recency and self.bands is not None:
                continue
            if share in QUINTILES:  # a score changed
                for other in ranking.between(lo, hi):
                    if other != cid:
                        self._moved[other] = None
            elif held:  # a margin moved: only a held label can be released by it
                for other in ranking.between(lo, hi):
                    if other in held:
                        self._moved[other] = None

    def _warm_now(self) -> bool:
        return (
            self.first is not None and self.last is not None
            and self.last - self.first >= self.warmup_s and len(self.values) >= self.min_customers
        )

    def moved(self) -> list[str]:
        """Customers whose score may have changed since the last call (drained)."""
        out = list(self._moved)
        self._moved.clear()
        return out

    # -- model versions and snapshots (several workers) -------------------------
    @property
    def training(self) -> bool:
        """Whether this worker scores with its own population (else with the adopted cuts)."""
        return self._training

    @training.setter
    def training(self, value: bool) -> None:
        if value != self._training:
            self._training = value
            self._cache = None
            self._moved.update(dict.fromkeys(self.values))  # the cut values in use change

    def _local(self) -> bool:
        """Whether the scores come from the local population (else from an adopted snapshot)."""
        return self.adopted is None or (self._training and self.warm)

    def ready(self) -> bool:
        """Whether the model in use is warm (adopted snapshots are warm by construction)."""
        return self.warm if self._local() else True

    @property
    def version(self) -> int | None:
        """Model version (population changes summarised); None while warming up."""
        if not self.ready():
            return None
        return self.updates if self._local() or self.adopted is None else self.adopted[0]

    def cuts(self) -> tuple[Cuts, Cuts, Cuts]:
        """Cut values in use for R (last-purchase time), F and M, all watched shares."""
        if self._local() or self.adopted is None:
            return self.recency.cuts(), self.frequency.cuts(), self.monetary.cuts()
        return self.adopted[1], self.adopted[2], self.adopted[3]

    def snapshot(self) -> dict[str, Any] | None:
        """The local cut values as plain data for the models topic (None while warming up)."""
        if not self.warm:
            return None
        r, f, m = self.recency.cuts(), self.frequency.cuts(), self.monetary.cuts()
        return {"segmenter": "rfm", "version": self.updates, "customers": len(self.values),
                "margin_bp": self.margin_bp,
                "cuts": {"recency": r, "frequency": f, "monetary": m}}

    def adopt(self, snapshot: dict[str, Any]) -> bool:
        """Keep a newer published snapshot's cut values (used while this one is not warm)."""
        version = int(snapshot["version"])
        if int(snapshot.get("margin_bp", -1)) != self.margin_bp or "recency" not in snapshot[
            "cuts"
        ]:
            return False  # another margin or an older layout: not comparable
        if self.adopted is not None and version <= self.adopted[0]:
            return False
        was = self.cuts()
        self._cache = None
        c = snapshot["cuts"]
        self.adopted = (version, *(
            [None if x is None else float(x) for x in c[k]]
            for k in ("recency", "frequency", "monetary")
        ))  # type: ignore[assignment]
        self.updates = max(self.updates, version)
        if not self._local():
            now = self.cuts()
            for ranking, old, new in zip((self.recency, self.frequency, self.monetary), was, now,
                                         strict=True):
                for a, z in zip(old, new, strict=True):
                    if a != z:
                        lo = float("-inf") if a is None or z is None else min(a, z)
                        hi = max(x for x in (a, z) if x is not None)
                        self._moved.update(dict.fromkeys(ranking.between(lo, hi)))
        return True

    # -- scores ---------------------------------------------------------------
    def _r(
        self, state: CustomerState, now: float, lp: float, rc: Cuts, idx: tuple[int, ...]
    ) -> int:
        if self.bands is None:
            return _above(lp, rc, idx)
        days = max(0.0, now - lp) / DAY
        return 5 - sum(1 for b in self.bands if days > b)

    def _model(self) -> tuple[int | None, list[float], list[float], list[float]] | None:
        """(version, the four quintile cut values of R, F, M) in use; None while warming up.

        Read once per population change (``_cache``), for the many ``assign`` calls between.
        """
        model = self._cache
        if model is None:
            if not self.ready():
                return None
            r, f, m = ([_NEG if (x := c[i]) is None else x for i in self._score]
                       for c in self.cuts())
            model = self._cache = (self.version, r, f, m)
        return model

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
            days = max(0.0, now - lp) / DAY
            r = 5 - sum(1 for b in self.bands if days > b)
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

        Never for the customer's own purchase (trigger ``event`` at a purchase).
        """
        lp = state.last_purchase
        if lp is None or not self.ready():
            return False
        cid = state.customer_id
        if trigger == "event" and lp == now:
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
        f_lo, f_hi = _above(f, fc, self._low), _above(f, fc, self._high)
        m_lo, m_hi = _above(m, mc, self._low), _above(m, mc, self._high)
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
