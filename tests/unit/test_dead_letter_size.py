"""A dead letter always fits in a Kafka message, whatever the size of its input.

An operator sent one ~0.8 MB page view (the broker takes up to about 1 MB): its
``too_large`` dead letter, the original in base64 (4/3 of it), was over the producer's
1 MB request limit, the batch's delivery failed, and the worker crashed on it again
at every restart, on every worker that took the partition. A dead letter keeps the
first :data:`~streamseg.engine.deadletters.KEPT_BYTES` of the value (``redaction``
``truncated``, ``value_bytes`` the full length; the input itself stays at ``source``)
and the first :data:`~streamseg.engine.deadletters.KEPT_KEY_BYTES` of the key.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from streamseg import codec
from streamseg.console import refeedable
from streamseg.engine.deadletters import KEPT_BYTES, KEPT_KEY_BYTES, dead_letter, letter_key
from streamseg.engine.validate import Invalid

LIMIT = 1_000_000  # Faust's producer_max_request_size (aiokafka's request limit), default


@pytest.mark.parametrize(("key_len", "value_len"), [
    (8, 1_048_576), (8, 780_000), (600_000, 300_000), (1_000_000, 0)])
def test_a_dead_letter_fits_in_a_kafka_message(key_len: int, value_len: int,
                                               assert_schema: Any) -> None:
    key, value = b"k" * key_len, b"x" * value_len
    for secret in ("", "s"):
        rec = dead_letter(Invalid("too_large", f"{value_len} bytes > limit 65536"), "clicks",
                          3, 9, key, value, secret=secret)
        assert_schema("dead-letter", rec)
        out_key = letter_key(key, secret)
        assert out_key is not None
        assert len(codec.dumps(rec)) + len(out_key) < LIMIT - 4096
        assert rec["value_bytes"] == value_len
        if not secret:
            kept = base64.b64decode(rec["value_b64"])
            assert value.startswith(kept) and len(kept) == min(value_len, KEPT_BYTES)
            assert rec["redaction"] == ("truncated" if value_len > KEPT_BYTES else None)
            assert out_key == key[:KEPT_KEY_BYTES]
            assert base64.b64decode(rec["key_b64"]) == out_key
            assert rec["key_bytes"] == key_len


def test_a_truncated_letter_is_not_refed_and_a_whole_one_is_kept_whole() -> None:
    body = codec.dumps({"event_id": "e", "customer_id": "c", "blob": "x" * (KEPT_BYTES + 10)})
    cut = dead_letter(Invalid("too_large", "big"), "clicks", 0, 1, b"c", body)
    assert refeedable(cut) is None  # a prefix of an input is not the input
    small = codec.dumps({"event_id": "e", "customer_id": "c", "currency": "XYZ"})
    whole = dead_letter(Invalid("unsupported_currency", "XYZ"), "clicks", 0, 2, b"c", small)
    assert whole["redaction"] is None and refeedable(whole) == small
    assert whole["key_bytes"] == 1 and base64.b64decode(whole["key_b64"]) == b"c"


def test_a_long_message_and_field_are_cut() -> None:
    rec = dead_letter(Invalid("schema_invalid", "y" * 50_000, "ts"), "clicks", 0, 1, None, b"{}")
    assert len(rec["message"]) <= 2_000 and rec["message"].startswith("yyy")
    assert rec["key_b64"] is None and rec["key_bytes"] is None
    # an unknown attribute's name is the field (a reviewer's 700 KB name, with a raised
    # STREAMSEG_MAX_EVENT_BYTES, made a 1.4 MB letter)
    name = "attributes." + "n" * 700_000
    rec = dead_letter(Invalid("schema_invalid", "unknown attribute", name), "profiles", 0, 2,
                      b"c", b"x" * 900_000)
    assert len(codec.dumps(rec)) < LIMIT - 4096 and name.startswith(rec["field"])
