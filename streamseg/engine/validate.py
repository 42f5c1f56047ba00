"""Decode and validate raw input bytes: ``Valid(event)`` or ``Invalid(reason)``.

Errors are values here: nothing in this module raises on bad input. The JSON
Schemas in ``streamseg/schemas/`` are the contract; they are checked with a compiled
2020-12 validator (jsonschema-rs), then the few rules a schema cannot say
(key matches body, known currency, event time inside the configured static
window ``event_time_min`` .. ``event_time_max``) are applied. The schemas are read,
and the profile schema's attribute catalogue derived, in :mod:`streamseg.engine.contract`.
The dynamic bound (at most ``max_future_skew_s`` ahead of the later of the event clock
and the wall clock) is
:func:`screen`, called by :meth:`streamseg.engine.processor.Engine.screen`.

Examples
--------
>>> v = Validator(Settings())
>>> ok = v.check("click", b"c1", b'{"event_id":"e1","customer_id":"c1",'
...              b'"type":"page_view","ts":"2026-01-01T00:00:00Z"}')
>>> ok.event.customer_id, ok.event.ts
('c1', 1767225600.0)
>>> v.check("click", b"c1", b'{"event_id":"e1"').reason
'not_json'
>>> v.check("purchase", None, b'{"event_id":"e","customer_id":"c","ts":"2026-01-01T00:00:00Z",'
...         b'"order_id":"o","amount":-5,"currency":"EUR"}')
Invalid(reason='schema_invalid', message='-5 is less than the minimum of 0', field='amount')
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

from streamseg import codec
from streamseg.config import Settings
from streamseg.engine.contract import (
    INPUT_SCHEMAS,
    is_custom_attribute,
    known_attributes,
    load_schema,
)
from streamseg.engine.events import (
    CLICK_TYPES,
    CONSENT_TYPES,
    RESTRICTIVE,
    Event,
    Kind,
    format_ts,
    parse_ts,
)

TYPES: dict[Kind, frozenset[str]] = {
    "click": CLICK_TYPES,
    "purchase": frozenset({"purchase"}),
    "consent": CONSENT_TYPES,
    "profile": frozenset({"profile"}),
}
# the record type of a stream whose records may omit ``type``
IMPLIED: dict[Kind, str] = {"purchase": "purchase", "profile": "profile"}


@dataclass(slots=True)  # (one an input: not frozen, which costs per field)
class Valid:
    """A decoded, schema-valid event."""

    event: Event


@dataclass(frozen=True, slots=True)
class Invalid:
    """Why an input was rejected; ``reason`` is one of the dead-letter schema's codes."""

    reason: str
    message: str
    field: str | None = None


def pseudonymise(secret: str, customer_id: str) -> str:
    """Keyed hash (HMAC-SHA256, 32 hex chars) of a customer id.

    >>> pseudonymise("k", "42")
    '7955074f51169f1f64053d8b2c403d7f'
    """
    mac = hmac.new(secret.encode(), customer_id.encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


_ALIAS = re.compile(r"[0-9a-f]{32}")


def is_alias(customer_id: str) -> bool:
    """Whether ``customer_id`` has the form of a :func:`pseudonymise` alias (32 lower-case
    hex digits). A raw id of that form is taken for an alias; an alias of another key
    cannot be told from one of the current key.

    >>> is_alias(pseudonymise("k", "42")), is_alias("c000297"), is_alias("7955074F" * 4)
    (True, False, False)
    """
    return _ALIAS.fullmatch(customer_id) is not None


def screen(event: Event, watermark: float | None, skew: float,
           wall: float | None = None) -> Invalid | None:
    """Reject an event more than ``skew`` seconds in the future
    (``timestamp_out_of_range``): ahead of both the event clock and the wall clock.

    The references are ``watermark``, the highest event time the worker
    (partition) has seen (never one customer's ``last_seen``), and ``wall``, the
    wall-clock time now: an event is rejected only when it lies more than
    ``skew`` ahead of the *later* of the two. So an event from the future (a
    device clock in 2099, also as the very first event) is rejected, while a
    quiet spell in the data longer than ``skew`` (a closed week, an idle
    partition, a backfilled order history with gaps) never is: for data behind
    the wall clock the check passes, and the decision does not depend on when a
    replay runs. The event clock itself never passes the wall clock
    (:func:`streamseg.engine.clock.bounded`), so an accepted event dated a few days
    ahead does not widen the window for the next one. With neither reference only
    the static window of the validator (``event_time_min`` .. ``event_time_max``) applies.

    >>> ev = Event("click", "page_view", "e1", "c1", 1000.0)
    >>> screen(ev, None, 60.0) is None, screen(ev, 940.0, 60.0) is None
    (True, True)
    >>> screen(ev, 939.0, 60.0).reason  # no wall clock given: the event clock alone
    'timestamp_out_of_range'
    >>> screen(ev, 939.0, 60.0, wall=5000.0) is None  # a gap in past data: accepted
    True
    >>> screen(ev, None, 60.0, wall=900.0).reason  # from the future, even as the first event
    'timestamp_out_of_range'
    """
    # the later reference (the event clock on a tie); none: nothing to be ahead of
    ref, what = watermark, "the event clock"
    if wall is not None and (ref is None or wall > ref):
        ref, what = wall, "the wall clock"
    if ref is None or event.ts <= ref + skew:
        return None
    return Invalid(
        "timestamp_out_of_range",
        f"event time {format_ts(event.ts)} is more than {skew:g} s "
        f"ahead of {what} ({format_ts(ref)})",
        "ts",
    )


def _path(parts: list[str | int]) -> str | None:
    return ".".join(str(p) for p in parts) or None


class Validator:
    """Turns raw bytes from an input topic into :class:`Valid` or :class:`Invalid`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.fx = settings.fx_table()
        # the static accepted event-time window (settings ``event_time_min`` / ``_max``)
        self.min_ts, self.max_ts = settings.event_time_window()
        self._schemas = {
            kind: jsonschema_rs.validator_for(load_schema(name), validate_formats=True)
            for kind, name in INPUT_SCHEMAS.items()
        }
        self.known_attributes = known_attributes()

    def check(self, kind: Kind, key: bytes | None, value: bytes | None) -> Valid | Invalid:
        """Decode and validate one message of stream ``kind``."""
        record = self.decode(value)
        if isinstance(record, Invalid):
            return record
        return self.check_record(kind, key, record)

    def decode(self, value: bytes | None) -> Any:
        """The JSON value of a message, or :class:`Invalid` (null, too large, not JSON).

        >>> v = Validator(Settings(max_event_bytes=8))
        >>> v.decode(b'{"a":1}'), v.decode(b'{"a":"long"}').reason, v.decode(b"{").reason
        ({'a': 1}, 'too_large', 'not_json')
        """
        if value is None:
            return Invalid("not_object", "empty message (null value)")
        if len(value) > self.settings.max_event_bytes:
            return Invalid(
                "too_large", f"{len(value)} bytes > limit {self.settings.max_event_bytes}"
            )
        try:
            return codec.loads(value)
        except codec.DecodeError as exc:
            return Invalid("not_json", f"malformed JSON: {exc}")

    def check_tick(self, value: bytes | None) -> float | Invalid:
        """Decode a ``streamseg-ticks`` value ``{"now": <event-time seconds>}``.

        >>> v = Validator(Settings())
        >>> v.check_tick(b'{"now": 5.0}'), v.check_tick(b'{"now": "x"}').reason
        (5.0, 'schema_invalid')
        >>> v.check_tick(b"[").reason, v.check_tick(None).reason
        ('not_json', 'not_object')
        """
        if value is None:
            return Invalid("not_object", "empty tick (null value)")
        try:
            record = codec.loads(value)
        except codec.DecodeError as exc:
            return Invalid("not_json", f"malformed JSON: {exc}")
        now = record.get("now") if isinstance(record, dict) else None
        if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
            return Invalid("schema_invalid", "a tick needs a finite number 'now'", "now")
        return float(now)

    def check_record(self, kind: Kind, key: bytes | None, record: Any) -> Valid | Invalid:
        """Validate an already decoded record of stream ``kind``."""
        if not isinstance(record, dict):
            return Invalid("not_object", f"expected a JSON object, got {type(record).__name__}")
        etype = record.get("type", IMPLIED.get(kind))
        if isinstance(etype, str) and etype not in TYPES[kind]:
            return Invalid("unknown_event_type",
                           f"unknown {kind} event type {etype!r} (expected one of "
                           f"{', '.join(sorted(TYPES[kind]))})", "type")
        schema = self._schemas[kind]
        if not schema.is_valid(record):
            if kind == "profile":
                unknown = self._unknown_attribute(record.get("attributes"))
                if unknown is not None:
                    return unknown
            err = next(iter(schema.iter_errors(record)))
            path = list(err.instance_path)
            if isinstance(err.kind, jsonschema_rs.ValidationErrorKind.Required):
                path.append(err.kind.property)  # the missing field, not its parent object
            return Invalid("schema_invalid", err.message, _path(path))
        customer_id: str = record["customer_id"]
        if key is not None and key != customer_id.encode():
            return Invalid(
                "key_mismatch", "message key differs from customer_id", "customer_id"
            )
        try:
            ts = parse_ts(record["ts"])
        except ValueError as exc:
            return Invalid("schema_invalid", f"bad timestamp: {exc}", "ts")
        # a withdrawal or erasure is never refused for its time: Engine.admit sets it to the
        # event clock
        if not self.min_ts <= ts < self.max_ts and etype not in RESTRICTIVE:
            return Invalid(
                "timestamp_out_of_range",
                f"event time outside {self.settings.event_time_min} .. "
                f"{self.settings.event_time_max}",
                "ts",
            )
        amount = discount = 0.0
        items = 0
        if kind == "purchase":
            rate = self.fx.get(record["currency"])
            if rate is None:
                return Invalid(
                    "unsupported_currency",
                    f"no FX rate for {record['currency']} (set STREAMSEG_FX_RATES)",
                    "currency",
                )
            amount = float(record["amount"]) * rate
            discount = float(record.get("discount", 0.0)) * rate
            items = sum(int(i["quantity"]) for i in record.get("items", ()))
        if self.settings.pseudonymise_key:
            customer_id = pseudonymise(self.settings.pseudonymise_key, customer_id)
        return Valid(
            Event(
                kind=kind,
                type=str(etype),
                event_id=record["event_id"],
                customer_id=customer_id,
                ts=ts,
                session_id=record.get("session_id"),
                channel=record.get("channel"),
                device=record.get("device"),
                amount=amount,
                discount=discount,
                items=items,
                attributes=record["attributes"] if kind == "profile" else None,
            )
        )

    def _unknown_attribute(self, attributes: Any) -> Invalid | None:
        """The first attribute name neither known nor ``x_``-prefixed, as a clear reason.

        >>> v = Validator(Settings())
        >>> v._unknown_attribute({"country": "DE", "Shoe-Size": 42})
        Invalid(reason='schema_invalid', message="unknown attribute 'Shoe-Size': not one of \
the known attributes (country, region, ...) nor x_<name> (lowercase letters, digits, _)", \
field='attributes.Shoe-Size')
        """
        if not isinstance(attributes, dict):
            return None
        for name in attributes:
            if name not in self.known_attributes and not is_custom_attribute(name):
                return Invalid(
                    "schema_invalid",
                    f"unknown attribute {name!r}: not one of the known attributes "
                    "(country, region, ...) nor x_<name> (lowercase letters, digits, _)",
                    f"attributes.{name}",
                )
        return None
