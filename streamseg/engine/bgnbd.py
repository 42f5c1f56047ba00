"""BG/NBD ("beta-geometric / negative binomial") purchase model, Fader, Hardie & Lee (2005).

A customer's repeat purchases follow a Poisson process of rate ``lambda``
(Gamma(``r``, ``alpha``) across customers) until the customer drops out, which
happens after each purchase with probability ``p`` (Beta(``a``, ``b``) across
customers). Per customer the model needs three numbers, **in days**:

* ``x``: repeat purchases = purchase *days* - 1 (several orders on one day
  count once, as ``lifetimes.utils.summary_data_from_transaction_data`` with
  ``freq="D"``);
* ``t_x``: days from the first to the last purchase day (recency);
* ``T``: days from the first purchase day to the evaluation day (age).

:func:`streamseg.engine.bgnbdfit.fit` finds ``(r, alpha, a, b)`` by maximum
likelihood (FHL 2005 eq. 6); here a fitted population's :class:`Params` score
customers. :func:`p_alive` (FHL eq. 11 of the note "Computing P(alive)") and
:func:`expected` (eq. 10, with Gauss' 2F1) are vectorised over customers.

Examples
--------
>>> p = Params(r=0.243, alpha=4.414, a=0.793, b=2.426)  # the paper's CDNOW fit (weeks)
>>> round(float(p_alive(p, 2, 30.43, 38.86)), 4)
0.7266
>>> float(p_alive(p, 0, 0.0, 38.86))  # no repeat purchase: never seen to drop out
1.0
>>> round(float(expected(p, 39.0, 2, 30.43, 38.86)), 3)  # the paper: 1.226
1.226
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import hyp2f1

Array = NDArray[np.float64]


class Params(NamedTuple):
    """Population parameters: purchase rates Gamma(r, alpha), dropout Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float


def rewards_purchases(params: Params, t: float, ages: ArrayLike) -> bool:
    """Whether a repeat purchase raises the expected purchases under ``params``.

    Compares, at each age ``T`` of ``ages``, a customer who bought again just now
    (x = 1, t_x = T) with one who never bought again (x = 0): the first must
    expect more purchases in the next ``t`` days. A fit on a population that
    almost never buys twice (a few repeat buyers among thousands) converges to a
    dropout probability near 1 after every purchase (``a`` >> ``b``): there a
    second purchase *lowers* the expectation to about 0 (p_alive 0 right after
    it) while the one-time buyers keep p_alive 1 forever. Such a model cannot
    rank customers by value and is not used.

    >>> rewards_purchases(Params(0.243, 4.414, 0.793, 2.426), 90.0, [30.0, 300.0])  # CDNOW
    True
    >>> rewards_purchases(Params(1.02, 22026.5, 21021.2, 0.0003), 90.0, [30.0, 300.0])
    False
    """
    age = np.asarray(ages, dtype=float)
    again = expected(params, t, np.ones_like(age), age, age)
    never = expected(params, t, np.zeros_like(age), np.zeros_like(age), age)
    with np.errstate(invalid="ignore"):
        return bool(np.all(np.isfinite(again)) and np.all(again > never))


def p_alive(params: Params, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """Probability the customer is still alive at age ``T`` (1 when ``x`` = 0).

    >>> p = Params(1.0, 2.0, 1.0, 3.0)  # x=1: 1 / (1 + 1/3 * ((2+4)/(2+2))^2) = 4/7
    >>> round(float(p_alive(p, 1, 2.0, 4.0)), 6), round(4 / 7, 6)
    (0.571429, 0.571429)
    """
    r, alpha, a, b = params
    xs = np.asarray(x, dtype=float)
    rep = xs > 0
    ratio = (alpha + np.asarray(T, dtype=float)) / (alpha + np.asarray(t_x, dtype=float))
    with np.errstate(over="ignore"):  # odds beyond a float: inf, p_alive 0 (see alive)
        odds = np.where(rep, a / np.where(rep, b + xs - 1, 1.0) * ratio ** (r + xs), 0.0)
    return np.asarray(1.0 / (1.0 + odds), dtype=float)


def expected(params: Params, t: float, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """Expected purchases in the next ``t`` days given (x, t_x, T) (FHL 2005 eq. 10).

    Needs ``a`` != 1 (as the paper's closed form). Non-increasing in ``T``
    for fixed (x, t_x): an idle customer's expectation only decays.
    """
    r, alpha, a, b = params
    xs = np.asarray(x, dtype=float)
    age = np.asarray(T, dtype=float)
    z = t / (alpha + age + t)
    head = (a + b + xs - 1) / (a - 1)
    body = 1.0 - ((alpha + age) / (alpha + age + t)) ** (r + xs) * hyp2f1(
        r + xs, b + xs, a + b + xs - 1, z)
    return np.asarray(head * body * p_alive(params, xs, t_x, age), dtype=float)


def expected_one(params: Params, t: float, x: float, t_x: float, T: float) -> tuple[float, float]:
    """(p_alive, expected purchases in the next ``t`` days) of one customer, in scalar
    arithmetic (the per-event path: no array overhead); equals :func:`p_alive` and
    :func:`expected`.

    >>> p = Params(0.243, 4.414, 0.793, 2.426)
    >>> pa, e = expected_one(p, 39.0, 2, 30.43, 38.86)
    >>> round(pa, 4), round(e, 3)
    (0.7266, 1.226)
    """
    r, alpha, a, b = params
    rx = r + x
    pa = 1.0 if x <= 0 else alive(a / (b + x - 1), (alpha + T) / (alpha + t_x), rx)
    span = alpha + T + t
    body = 1.0 - ((alpha + T) / span) ** rx * float(hyp2f1(rx, b + x, a + b + x - 1, t / span))
    return pa, (a + b + x - 1) / (a - 1) * body * pa


def alive(scale: float, ratio: float, power: float) -> float:
    """``1 / (1 + scale * ratio ** power)``: p_alive of one repeat buyer (``scale`` =
    a / (b + x - 1), ``ratio`` = (alpha + T) / (alpha + t_x) >= 1, ``power`` = r + x).

    A frequent buyer long idle (hundreds of buying days, a decade later) has odds of
    having dropped out beyond a float: p_alive is 0 then (Python's ``**`` raises where
    numpy's only warns; a real 2013 history replayed in 2024 stopped the engine).

    >>> alive(0.25, 2.0, 2.0), alive(0.5 / 301, 4022 / 369, 301.0)
    (0.5, 0.0)
    """
    try:
        odds: float = scale * ratio ** power
        return 1.0 / (1.0 + odds)
    except OverflowError:
        return 0.0


class Scorer:
    """:func:`expected_one` of one model and horizon, remembering the part that reads
    only ``(x, T)`` (the ratio term with Gauss' 2F1, the costly part).

    Customers who share a number of repeat purchases and an age share that part,
    and a due-day search asks for the same days again and again: on CDNOW
    nine in ten evaluations of one model version find it remembered. At most
    ``limit`` entries are kept (forgotten all at once when full). Bit-for-bit
    :func:`expected_one`: the same operations in the same order.

    >>> p = Params(0.243, 4.414, 0.793, 2.426)
    >>> s = Scorer(p, 39.0)
    >>> s(2.0, 30.43, 38.86) == expected_one(p, 39.0, 2.0, 30.43, 38.86)
    True
    >>> s(2.0, 10.0, 38.86) == expected_one(p, 39.0, 2.0, 10.0, 38.86), len(s.memo)
    (True, 1)
    """

    __slots__ = ("limit", "memo", "params", "t")

    def __init__(self, params: Params, t: float, limit: int = 200_000) -> None:
        self.params = params
        self.t = t
        self.memo: dict[tuple[float, float], float] = {}
        self.limit = limit

    def __call__(self, x: float, t_x: float, T: float) -> tuple[float, float]:
        """(p_alive, expected purchases in the next ``t`` days) of one customer."""
        r, alpha, a, b = self.params
        pa = 1.0 if x <= 0 else alive(a / (b + x - 1), (alpha + T) / (alpha + t_x), r + x)
        memo = self.memo
        part = memo.get((x, T))
        if part is None:
            t, rx = self.t, r + x
            span = alpha + T + t
            body = 1.0 - ((alpha + T) / span) ** rx * float(
                hyp2f1(rx, b + x, a + b + x - 1, t / span))
            part = (a + b + x - 1) / (a - 1) * body
            if len(memo) >= self.limit:
                memo.clear()
            memo[(x, T)] = part
        return pa, part * pa
