"""The predicted-value model snapshot (BG/NBD parameters + tier cut values) and its helpers.

Examples
--------
>>> m = ValueModel(3, bgnbd.Params(0.5, 10.0, 0.8, 2.5), (2.0, 0.5), 86400.0, 120, 90.0,
...                holds=(1.5, 0.4))
>>> ValueModel.from_dict(m.to_dict()) == m, m.level(0)
(True, 1.5)
>>> bare = ValueModel(3, m.params, (2.0, 0.5), 86400.0, 120, 90.0)  # no margin: the cuts
>>> bare.level(0), ValueModel.from_dict(bare.to_dict()).level(0)
(2.0, 2.0)
>>> older = {k: v for k, v in bare.to_dict().items() if k != "holds"}  # before 2026-11-27
>>> ValueModel.from_dict(older).level(0)  # held as its version did: 10% below the cut
1.8
>>> [tier_of(v, m.cuts) for v in (2.5, 2.0, 0.6, 0.5)]
['top10', 'next40', 'next40', 'rest']
>>> from streamseg.config import DAY
>>> s = CustomerState.new("c", 0.0)
>>> s.purchases, s.purchase_days = 4, 3
>>> s.first_purchase, s.last_purchase = 10 * DAY + 5, 40 * DAY + 7
>>> key_of(s), key_of(s, day_s=6 * 3600.0)  # days from 06:00 UTC: both times on the day before
((2.0, 30.0, 10.0), (2.0, 30.0, 9.0))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamseg.engine import bgnbd
from streamseg.engine.buyingdays import buying_day, buying_days
from streamseg.engine.features import CustomerState

TIERS = ("top10", "next40", "rest")  # best first; the cut values start the first two
NEAR = 16.0  # crossings(): half-width of the bracket tried around a nearby day
OLD_HOLD = 0.9  # snapshots before 2026-11-27 held a tier down to 90% of its cut (default)


@dataclass(frozen=True, slots=True)
class ValueModel:
    """One fitted model version: parameters (days), cuts, fit time (event time), sample size."""

    version: int
    params: bgnbd.Params
    cuts: tuple[float, float]  # top10: expected purchases > cuts[0]; next40: > cuts[1]
    as_of: float
    customers: int
    horizon_days: float
    # a published top10 / next40 is kept (a demotion held) while the expected purchases
    # are above these: the values at the rank shares 90% and 50% lowered by the hold
    # margin (None: the cuts themselves, no margin)
    holds: tuple[float, float] | None = None
    # the sample's median days between purchase days (repeat buyers: t_x / x), the rhythm
    # a one-time buyer's grace counts in; None: ranked without grace (a snapshot before
    # 2026-11-27, whose cuts were taken on the expectation now)
    gap: float | None = None
    # a promotion into top10 / next40 by a new model version (trigger population, not the
    # customer's purchase) waits until the expected purchases are above these: the values
    # at the rank shares raised by the hold margin (None: the cuts, no band)
    ups: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "segmenter": "value", "version": self.version,
            "params": self.params._asdict(),
            "cuts": {"top10": self.cuts[0], "next40": self.cuts[1]},
            "as_of": self.as_of, "customers": self.customers, "horizon_days": self.horizon_days,
        }
        holds = self.cuts if self.holds is None else self.holds  # always written: a snapshot
        out["holds"] = {"top10": holds[0], "next40": holds[1]}  # without is an older version's
        if self.gap is not None:
            out["gap"] = self.gap
        if self.ups is not None:
            out["ups"] = {"top10": self.ups[0], "next40": self.ups[1]}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValueModel:
        p, c, h = data["params"], data["cuts"], data.get("holds")
        if h is None:  # a snapshot of a version before the rank-share margin: its 10% hold
            h = {"top10": float(c["top10"]) * OLD_HOLD, "next40": float(c["next40"]) * OLD_HOLD}
        return cls(
            int(data["version"]),
            bgnbd.Params(float(p["r"]), float(p["alpha"]), float(p["a"]), float(p["b"])),
            (float(c["top10"]), float(c["next40"])), float(data["as_of"]),
            int(data["customers"]), float(data["horizon_days"]),
            (float(h["top10"]), float(h["next40"])),
            None if data.get("gap") is None else float(data["gap"]),
            None if (u := data.get("ups")) is None else (float(u["top10"]), float(u["next40"])),
        )

    def level(self, tier: int) -> float:
        """The expected purchases at or below which a published tier ``tier`` (0: top10,
        1: next40) is left."""
        return (self.cuts if self.holds is None else self.holds)[tier]

    def up(self, tier: int) -> float:
        """The expected purchases a new model version's promotion into tier ``tier``
        (0: top10, 1: next40) must be above."""
        return (self.cuts if self.ups is None else self.ups)[tier]


def tier_cuts(scores: NDArray[np.float64], margin: float
              ) -> tuple[tuple[float, float], tuple[float, float] | None,
                         tuple[float, float] | None]:
    """The cut values (rank shares 90% and 50%) of the sorted ``scores`` of the fit's
    sample, the hold levels (the same shares lowered by ``margin``; None: 0) and the
    levels a population-driven promotion must clear (the shares raised by ``margin``).

    A customer is in a tier when strictly above its cut, so at the fit at most 10% of
    the sample is ``top10``, and the margin keeps a published ``top10`` at most within
    the top ``10% + margin`` however close together the scores lie:

    >>> flat = np.sort(np.linspace(0.0028, 0.0047, 1000))  # every buyer near the cut
    >>> cuts, holds, ups = tier_cuts(flat, 0.05)
    >>> [float(np.mean(flat > c)) for c in (*cuts, *holds, *ups)]
    [0.1, 0.5, 0.15, 0.55, 0.05, 0.45]
    >>> tier_cuts(flat, 0.0)[1:]
    (None, None)
    """
    n = len(scores)

    def at(share: float) -> float:  # the value a customer must beat to pass ``share``
        return float(scores[max(math.ceil(share * n) - 1, 0)])

    cuts = (at(0.9), at(0.5))
    if margin <= 0:
        return cuts, None, None
    ups = (at(round(0.9 + margin, 12)), at(round(0.5 + margin, 12)))  # 0.95, not 0.95000001
    return cuts, (at(0.9 - margin), at(0.5 - margin)), ups


def key_of(state: CustomerState, day_s: float = 0.0) -> tuple[float, float, float]:
    """(x, t_x, first purchase day) of a buyer: day numbers (days starting ``day_s``
    seconds after UTC midnight, ``STREAMSEG_BUYING_DAY_START_H``), repeat buying *days*.

    States written before ``purchase_days`` existed count orders instead.
    """
    fp, lp = state.first_purchase, state.last_purchase
    assert fp is not None and lp is not None
    first = buying_day(fp, day_s)
    return (float(max(buying_days(state) - 1, 0)), float(buying_day(lp, day_s) - first),
            float(first))


def grace_days(x: Any, t_x: Any, gaps: float, gap: float | None) -> Any:
    """Idle days a customer's rank does not count (scalars or arrays): ``gaps`` times
    their own mean gap between purchase days (``t_x / x``), the population's ``gap``
    for a one-time buyer (x = 0), in whole days (rounded up); 0 without a ``gap``.

    >>> grace_days(3.0, 21.0, 1.5, 10.0), grace_days(0.0, 0.0, 1.5, 10.0)
    (11.0, 15.0)
    >>> grace_days(np.array([3.0, 0.0]), np.array([21.0, 0.0]), 1.5, None).tolist()
    [0.0, 0.0]
    """
    if not isinstance(x, np.ndarray):  # a scalar: plain floats, the same arithmetic
        if gap is None or gaps <= 0.0:
            return 0.0
        days = gaps * (t_x / max(x, 1.0) if x > 0 else gap)
        return float(math.ceil(days)) if math.isfinite(days) else days
    if gap is None or gaps <= 0.0:
        return np.zeros_like(x)
    return np.ceil(gaps * np.where(x > 0, t_x / np.maximum(x, 1.0), gap))


def ranked(key: tuple[float, float, float], gaps: float, gap: float | None
           ) -> tuple[float, float, float]:
    """The key a customer is *ranked* on: the first purchase day moved on by
    :func:`grace_days`, so that the expectation's age ``T`` only counts idle days beyond
    the grace (right after the last purchase while within it).

    >>> ranked((3.0, 21.0, 100.0), 1.5, 10.0), ranked((3.0, 21.0, 100.0), 1.5, None)
    ((3.0, 21.0, 111.0), (3.0, 21.0, 100.0))
    """
    x, t_x, first = key
    return x, t_x, first + grace_days(x, t_x, gaps, gap)


def tier_of(score: float, cuts: tuple[float, float]) -> str:
    """The tier of expected purchases ``score`` (strictly above a cut to be in its tier)."""
    if score > cuts[0]:
        return TIERS[0]
    return TIERS[1] if score > cuts[1] else TIERS[2]


def crossing(score: bgnbd.Scorer, key: tuple[float, float, float],
             from_day: float, level: float, max_days: int,
             guess: float | None = None) -> float | None:
    """The first day after ``from_day`` on which the expected purchases (``score``: a
    model's :class:`~streamseg.engine.bgnbd.Scorer`) are <= ``level``.

    Galloping then bisection over days (the expectation is non-increasing in
    ``T``, so the day found does not depend on where the search starts); None if
    not within ``max_days``. ``guess`` (e.g. the customer's previous crossing
    day) is probed first and the search gallops away from it, down or up: a
    crossing that moved a few days costs a few evaluations.

    >>> p = bgnbd.Params(0.5, 10.0, 0.8, 2.5)
    >>> key = (3.0, 20.0, 0.0)
    >>> d = crossing(bgnbd.Scorer(p, 90.0), key, 20.0, 1.0, 3650)
    >>> def e(day): return bgnbd.expected_one(p, 90.0, 3.0, 20.0, day)[1]
    >>> d, e(d - 1) > 1.0 >= e(d)
    (55.0, True)
    >>> s = bgnbd.Scorer(p, 90.0)
    >>> [crossing(s, key, 20.0, 1.0, 3650, guess=g) for g in (21.0, 50.0, 55.0, 300.0)]
    [55.0, 55.0, 55.0, 55.0]
    """
    x, t_x, first = key

    def expected(day: float) -> float:
        return score(x, t_x, max(day - first, t_x))[1]

    lo, step, hi = from_day, 1.0, from_day + 1.0
    down = False  # whether the crossing lies at or before the guess
    if guess is not None and guess.is_integer() and from_day + 1.0 < guess < from_day + max_days:
        down = expected(guess) <= level
        lo, hi = (from_day, guess) if down else (guess, guess + 1.0)
    while down and lo < hi - step:  # gallop down from the guess
        if expected(hi - step) > level:
            lo = hi - step
            break
        hi, step = hi - step, step * 2.0
    while not down and expected(hi) > level:  # gallop up (from the guess, or from from_day)
        if hi - from_day >= max_days:
            return None
        lo, step = hi, step * 2.0
        hi = min(lo + step, from_day + float(max_days))
    while hi - lo > 1.0:
        mid = (lo + hi) // 2.0
        if expected(mid) <= level:
            hi = mid
        else:
            lo = mid
    return hi


def crossings(params: bgnbd.Params, horizon: float, x: NDArray[np.float64],
              t_x: NDArray[np.float64], first: NDArray[np.float64], from_day: float,
              level: NDArray[np.float64], max_days: int,
              near: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """:func:`crossing` of many customers at once, by bisection over days (NaN: none
    within ``max_days``), in array arithmetic; ``near`` (NaN: unknown) are days the
    crossings are probably close to (e.g. under the previous model): where a crossing
    lies within ``NEAR`` days of it the bisection starts from that bracket.

    Array and scalar arithmetic may differ in the last bit, so a customer whose
    expectation equals a level to the last bit may be a day off: the result is a
    *guess* for :func:`crossing`, which checks it exactly (two evaluations when it
    is right).

    >>> p = bgnbd.Params(0.5, 10.0, 0.8, 2.5)
    >>> x, t_x, first = np.array([3.0, 3.0, 0.0]), np.array([20.0, 20.0, 0.0]), np.zeros(3)
    >>> levels = [1.0, 0.0, 0.5]
    >>> crossings(p, 90.0, x, t_x, first, 20.0, np.array(levels), 3650).tolist()
    [55.0, nan, 66.0]
    >>> near = np.array([60.0, np.nan, 300.0])  # one right bracket, one wrong
    >>> crossings(p, 90.0, x, t_x, first, 20.0, np.array(levels), 3650, near).tolist()
    [55.0, nan, 66.0]
    >>> s = bgnbd.Scorer(p, 90.0)
    >>> [crossing(s, k, 20.0, v, 3650) for k, v in zip([(3.0, 20.0, 0.0)] * 2
    ...                                                + [(0.0, 0.0, 0.0)], levels)]
    [55.0, None, 66.0]
    """
    def expected(at: NDArray[np.intp], day: NDArray[np.float64]) -> NDArray[np.float64]:
        with np.errstate(over="ignore"):  # p_alive's odds -> inf far ahead: p_alive 0
            return bgnbd.expected(params, horizon, x[at], t_x[at],
                                  np.maximum(day - first[at], t_x[at]))

    lo = np.full(len(x), float(from_day))
    hi = lo + float(max_days)
    found = np.zeros(len(x), dtype=bool)
    wide = np.arange(len(x))
    if near is not None:  # bracket [near - NEAR, near + NEAR] first, where it holds
        ok = np.isfinite(near) & (near - NEAR > from_day) & (near + NEAR < hi)
        at = np.flatnonzero(ok)
        a, b = near[at] - NEAR, near[at] + NEAR
        held = (expected(at, a) > level[at]) & (expected(at, b) <= level[at])
        lo[at[held]], hi[at[held]], found[at[held]] = a[held], b[held], True
        wide = np.flatnonzero(~found)
    found[wide] = expected(wide, hi[wide]) <= level[wide]
    while True:
        at = np.flatnonzero(found & (hi - lo > 1.0))
        if not at.size:
            break
        mid = (lo[at] + hi[at]) // 2.0
        below = expected(at, mid) <= level[at]
        hi[at[below]] = mid[below]
        lo[at[~below]] = mid[~below]
    return np.where(found, hi, np.nan)
