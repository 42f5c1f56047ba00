"""An audience condition's leaves: the compiled :class:`Rule` and one builder per subject.

:func:`streamseg.engine.audiencerules.compile_rule` parses an audience's ``when``
(its and/or/not, its subject and comparison) and hands each leaf to a builder here:
:func:`feature_rule` (:mod:`streamseg.engine.audiencefeatures`, exact values; a
decayed feature or a ``days_since_*`` one also knows when it next crosses its
threshold), :func:`attribute_rule` (a profile attribute, checked against the
profile schema's kinds and closed names), :func:`window_rule` (events counted or
purchases summed over trailing UTC days, :mod:`streamseg.engine.history`) and
:func:`segment_rule` (another segmenter's published segment, :class:`Readable`).
Each returns a :class:`Rule` or raises :class:`RuleError` naming the bad part.
"""

from __future__ import annotations

import difflib
import json
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from streamseg.config import DAY
from streamseg.engine import history
from streamseg.engine.audiencefeatures import (
    DECAYED,
    EVENT_TYPES,
    FEATURE_NAMES,
    SINCE,
    STATIC,
    TEXT_FEATURES,
)
from streamseg.engine.contract import attribute_kinds, is_custom_attribute
from streamseg.engine.features import CustomerState
from streamseg.engine.segmenters.base import STEP_S

Test = Callable[[CustomerState, float], bool]
Next = Callable[[CustomerState, float], "float | None"]
OPS = ("=", "!=", "<", "<=", ">", ">=", "in")
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
_ATTRIBUTES = attribute_kinds()  # the profile schema's attributes: kinds, closed names


class Readable(Protocol):
    """What a rule needs of a segmenter whose published segment it reads."""

    name: str

    def segments(self) -> tuple[str, ...]: ...

    def due(self, state: CustomerState, after: float) -> float | None: ...


class RuleError(Exception):
    """A semantic error at ``path`` (keys and indexes inside the audience's ``when``)."""

    def __init__(self, path: list[str | int], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled condition, with the history it needs (event types, longest window)."""

    test: Test
    nxt: Next | None
    types: frozenset[str]
    horizon_days: int


def _typed(v: Any) -> tuple[str, Any] | None:
    """A value with its JSON kind, so ``true`` never equals ``1`` (Python's ``True == 1``).

    >>> _typed(True) == _typed(1), _typed(1) == _typed(1.0), _typed(None)
    (False, True, None)
    """
    if isinstance(v, bool):
        return ("boolean", v)
    if isinstance(v, int | float):
        return ("number", v)
    if isinstance(v, str):
        return ("text", v)
    return None


def _compare(op: str, want: Any) -> Callable[[Any], bool]:
    """``value OP want``; a missing value (None) or a type mismatch is False.

    Equality is by JSON kind: a boolean equals only a boolean, a number only a number.

    >>> _compare("=", True)(1), _compare("=", True)(True), _compare("in", [1, "a"])(True)
    (False, True, False)
    >>> _compare("!=", True)(1), _compare("=", 1)(1.0)
    (True, True)
    """
    if op == "in":
        wanted = frozenset(_typed(w) for w in want)
        return lambda v: v is not None and _typed(v) in wanted
    key = _typed(want)
    if op == "=":
        return lambda v: v is not None and _typed(v) == key
    if op == "!=":
        return lambda v: v is not None and _typed(v) != key
    fn = _ORDER[op]
    kind = str if isinstance(want, str) else (int, float)

    def ordered(v: Any) -> bool:
        return isinstance(v, kind) and not isinstance(v, bool) and fn(v, want)

    return ordered


def _thresholds(op: str, want: Any) -> list[float]:
    vals = want if op == "in" else [want]
    return [float(v) for v in vals if isinstance(v, int | float) and not isinstance(v, bool)]


def _first(after: float, times: list[float]) -> float | None:
    best = None
    for t in times:
        for c in (t, t + STEP_S):  # at the threshold, and one step past it (strict ops)
            if c > after and (best is None or c < best):
                best = c
    return best


def _numeric(op: str, want: Any, path: list[str | int], what: str) -> None:
    if not _thresholds(op, want) or len(_thresholds(op, want)) != (
            len(want) if op == "in" else 1):
        raise RuleError([*path, op], f"{what} compares with numbers, got {want!r}")


def _names(op: str, want: Any, path: list[str | int], what: str,
           allowed: tuple[str, ...]) -> None:
    """A comparison with a name from a closed set: ``=``, ``!=`` or ``in`` a known name."""
    if op in _ORDER:
        raise RuleError([*path, op], f"{what} is a name: compare it with =, != or in, "
                        f"not {op}")
    for v in want if op == "in" else [want]:
        if v not in allowed or not isinstance(v, str):
            raise RuleError([*path, op], f"{what} is never {v!r} "
                            f"(one of {', '.join(allowed)})")


def feature_rule(name: str, op: str, want: Any, path: list[str | int], hl_s: float) -> Rule:
    """``{"feature": name, op: want}``, ``hl_s`` the decay half-life in seconds."""
    cmp = _compare(op, want)
    if name not in FEATURE_NAMES:
        raise RuleError([*path, "feature"], f"unknown feature {name!r} "
                        f"(one of {', '.join(sorted(FEATURE_NAMES))})")
    if name in TEXT_FEATURES:
        _names(op, want, path, f"feature {name}", TEXT_FEATURES[name])
        get = STATIC[name]
        return Rule(lambda s, now: cmp(get(s)), None, frozenset(), 0)
    _numeric(op, want, path, f"feature {name}")
    limits = _thresholds(op, want)
    if name in STATIC:
        get = STATIC[name]
        return Rule(lambda s, now: cmp(get(s)), None, frozenset(), 0)
    if name in SINCE:
        anchor = SINCE[name]

        def since(s: CustomerState, now: float) -> bool:
            a = anchor(s)
            return a is not None and cmp((now - a) / DAY)

        def since_next(s: CustomerState, after: float) -> float | None:
            a = anchor(s)
            return None if a is None else _first(after, [a + c * DAY for c in limits])

        return Rule(since, since_next, frozenset(), 0)
    raw = DECAYED[name]

    def decayed(s: CustomerState, now: float) -> bool:
        return cmp(raw(s) * 0.5 ** (max(0.0, now - s.decay_ts) / hl_s))

    def decayed_next(s: CustomerState, after: float) -> float | None:
        r = raw(s)
        times = [s.decay_ts + hl_s * math.log2(r / c) for c in limits if 0 < c < r]
        return _first(after, times)

    return Rule(decayed, decayed_next, frozenset(), 0)


def _attribute(name: str, op: str, want: Any, path: list[str | int]) -> None:
    """A profile attribute the profile schema defines (its kinds, its closed names), or a
    custom ``x_<name>`` one (any scalar)."""
    if is_custom_attribute(name):
        return
    kinds = _ATTRIBUTES.get(name)
    if kinds is None:
        close = difflib.get_close_matches(name, sorted(_ATTRIBUTES), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise RuleError([*path, "attribute"], f"unknown attribute {name!r} ({hint}the profile "
                        f"schema's are {', '.join(sorted(_ATTRIBUTES))}; your own are "
                        "x_<name>)")
    holds, allowed = kinds
    for v in want if op == "in" else [want]:
        typed = _typed(v)
        if typed is None or typed[0] not in holds:
            raise RuleError([*path, op], f"attribute {name} holds a {'/'.join(sorted(holds))}"
                            f" value, never {json.dumps(v)}")
        if allowed is not None and op not in _ORDER and v not in allowed:
            raise RuleError([*path, op], f"attribute {name} is never {v!r} "
                            f"(one of {', '.join(allowed)})")


def attribute_rule(name: str, op: str, want: Any, path: list[str | int]) -> Rule:
    """``{"attribute": name, op: want}``: the attribute's value compared (:func:`_attribute`)."""
    cmp = _compare(op, want)
    _attribute(name, op, want, path)
    return Rule(lambda s, now: cmp(s.attributes.get(name)), None, frozenset(), 0)

def window_rule(node: Mapping[str, Any], op: str, want: Any, path: list[str | int],
                day_s: float) -> Rule:
    """``{"count": TYPE, "days": N, op: want}`` or ``{"sum": "purchase", ...}``."""
    summed = "sum" in node
    type_ = str(node["sum" if summed else "count"])
    days = int(node["days"])
    if type_ not in EVENT_TYPES:
        raise RuleError([*path, "sum" if summed else "count"], f"unknown event type {type_!r} "
                        f"(one of {', '.join(sorted(EVENT_TYPES))})")
    if summed and type_ != "purchase":
        raise RuleError([*path, "sum"], f"{type_} events have no amount: sum only purchase "
                        f"(count {type_} events with count)")
    _numeric(op, want, path, "a window")
    cmp = _compare(op, want)
    if summed:
        def test(s: CustomerState, now: float) -> bool:
            return cmp(history.amount(s, type_, days, now, day_s))
    else:
        def test(s: CustomerState, now: float) -> bool:
            return cmp(history.count(s, type_, days, now, day_s))

    def nxt(s: CustomerState, after: float) -> float | None:
        return history.exits(s, type_, days, after, day_s)

    return Rule(test, nxt, frozenset({type_}), days)


def segment_rule(name: str, op: str, want: Any, path: list[str | int],
                 known: Mapping[str, Readable]) -> Rule:
    """``{"segment": name, op: want}``: ``name`` one of ``known``, ``want`` its segments."""
    seg = known.get(name)
    if seg is None:
        raise RuleError([*path, "segment"], f"unknown segmenter {name!r} (built-in or an "
                        f"audience defined above: {', '.join(known)})")
    ids = seg.segments()
    for v in want if op == "in" else [want]:
        if ids and v not in ids:
            raise RuleError([*path, op], f"{name} has no segment {v!r} ({', '.join(ids)})")
    cmp = _compare(op, want)

    def test(s: CustomerState, now: float) -> bool:
        cur = s.segments.get(name)
        return cur is not None and cmp(cur[0])

    return Rule(test, seg.due, frozenset(), 0)
