"""Read the audiences file (``STREAMSEG_AUDIENCES_FILE``, JSON) and compile it once.

Every problem is one :class:`~streamseg.errors.AudienceFileError` line,
``FILE:LINE: audience NAME: message``: the line is found by walking the path of
the bad part (``audiences`` > name > ``when`` > ``and`` > ...) through the text,
each key searched after its parent's position. The checks are the compiler's
own (precise messages), then ``streamseg/schemas/audiences.schema.json`` as the
contract's backstop.

Examples
--------
>>> text = '{"audiences": {\\n  "big": {\\n    "when": {"feature": "spend", ">": 1}}}}'
>>> locate(text, ["audiences", "big", "when", "feature"])
3
>>> parse(text, "a.json")
Traceback (most recent call last):
...
streamseg.errors.AudienceFileError: a.json:3: audience big: unknown feature 'spend' \
(one of avg_days_between_purchases, avg_order_value_base, cart_adds_weighted, \
cart_conversion_ratio, days_since_first_purchase, days_since_first_seen, \
days_since_last_purchase, days_since_last_seen, events_total, mobile_share, \
page_views_weighted, purchases_total, purchases_weighted, sessions_total, \
sessions_weighted, top_channel, top_device, total_spend_base)
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

from streamseg.config import Settings
from streamseg.engine.audienceconditions import Readable, Rule, RuleError
from streamseg.engine.audiencerules import compile_rule
from streamseg.engine.history import History
from streamseg.errors import AudienceFileError
from streamseg.resources import SCHEMA_DIR

NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")
KEYS = frozenset({"description", "holdout", "when"})


@dataclass(frozen=True, slots=True)
class AudienceSpec:
    """One audience of the file, compiled."""

    name: str
    description: str
    holdout: float | None
    rule: Rule


def locate(text: str, path: list[str | int]) -> int:
    """1-based line of the last key of ``path`` found in order in ``text`` (1 if none)."""
    pos = 0
    for key in path:
        if isinstance(key, int):
            pos = _element(text, pos, key)
            continue
        m = re.compile(re.escape(json.dumps(key)) + r"\s*:").search(text, pos)
        if m is None:
            break
        pos = m.start()
    return text.count("\n", 0, pos) + 1


def _element(text: str, pos: int, index: int) -> int:
    """Where element ``index`` of the first array at or after ``pos`` starts.

    >>> t = '{"and": [{"a": 1},\\n {"b": [1, 2]}, "x,y",\\n 3]}'
    >>> [t[_element(t, 0, i)] for i in range(4)]
    ['{', '{', '"', '3']
    """
    start = text.find("[", pos)
    if start < 0:
        return pos
    depth, seen, i, in_string = 0, 0, start + 1, False
    while i < len(text) and seen < index:
        c = text[i]
        if in_string:
            if c == "\\":
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
        elif c in "]}":
            if depth == 0:
                return pos
            depth -= 1
        elif c == "," and depth == 0:
            seen += 1
        i += 1
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def duplicate_key(text: str) -> tuple[list[str], int, int] | None:
    """The first key given twice in one object of valid JSON ``text``: the path of keys to
    it, and the offsets of its first and second occurrence (None: no duplicate).

    >>> duplicate_key('{"a": {"b": 1, "c": [{"b": 2}]},\\n "a": 3}')
    (['a'], 1, 34)
    >>> duplicate_key('{"a": {"b": 1, "c": {"b": 2}}}') is None
    True
    """
    # one frame per open object ({key: offset}, the key being read) or array (None)
    frames: list[tuple[dict[str, int], list[str]] | None] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            end = i + 1
            while text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            j = end + 1
            while j < n and text[j].isspace():
                j += 1
            top = frames[-1] if frames else None
            if top is not None and j < n and text[j] == ":":
                key = json.loads(text[i:end + 1])
                seen, current = top
                if key in seen:
                    path = [f[1][0] for f in frames[:-1] if f is not None and f[1]]
                    return [*path, key], seen[key], i
                seen[key] = i
                current[:] = [key]
            i = end + 1
            continue
        if c == "{":
            frames.append(({}, []))
        elif c == "[":
            frames.append(None)
        elif c in "]}":
            frames.pop()
        i += 1
    return None


@functools.cache
def _schema() -> Any:
    with (SCHEMA_DIR / "audiences.schema.json").open("rb") as f:
        return jsonschema_rs.validator_for(json.load(f))


def read(path: str) -> str:
    """The file's text; an unreadable file is an :class:`AudienceFileError` (no line)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise AudienceFileError(
            path, None, None, f"cannot read the audiences file: {why}") from None


def parse(text: str, path: str, known: Mapping[str, Readable] | None = None,
          half_life_days: float = 30.0, day_s: float = 0.0) -> list[AudienceSpec]:
    """Check and compile every audience of ``text`` (``known``: segmenters a rule may read;
    ``day_s``: windows count days that start this long after UTC midnight)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AudienceFileError(path, exc.lineno, None, f"invalid JSON: {exc.msg}") from None

    def fail(where: list[str | int], audience: str | None, message: str) -> AudienceFileError:
        return AudienceFileError(path, locate(text, where), audience, message)

    dup = duplicate_key(text)
    if dup is not None:
        keys, first, again = dup
        audience = str(keys[1]) if len(keys) > 1 and keys[0] == "audiences" else None
        twice = (f"audience {keys[-1]} defined twice" if len(keys) == 2 and audience else
                 f"key {json.dumps(keys[-1])} given twice in one object")
        raise AudienceFileError(
            path, text.count("\n", 0, again) + 1, audience,
            f"{twice} (first at line {text.count(chr(10), 0, first) + 1}): a JSON object "
            "keeps only the last")

    if not isinstance(doc, dict) or not isinstance(doc.get("audiences"), dict):
        raise fail([], None, "want an object with an \"audiences\" object")
    seen: dict[str, Readable] = dict(known or {})
    specs: list[AudienceSpec] = []
    for name, body in doc["audiences"].items():
        here: list[str | int] = ["audiences", name]
        if not NAME.fullmatch(name):
            raise fail(here, name, "a name is 1-48 of [a-z0-9_], starting with a letter")
        if not isinstance(body, dict) or "when" not in body:
            raise fail(here, name, "want an object with a \"when\" condition")
        extra = sorted(set(body) - KEYS)
        if extra:
            raise fail([*here, extra[0]], name, f"unknown key {extra[0]!r} "
                       f"(one of {', '.join(sorted(KEYS))})")
        holdout = body.get("holdout")
        if holdout is not None and (isinstance(holdout, bool) or not isinstance(
                holdout, int | float) or not 0.0 <= holdout <= 1.0):
            raise fail([*here, "holdout"], name, f"holdout is a share 0..1, got {holdout!r}")
        try:
            rule = compile_rule(body["when"], seen, half_life_days, [*here, "when"], day_s)
        except RuleError as exc:
            raise fail(exc.path, name, exc.message) from None
        spec = AudienceSpec(name, str(body.get("description") or name),
                            None if holdout is None else float(holdout), rule)
        specs.append(spec)
        seen[f"audience:{name}"] = _Placeholder(f"audience:{name}", spec)
    for error in _schema().iter_errors(doc):
        where = [k if isinstance(k, int) else str(k) for k in error.instance_path]
        audience = str(where[1]) if len(where) > 1 and where[0] == "audiences" else None
        raise fail(where, audience, f"does not match audiences.schema.json: {error.message}")
    return specs


class _Placeholder:
    """Stands for an audience above while the file compiles (its ``segments``, ``due``)."""

    def __init__(self, name: str, spec: AudienceSpec) -> None:
        self.name = name
        self.due: Callable[..., float | None] = spec.rule.nxt or (lambda s, after: None)

    def segments(self) -> tuple[str, ...]:
        return ("in", "out")


def history_of(specs: list[AudienceSpec], day_s: float = 0.0) -> History | None:
    """The event history the audiences need (None: no trailing window anywhere)."""
    types = frozenset().union(*(s.rule.types for s in specs))
    horizon = max((s.rule.horizon_days for s in specs), default=0)
    return History(types, horizon, day_s) if types and horizon else None


def history(settings: Settings, known: Mapping[str, Readable]) -> History | None:
    """The history for ``settings``' audiences file (None without a file or windows)."""
    return history_of(load(settings, known), settings.buying_day_start_s)


def load(settings: Settings, known: Mapping[str, Readable]) -> list[AudienceSpec]:
    """The compiled audiences of ``settings.audiences_file`` ([] when unset)."""
    if not settings.audiences_file:
        return []
    return parse(read(settings.audiences_file), settings.audiences_file, known,
                 settings.half_life_days, settings.buying_day_start_s)
