"""Exact, incremental rank statistics over the current customers (one value each).

:class:`Ranking` keeps one value per customer in a sorted list
(:class:`sortedcontainers.SortedList`, O(log n) insert, remove and index):
setting a customer's value takes the old value out and puts the new one in,
so quantiles are always those of *today's* values, each customer counted once.

Scores are rank shares. Among ``n`` customers, the share of a value ``v`` is
``below / n`` with ``below`` the number of customers whose value is strictly
smaller (ties share the lowest rank, pandas ``rank(method="min") - 1``). A
share threshold ``s`` (in basis points, 1/10,000) is met by ``v`` iff
``10000 * below >= s * n``, iff ``below >= b`` with ``b = ceil(s * n / 10000)``,
iff ``v > sorted[b - 1]``: the *cut value* of ``s``. :meth:`Ranking.cut`
gives it (None when ``b == 0``: every value meets ``s``). So the score
``1 + floor(5 * below / n)`` is ``1 +`` the number of cut values of the shares
2000, 4000, 6000, 8000 that ``v`` is above.

:meth:`Ranking.watch` keeps the cut values of a fixed set of shares up to date
after each change, recomputing only those whose sorted position was touched,
and returns the value ranges whose customers crossed a cut;
:meth:`Ranking.between` lists those customers (the population-driven re-scoring).

Examples
--------
>>> r = Ranking([2000, 4000, 6000, 8000])
>>> for cid, v in [("a", 1.0), ("b", 2.0), ("c", 2.0), ("d", 5.0), ("e", 9.0)]:
...     _ = r.set(cid, v)
>>> len(r), r.below(2.0), r.below(2.5), r.cuts(), r.value_at(0), r.value_at(4)
(5, 1, 3, [1.0, 2.0, 2.0, 5.0], 1.0, 9.0)
>>> [1 + sum(v > c for c in r.cuts()) for v in (1.0, 2.0, 5.0, 9.0)]
[1, 2, 4, 5]
>>> r.set("a", 7.0)  # a moves up: cut values move; the customers in the ranges re-score
[(2000, 1.0, 2.0), (6000, 2.0, 5.0), (8000, 5.0, 7.0)]
>>> r.cuts(), sorted(r.between(1.0, 2.0)), sorted(r.between(5.0, 7.0))
([2.0, 2.0, 5.0, 7.0], ['b', 'c'], ['a'])
>>> r.remove("e"), r.cuts()  # 4 customers: the 80% cut is still the 4th value
([], [2.0, 2.0, 5.0, 7.0])
>>> r.remove("a"), r.cuts()
([(6000, 2.0, 5.0), (8000, 5.0, 7.0)], [2.0, 2.0, 2.0, 5.0])
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence

from sortedcontainers import SortedList

Key = tuple[float, int, str]
Range = tuple[int, float, float]  # (share, lo, hi): a cut of ``share`` moved between lo and hi
BP = 10_000  # shares are in basis points


def cut_index(share_bp: int, n: int) -> int:
    """``ceil(share_bp * n / 10000)``: how many values a value must be above to meet the share.

    >>> cut_index(2000, 5), cut_index(2000, 6), cut_index(0, 6)
    (1, 2, 0)
    """
    return (share_bp * n + BP - 1) // BP


class Ranking:
    """One value per customer, sorted, with the cut values of ``shares`` (basis points)."""

    def __init__(self, shares: Sequence[int]) -> None:
        if any(not 0 <= s < BP for s in shares):
            raise ValueError(f"shares must be in [0, {BP}): {shares}")
        self.shares = list(shares)
        self._sorted: SortedList = SortedList()
        self._value: dict[str, float] = {}
        self._cuts: list[float | None] = [None] * len(self.shares)
        self._ascending = self.shares == sorted(self.shares)
        self._n = -1  # the population size of ``_at``
        self._at: list[int] = []  # per share, its cut position (cut_index) at ``_n`` values

    def __len__(self) -> int:
        return len(self._value)

    def __contains__(self, customer_id: object) -> bool:
        return customer_id in self._value

    def get(self, customer_id: str) -> float | None:
        """The customer's current value (None: not in the population)."""
        return self._value.get(customer_id)

    def customers(self) -> Iterator[str]:
        """Every customer in the population."""
        return iter(self._value)

    def below(self, value: float) -> int:
        """How many customers have a value strictly below ``value``."""
        return int(self._sorted.bisect_left((value,)))

    def cut(self, share_bp: int) -> float | None:
        """The cut value of ``share_bp`` now (None: every value meets it)."""
        b = cut_index(share_bp, len(self._sorted))
        return None if b == 0 else float(self._sorted[b - 1][0])

    def cuts(self) -> list[float | None]:
        """The watched cut values, in the order of ``shares``."""
        return list(self._cuts)

    def value_at(self, i: int) -> float:
        """The ``i``-th smallest value (0-based; ties in customer order)."""
        return float(self._sorted[i][0])

    def set(self, customer_id: str, value: float) -> list[Range]:
        """Give ``customer_id`` the value ``value`` (old value out); return the moved ranges."""
        old = self._value.get(customer_id)
        if old == value:
            return []
        ranked = self._sorted
        n_before = len(ranked)
        lo = hi = None
        if old is not None:
            key: Key = (old, 0, customer_id)
            lo = hi = ranked.bisect_left(key)  # its index: the key is there
            ranked.remove(key)
        key = (value, 0, customer_id)
        j = ranked.bisect_left(key)  # its index once added: keys are unique
        ranked.add(key)
        self._value[customer_id] = value
        lo = j if lo is None else min(lo, j)
        hi = len(self._sorted) - 1 if old is None else max(hi or 0, j)
        return self._rewatch(lo, hi, n_before)

    def remove(self, customer_id: str) -> list[Range]:
        """Drop ``customer_id`` from the population; return the moved ranges."""
        old = self._value.pop(customer_id, None)
        if old is None:
            return []
        n_before = len(self._sorted)
        key: Key = (old, 0, customer_id)
        i = self._sorted.bisect_left(key)
        self._sorted.remove(key)
        return self._rewatch(i, n_before - 1, n_before)

    def _rewatch(self, lo: int, hi: int, n_before: int) -> list[Range]:
        """Recompute the cut values whose position ``[lo, hi]`` touched; the ranges they moved."""
        ranked = self._sorted
        n = len(ranked)
        if n != self._n:  # the cut positions of every share, for this population size
            self._n = n
            self._at = [(share * n + BP - 1) // BP for share in self.shares]  # cut_index
        at = self._at
        if n == n_before and self._ascending:  # only the cuts at positions lo + 1 .. hi + 1
            first, last = bisect_right(at, lo), bisect_right(at, hi + 1)
        else:
            first, last = 0, len(at)
        moved: list[Range] = []
        for i in range(first, last):
            b = at[i]
            share = self.shares[i]
            if not lo < b <= hi + 1 and (n == n_before or b == (share * n_before + BP - 1) // BP):
                continue
            new = None if b == 0 else float(ranked[b - 1][0])
            old = self._cuts[i]
            if new == old:
                continue
            self._cuts[i] = new
            a = float("-inf") if old is None else old
            z = float("-inf") if new is None else new
            moved.append((share, min(a, z), max(a, z)))
        return moved

    def between(self, lo: float, hi: float) -> Iterator[str]:
        """Customers with a value in ``(lo, hi]`` (those a cut moving from lo to hi crossed)."""
        start = 0 if lo == float("-inf") else self._sorted.bisect_left((lo, 1))
        end = self._sorted.bisect_left((hi, 1))
        for _v, _z, cid in self._sorted.islice(start, end):
            yield cid

    def load(self, items: Iterable[tuple[str, float]]) -> None:
        """Replace the population with ``items`` in one go (a rebuild), cut values included."""
        self._value = dict(items)
        self._sorted = SortedList((v, 0, c) for c, v in self._value.items())
        self._cuts = [self.cut(s) for s in self.shares]


class WarmUp:
    """Has the purchase history spanned ``span_s`` for at least ``k`` customers? (latched)

    Warm once ``k`` customers' first purchases lie ``span_s`` or more before the
    newest purchase seen: the ``k``-th earliest first purchase, not the earliest,
    so one stray old purchase (a till whose clock was reset, a test order imported
    from years ago) does not end a population model's warm-up while every other
    buyer bought this morning. Keeps one first-purchase time per customer until
    warm, then nothing.

    >>> w = WarmUp(90.0, 3)
    >>> w.note("old", 0.0, 0.0)  # one purchase 100 days before the others
    False
    >>> [w.note(c, 100.0, 100.0) for c in ("a", "b", "c")]
    [False, False, False]
    >>> w.note("a", 100.0, 189.0)  # 89 days after three customers' first purchases
    False
    >>> w.forget("b"); w.forget("c"); w.note("a", 100.0, 190.0)  # b, c erased: 2 customers
    False
    >>> w.note("b", 100.0, 190.0)  # 3 again, 90 days: warm (the old purchase alone spanned 189)
    True
    """

    def __init__(self, span_s: float, k: int) -> None:
        self.span_s = span_s
        self.k = max(1, k)
        self.warm = False
        self.last: float | None = None
        self._firsts = Ranking(())  # one first purchase per customer, no cut watched

    def forget(self, customer_id: str) -> None:
        """Take a customer out of the count while not warm (erasure, withdrawal, a
        partition gone to another worker): three buyers erased did not leave the span
        reached for three new ones of today. Once warm, nothing is kept or undone."""
        self._firsts.remove(customer_id)

    def note(self, customer_id: str, first: float, last: float) -> bool:
        """Count a customer's first and latest purchase; whether the span is reached."""
        if self.warm:
            return True
        firsts = self._firsts
        firsts.set(customer_id, first)
        if self.last is None or last > self.last:
            self.last = last
        if len(firsts) >= self.k and self.last - firsts.value_at(self.k - 1) >= self.span_s:
            self.warm = True
            self._firsts = Ranking(())
        return self.warm
