"""The BG/NBD model fitted: maximum likelihood of ``(r, alpha, a, b)`` over a population.

:func:`fit` finds the :class:`~streamseg.engine.bgnbd.Params` of a population's
``(x, t_x, T)`` rows (in days; :mod:`streamseg.engine.bgnbd` says what they are) by
maximum likelihood (FHL 2005 eq. 6, :func:`loglik`; no hypergeometric function needed)
with ``scipy.optimize.minimize`` on the log parameters from a few starts (penalizer 0:
the plain ML estimate); identical rows are folded first. The value segmenter refits
with it (:mod:`streamseg.engine.segmenters.value`), then scores customers with
:mod:`streamseg.engine.bgnbd`. :func:`simulate` draws a population from the model
(tests, docs).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import gammaln

from streamseg.engine.bgnbd import Array, Params

STARTS = ((0.0, 0.0, 0.0, 0.0), (-1.0, 1.0, -0.5, 0.5), (0.5, 2.0, 0.5, 1.5))  # log params
# every parameter stays within [e^-8, e^10]: a small population with no visible dropout has
# its ML estimate on the boundary (a -> 0 or a, b -> inf), where eq. 10 loses all precision
LOG_BOUNDS = (-8.0, 10.0)


def loglik(params: Params, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """Per-customer log-likelihood of (x, t_x, T) under ``params`` (FHL 2005 eq. 6).

    By hand, with every parameter 1: x=0, T=1 gives 1/2; x=1, t_x=1, T=2 gives
    B(1,2)/B(1,1) / 3^2 + B(2,1)/B(1,1) / 2^2 = 1/18 + 1/8:

    >>> p = Params(1.0, 1.0, 1.0, 1.0)
    >>> [round(float(v), 6) for v in loglik(p, [0, 1], [0.0, 1.0], [1.0, 2.0])]
    [-0.693147, -1.711717]
    >>> import math; round(math.log(1 / 18 + 1 / 8), 6)
    -1.711717
    """
    r, alpha, a, b = params
    xs = np.asarray(x, dtype=float)
    tx = np.asarray(t_x, dtype=float)
    age = np.asarray(T, dtype=float)
    a1 = gammaln(r + xs) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + xs) - gammaln(b) - gammaln(a + b + xs)
    a3 = -(r + xs) * np.log(alpha + age)
    rep = xs > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(rep, np.log(a) - np.log(np.where(rep, b + xs - 1, 1.0))
                      - (r + xs) * np.log(alpha + tx), -np.inf)
    return np.asarray(a1 + a2 + np.logaddexp(a3, a4), dtype=float)


def _distinct(rows: Array) -> tuple[Array, NDArray[np.intp]]:
    """``np.unique(rows, axis=0, return_counts=True)`` (rows in the same lexicographic
    order) by one ``lexsort`` of the columns: about ten times faster than the
    structured-row sort ``np.unique`` does.

    >>> rows = np.array([[2.0, 1.0, 5.0], [0.0, 0.0, 3.0], [2.0, 1.0, 5.0], [2.0, 0.5, 9.0]])
    >>> uniq, counts = _distinct(rows)
    >>> ref, ref_counts = np.unique(rows, axis=0, return_counts=True)
    >>> bool(np.array_equal(uniq, ref)), counts.tolist() == ref_counts.tolist()
    (True, True)
    """
    srt = rows[np.lexsort(rows.T[::-1])]
    first = np.ones(len(srt), dtype=bool)
    first[1:] = np.any(srt[1:] != srt[:-1], axis=1)
    starts = np.flatnonzero(first)
    return srt[first], np.diff(np.append(starts, len(srt)))


class _Folded:
    """:func:`loglik` over fixed rows, each term computed once per distinct value it reads.

    The gamma-function terms depend on ``x`` only and the logarithms on ``t_x`` or
    ``T`` only, and a population has far fewer distinct values of each than rows
    (CDNOW's 20,000-customer sample: 9,483 distinct rows, 56 values of ``x``), so
    they are computed per distinct value and gathered: the same floating-point
    operations on the same operands as :func:`loglik`, so bit-for-bit its result.

    >>> p = Params(0.6, 8.0, 0.7, 2.8)
    >>> x, t_x, T = [0.0, 2.0, 2.0, 5.0], [0.0, 9.0, 30.0, 9.0], [40.0, 40.0, 41.0, 41.0]
    >>> bool(np.array_equal(_Folded(x, t_x, T).loglik(p), loglik(p, x, t_x, T)))
    True
    """

    def __init__(self, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> None:
        xs = np.asarray(x, dtype=float)
        self.xv, self.ix = np.unique(xs, return_inverse=True)
        self.txv, self.itx = np.unique(np.asarray(t_x, dtype=float), return_inverse=True)
        self.tv, self.it = np.unique(np.asarray(T, dtype=float), return_inverse=True)
        self.xs = xs
        self.rep = xs > 0

    def loglik(self, params: Params) -> Array:
        r, alpha, a, b = params
        xv, ix = self.xv, self.ix
        a1 = gammaln(r + xv) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + xv) - gammaln(b) - gammaln(a + b + xv)
        head = (a1 + a2)[ix]
        rx = r + self.xs
        a3 = -rx * np.log(alpha + self.tv)[self.it]
        with np.errstate(divide="ignore", invalid="ignore"):
            drop = (np.log(a) - np.log(np.where(xv > 0, b + xv - 1, 1.0)))[ix]
            a4 = np.where(self.rep, drop - rx * np.log(alpha + self.txv)[self.itx], -np.inf)
        return np.asarray(head + np.logaddexp(a3, a4), dtype=float)


def fit(x: ArrayLike, t_x: ArrayLike, T: ArrayLike, penalizer: float = 0.0,
        start: Params | None = None) -> Params:
    """Maximum-likelihood ``(r, alpha, a, b)`` of a population (days).

    Identical (x, t_x, T) rows are folded into weights first; the mean
    negative log-likelihood (plus ``penalizer`` * sum of squared parameters, as
    ``lifetimes``) is minimised over the log parameters with Nelder-Mead from
    :data:`STARTS` within :data:`LOG_BOUNDS` (or from ``start`` only: the previous
    fit, for a refit of a population that moved a little: no more), the best of a
    cold fit polished
    with BFGS (central differences: the likelihood has a flat ridge along ``a``,
    ``b`` when the dropout probability is small, which forward differences stop
    short on).

    >>> rng = np.random.default_rng(7)
    >>> x, t_x, T = simulate(Params(0.5, 10.0, 0.8, 2.5), 1000, 120.0, rng)
    >>> [round(v, 2) for v in fit(x, t_x, T)]
    [0.57, 12.24, 0.8, 2.56]
    """
    uniq, weights = _distinct(np.column_stack([np.asarray(v, dtype=float) for v in (x, t_x, T)]))
    w = weights / weights.sum()
    folded = _Folded(uniq[:, 0], uniq[:, 1], uniq[:, 2])

    def nll(logp: Array) -> float:
        p = np.exp(np.clip(logp, *LOG_BOUNDS))
        ll = folded.loglik(Params(*p))
        value = -float(np.dot(w, ll)) + penalizer * float(np.sum(p**2))
        return value if np.isfinite(value) else 1e300

    # a warm start within the bounds (a snapshot fitted elsewhere may lie outside them)
    starts = STARTS if start is None else (
        tuple(np.clip(np.log(np.array(start, dtype=float)), *LOG_BOUNDS)),)
    # a refit stops at 1e-5 in the log parameters (relative 1e-5: far inside any use of
    # them, and about a third fewer likelihood evaluations than the cold fit's 1e-7)
    tol = {"xatol": 1e-7, "fatol": 1e-12} if start is None else {"xatol": 1e-5, "fatol": 1e-10}
    best = None
    for init in starts:
        res = minimize(nll, np.array(init), method="Nelder-Mead", bounds=[LOG_BOUNDS] * 4,
                       options={**tol, "maxiter": 8000, "maxfev": 8000})
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    if start is not None:  # a refit: Nelder-Mead from the previous optimum is enough
        return Params(*(float(v) for v in np.exp(best.x)))
    polish = minimize(nll, best.x, method="BFGS", jac="3-point", options={"gtol": 1e-10})
    final = np.clip(polish.x if polish.fun <= best.fun else best.x, *LOG_BOUNDS)
    return Params(*(float(v) for v in np.exp(final)))


def simulate(params: Params, n: int, T: float, rng: np.random.Generator
             ) -> tuple[Array, Array, Array]:
    """``n`` customers drawn from the model, all observed for ``T`` days (tests, docs).

    Each draws lambda ~ Gamma(r, 1/alpha), p ~ Beta(a, b); after each purchase
    (the first at time 0) the customer drops out with probability p.
    """
    r, alpha, a, b = params
    lam = rng.gamma(r, 1.0 / alpha, n)
    drop = rng.beta(a, b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1.0 / lam[i])
            if t > T:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < drop[i]:
                break
    return x, t_x, np.full(n, T)
