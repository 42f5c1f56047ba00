"""The RFM population model: exact quintile cut values of the current customers.

:class:`RFMModel` keeps every current customer's (last purchase, purchases,
spend) in three :class:`~streamseg.engine.population.Ranking` (old value out,
new value in), knows when the warm-up ends, lists the customers whose score a
moved cut value crossed (:meth:`RFMModel.moved`), and carries the model
versions and snapshots several workers share (:meth:`RFMModel.snapshot`,
:meth:`RFMModel.adopt`, :attr:`RFMModel.training`). The rules on top of it
(scores, named segments, hold, due) are
:class:`~streamseg.engine.segmenters.rfm.RFMSegmenter`'s.

Examples
--------
>>> from streamseg.config import Settings
>>> a, b = RFMModel(Settings(rfm_warmup_days=1, rfm_min_samples=3)), RFMModel(Settings())
>>> for i in range(1, 4):
...     s = CustomerState.new(f"c{i}", 0.0)
...     s.purchases, s.monetary, s.first_purchase, s.last_purchase = i, 10.0 * i, 0.0, i * DAY
...     a.learn(s, i * DAY)
>>> a.ready(), a.version, a.snapshot()["cuts"]["frequency"] == a.cuts()[1]
(True, 3, True)
>>> b.ready(), b.adopt(a.snapshot()), b.ready(), b.version, b.cuts() == a.cuts()
(False, True, True, 3, True)
>>> b.adopt(a.snapshot())  # not newer
False
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from streamseg.config import DAY, Settings
from streamseg.engine.features import CustomerState
from streamseg.engine.population import BP, Range, Ranking, WarmUp

QUINTILES = (2000, 4000, 6000, 8000)  # score boundaries, in basis points of rank share

Cuts = list[float | None]
_NEG = float("-inf")  # the cut value of a share every value meets


def above(value: float, cuts: Cuts, idx: tuple[int, ...]) -> int:
    """1 + how many of the cut values ``cuts[i]`` (i in ``idx``) ``value`` is above."""
    n = 1
    for i in idx:
        c = cuts[i]
        if c is None or value > c:
            n += 1
    return n


def recency_band(bands: list[float], now: float, lp: float) -> int:
    """R in bands mode: 5 minus the number of day ``bands`` the time since ``lp`` exceeds.

    >>> [recency_band([14, 30, 90, 180], d * DAY, 0.0) for d in (0, 14, 15, 100, 200)]
    [5, 5, 4, 2, 1]
    """
    days = max(0.0, now - lp) / DAY
    return 5 - sum(1 for b in bands if days > b)


class RFMModel:
    """The RFM population (R, F, M rankings), its warm-up, versions and snapshots."""

    def __init__(self, settings: Settings) -> None:
        self.min_customers = settings.rfm_min_samples
        self.warmup_s = settings.rfm_warmup_days * DAY
        self.bands = settings.rfm_bands() if settings.rfm_recency == "bands" else None
        bp = round(settings.rfm_hold_margin * BP)
        self.margin_bp = bp
        self._held: set[str] = set()  # customers whose label the margin keeps (may be stale)
        # the customer whose own values the last learn() changed (its purchase), else None
        self.learned: str | None = None
        shares = sorted({q + d for q in QUINTILES for d in (-bp, 0, bp)})
        self._score = tuple(shares.index(q) for q in QUINTILES)
        self._low = tuple(shares.index(q + bp) for q in QUINTILES)  # share - margin
        self._high = tuple(shares.index(q - bp) for q in QUINTILES)  # share + margin
        self.recency = Ranking(shares)
        self.frequency = Ranking(shares)
        self.monetary = Ranking(shares)
        self.values: dict[str, tuple[float, float, float]] = {}
        # the warm-up span: from the rfm_min_samples-th earliest first purchase (WarmUp)
        self.span = WarmUp(self.warmup_s, self.min_customers)
        self.updates = 0  # population changes so far: the local model version
        self.rejected = self.failed = 0  # fits not used (Trained): none, no fit (exact cuts)
        self.warm = False
        self._moved: dict[str, None] = {}  # an ordered set: replays stay deterministic
        self._training = True
        self.adopted: tuple[int, Cuts, Cuts, Cuts] | None = None  # version, R/F/M cut values
        self._cache: tuple[int | None, list[float], list[float], list[float]] | None = None

    # -- population ----------------------------------------------------------
    def learn(self, state: CustomerState, now: float) -> None:
        """Put the customer's current (last purchase, purchases, spend) into the population."""
        self.learned = None
        lp = state.last_purchase
        if lp is None or state.withdrawn:
            return
        cid = state.customer_id
        vals = (lp, float(state.purchases), state.monetary)
        old = self.values.get(cid)
        if old == vals:
            return
        self.values[cid] = vals
        self.learned = cid
        self.updates += 1
        self._cache = None
        self.span.note(cid, lp if state.first_purchase is None else state.first_purchase, lp)
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

    def customers(self) -> Iterator[str]:
        """Every customer in the population (each has R, F and M values)."""
        return iter(self.values)

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
        return self.span.warm and len(self.values) >= self.min_customers

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
        was, scored = self.cuts(), self.ready()
        self._cache = None
        c = snapshot["cuts"]
        self.adopted = (version, *(
            [None if x is None else float(x) for x in c[k]]
            for k in ("recency", "frequency", "monetary")
        ))  # type: ignore[assignment]
        self.updates = max(self.updates, version)
        if not scored and self.ready():  # first cut values in use: everybody is scored once
            self._moved.update(dict.fromkeys(self.values))
        elif not self._local():
            now = self.cuts()
            for ranking, old, new in zip((self.recency, self.frequency, self.monetary), was, now,
                                         strict=True):
                for a, z in zip(old, new, strict=True):
                    if a != z:
                        lo = float("-inf") if a is None or z is None else min(a, z)
                        hi = max(x for x in (a, z) if x is not None)
                        self._moved.update(dict.fromkeys(ranking.between(lo, hi)))
        return True

    # -- cut values in use, for scoring --------------------------------------
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
