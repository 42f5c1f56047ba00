"""Dead-letter records: the original bytes, why they were rejected, and where they came from.

With pseudonymisation on (a ``secret``), a dead letter carries no raw customer
id in clear: the key is replaced by its keyed hash and the payload is redacted
(``redaction`` says how):

* ``ids_pseudonymised``: the payload is a JSON object; every occurrence of the
  raw key and of the raw ``customer_id`` inside its strings is replaced by the
  keyed hash, the rest is kept (re-encoded JSON);
* ``payload_dropped``: the payload is not a JSON object (malformed, too large),
  so the raw id cannot be found in it reliably; only its length is kept.

Whatever the input's size, a dead letter fits in a Kafka message (Faust's producer
takes at most 1,000,000 bytes a record, and base64 makes bytes 4/3 as long): it keeps
the first :data:`KEPT_BYTES` of the value (``redaction`` ``truncated``; pseudonymised
first, with a secret), the first :data:`KEPT_KEY_BYTES` of the key and the first
:data:`KEPT_MESSAGE_CHARS` of the message and of the field; ``value_bytes`` and
``key_bytes`` give the full lengths, and the whole input stays at ``source`` for the
topic's retention. (An operator's 0.8 MB page view made a 1.07 MB letter: its delivery
failed, and the worker crashed on it at every restart.)

Examples
--------
>>> from streamseg.engine.validate import Invalid
>>> rec = dead_letter(Invalid("not_json", "malformed JSON"), "clickstream", 0, 7, b"c1", b"{")
>>> rec["reason"], rec["source"], rec["key_b64"], rec["value_b64"], rec["redaction"]
('not_json', {'topic': 'clickstream', 'partition': 0, 'offset': 7}, 'YzE=', 'ew==', None)
>>> bad = Invalid("schema_invalid", "no ts", "ts")
>>> red = dead_letter(bad, "purchases", 0, 8, b"ann", b'{"customer_id":"ann","page":"/u/ann"}',
...                   secret="k")
>>> red["redaction"], b"ann" in base64.b64decode(red["value_b64"])
('ids_pseudonymised', False)
>>> base64.b64decode(red["key_b64"]) == redact_key("k", b"ann")
True
>>> gone = dead_letter(Invalid("not_json", "bad"), "purchases", 0, 9, b"ann", b"{ann", secret="k")
>>> gone["redaction"], gone["value_b64"], gone["value_bytes"]
('payload_dropped', '', 4)
"""

from __future__ import annotations

import base64
from typing import Any

from streamseg import codec
from streamseg.engine.validate import Invalid, pseudonymise

KEPT_BYTES = 512 * 1024  # of a value: 699,052 characters of base64
KEPT_KEY_BYTES = 1024  # of a key (a customer id is at most 128 characters)
KEPT_MESSAGE_CHARS = 2000  # and of the field: an unknown attribute's name is the input's


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def redact_key(secret: str, key: bytes | None) -> bytes | None:
    """The keyed hash of a message key (the same alias the state uses for that id)."""
    if key is None:
        return None
    return pseudonymise(secret, key.decode("utf-8", errors="replace")).encode()


def letter_key(key: bytes | None, secret: str = "") -> bytes | None:
    """The key of a dead letter (and its ``key_b64``): the input's key, hashed with a
    ``secret``, else its first :data:`KEPT_KEY_BYTES` bytes.

    >>> letter_key(b"c1"), len(letter_key(b"k" * 5000)), letter_key(None, "s")
    (b'c1', 1024, None)
    """
    if secret:
        return redact_key(secret, key)
    return None if key is None else key[:KEPT_KEY_BYTES]


def _scrub(value: Any, aliases: dict[str, str]) -> Any:
    """``value`` with every raw id inside its strings (and keys) replaced by its alias."""
    if isinstance(value, str):
        for raw, alias in aliases.items():
            value = value.replace(raw, alias)
        return value
    if isinstance(value, list):
        return [_scrub(v, aliases) for v in value]
    if isinstance(value, dict):
        return {_scrub(k, aliases): _scrub(v, aliases) for k, v in value.items()}
    return value


def _aliases(secret: str, key: bytes | None, record: Any) -> dict[str, str]:
    """Raw id -> keyed hash, for the message key and the record's ``customer_id``."""
    raws = [] if key is None else [key.decode("utf-8", errors="replace")]
    cid = record.get("customer_id") if isinstance(record, dict) else None
    if isinstance(cid, str):
        raws.append(cid)
    # longest first, so an id that contains another is replaced whole
    return {raw: pseudonymise(secret, raw)
            for raw in sorted(set(raws), key=len, reverse=True) if raw}


def dead_letter(
    invalid: Invalid,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    secret: str = "",
) -> dict[str, Any]:
    """The ``streamseg-dead-letters`` value (see ``streamseg/schemas/dead-letter.schema.json``).

    With a ``secret`` (``STREAMSEG_PSEUDONYMISE_KEY``) the key is hashed and the
    payload redacted; raw ids quoted in the error message are replaced too.
    """
    redaction: str | None = None
    payload = value or b""
    message = invalid.message
    if secret:
        try:
            record = codec.loads(payload)
        except codec.DecodeError:
            record = None
        aliases = _aliases(secret, key, record)
        if isinstance(record, dict):
            payload, redaction = codec.dumps(_scrub(record, aliases)), "ids_pseudonymised"
        else:
            payload, redaction = b"", "payload_dropped"
        message = _scrub(message, aliases)  # a schema error may quote the offending id
    if len(payload) > KEPT_BYTES:
        payload, redaction = payload[:KEPT_BYTES], "truncated"
    kept_key = letter_key(key, secret)
    return {
        "reason": invalid.reason,
        "message": message[:KEPT_MESSAGE_CHARS],
        "field": None if invalid.field is None else invalid.field[:KEPT_MESSAGE_CHARS],
        "source": {"topic": topic, "partition": partition, "offset": offset},
        "key_b64": None if kept_key is None else _b64(kept_key),
        "value_b64": _b64(payload),
        "redaction": redaction,
        "value_bytes": len(value or b""),
        "key_bytes": None if key is None else len(key),
    }
