"""Compile an audience's condition (already schema-checked JSON) into two closures.

A compiled :class:`~streamseg.engine.audienceconditions.Rule` has

* ``test(state, now) -> bool``: the condition at event time ``now``;
* ``nxt(state, after) -> float | None``: the earliest event time > ``after`` at
  which the verdict of an idle customer *may* change: a ``days_since_*``
  threshold reached, a decayed feature falling through its threshold, a
  trailing-window bucket leaving its window, a referenced segmenter's own due
  time. It is exact: between two such times with no event nothing it reads moves.

The grammar (``streamseg/schemas/audiences.schema.json``, docs/AUDIENCES.md)::

    {"and": [c, ...]}  {"or": [c, ...]}  {"not": c}
    {"feature": NAME, OP: V}      :mod:`streamseg.engine.audiencefeatures` (exact values)
    {"attribute": NAME, OP: V}    profile attributes (the profile schema's, or x_<name>)
    {"segment": SEGMENTER, OP: V} another segmenter's published segment
    {"count": TYPE, "days": N, OP: V}  events of TYPE in the last N UTC days
    {"sum": "purchase", "days": N, OP: V}  summed amount (base currency) of the purchases

with OP one of ``=, !=, <, <=, >, >=, in``. A missing value (no purchase yet, no
such attribute, no published segment) makes every comparison false; use
``not`` for the complement.

Here the structure is checked and combined (and/or/not, one subject, one comparison);
each leaf is compiled by :mod:`streamseg.engine.audienceconditions`, where
:class:`~streamseg.engine.audienceconditions.Rule` and its
:class:`~streamseg.engine.audienceconditions.RuleError` are defined.

Examples
--------
>>> from streamseg.engine.features import CustomerState
>>> r = compile_rule({"and": [{"feature": "purchases_total", ">=": 2},
...                           {"feature": "days_since_last_purchase", ">": 30}]}, {}, 30.0)
>>> s = CustomerState.new("c", 0.0)
>>> s.purchases, s.first_purchase, s.last_purchase = 2, 0.0, 0.0
>>> r.test(s, 30 * DAY), r.test(s, 30 * DAY + 1), r.nxt(s, 0.0) / DAY
(False, True, 30.0)
>>> sorted(r.types), r.horizon_days
([], 0)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamseg.config import DAY
from streamseg.engine.audienceconditions import (
    OPS,
    Readable,
    Rule,
    RuleError,
    attribute_rule,
    feature_rule,
    segment_rule,
    window_rule,
)
from streamseg.engine.features import CustomerState


def _operator(node: Mapping[str, Any], path: list[str | int]) -> tuple[str, Any]:
    ops = [op for op in OPS if op in node]
    if len(ops) != 1:
        raise RuleError(path, f"want exactly one comparison of {', '.join(OPS)}")
    op = ops[0]
    want = node[op]
    if op == "in" and not isinstance(want, list):
        raise RuleError([*path, op], "'in' wants a list")
    return op, want


_SUBJECTS = {"feature": set(), "attribute": set(), "segment": set(), "count": {"days"},
             "sum": {"days"}}


def _keys(node: Mapping[str, Any], path: list[str | int]) -> None:
    """Exactly one of and/or/not, or one subject with its own keys and one comparison."""
    keys = set(node)
    for kind in ("and", "or", "not"):
        if kind in keys:
            if keys != {kind}:
                raise RuleError([*path, kind], f"'{kind}' stands alone in its object, "
                                f"found also {', '.join(sorted(keys - {kind}))}")
            return
    subjects = [k for k in _SUBJECTS if k in keys]
    if len(subjects) != 1:
        raise RuleError(path, "want one of and, or, not, feature, attribute, segment, "
                        f"count, sum; found {', '.join(sorted(keys)) or 'nothing'}")
    subject = subjects[0]
    if not isinstance(node[subject], str):
        raise RuleError([*path, subject], f"{subject} wants a name, got {node[subject]!r}")
    extra = keys - {subject} - _SUBJECTS[subject] - set(OPS)
    if extra:
        raise RuleError([*path, sorted(extra)[0]], f"unknown key {sorted(extra)[0]!r}")
    if "days" in _SUBJECTS[subject]:
        days = node.get("days")
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3660:
            raise RuleError([*path, "days"], f"days wants a whole number 1..3660, got {days!r}")


def _combine(kind: str, parts: list[Rule]) -> Rule:
    tests = tuple(p.test for p in parts)
    nxts = tuple(p.nxt for p in parts if p.nxt is not None)
    if kind == "and" and len(tests) == 2:
        first, second = tests

        def test(s: CustomerState, now: float) -> bool:
            return first(s, now) and second(s, now)
    elif kind == "and":
        def test(s: CustomerState, now: float) -> bool:
            return all(t(s, now) for t in tests)
    elif len(tests) == 2:
        first, second = tests

        def test(s: CustomerState, now: float) -> bool:
            return first(s, now) or second(s, now)
    else:
        def test(s: CustomerState, now: float) -> bool:
            return any(t(s, now) for t in tests)

    def nxt(s: CustomerState, after: float) -> float | None:
        best = None
        for n in nxts:
            t = n(s, after)
            if t is not None and (best is None or t < best):
                best = t
        return best

    types = frozenset().union(*(p.types for p in parts))
    return Rule(test, nxt if nxts else None, types, max(p.horizon_days for p in parts))


def compile_rule(node: Mapping[str, Any], known: Mapping[str, Readable], half_life_days: float,
                 path: list[str | int] | None = None, day_s: float = 0.0) -> Rule:
    """Compile one condition; raises a
    :class:`~streamseg.engine.audienceconditions.RuleError` naming the bad part.

    ``day_s``: trailing windows count days that start this long after UTC midnight
    (``STREAMSEG_BUYING_DAY_START_H``; :mod:`streamseg.engine.history`).
    """
    path = [] if path is None else path
    if not isinstance(node, Mapping):
        raise RuleError(path, f"a condition is an object, got {node!r}")
    _keys(node, path)
    for kind in ("and", "or"):
        if kind in node:
            items = node[kind]
            if not isinstance(items, list) or not items:
                raise RuleError([*path, kind], f"'{kind}' wants a non-empty list")
            return _combine(kind, [compile_rule(c, known, half_life_days, [*path, kind, i], day_s)
                                   for i, c in enumerate(items)])
    if "not" in node:
        inner = compile_rule(node["not"], known, half_life_days, [*path, "not"], day_s)
        t = inner.test
        return Rule(lambda s, now: not t(s, now), inner.nxt, inner.types, inner.horizon_days)
    op, want = _operator(node, path)
    if "feature" in node:
        return feature_rule(str(node["feature"]), op, want, path, half_life_days * DAY)
    if "attribute" in node:
        return attribute_rule(str(node["attribute"]), op, want, path)
    if "segment" in node:
        return segment_rule(str(node["segment"]), op, want, path, known)
    if "count" in node or "sum" in node:
        return window_rule(node, op, want, path, day_s)
    raise RuleError(path, "want one of and, or, not, feature, attribute, segment, count, sum")
