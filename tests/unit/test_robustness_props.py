"""Property tests: whatever arrives, every input ends as state, a dead letter or a counted skip.

Hypothesis throws malformed JSON, wrong types, huge payloads, unknown event
types, missing keys, timestamps far in the past or future and duplicate event
ids at the real ``Ingest`` glue (``tests/unit/ingest_harness.py``) and at the
``Validator``. Invariants checked after every single message:

* no exception escapes;
* exactly one ``streamseg_events_consumed_total`` sample moved, by exactly 1;
* a ``dead_letter`` outcome wrote exactly one record, valid against
  ``streamseg/schemas/dead-letter.schema.json``, whose reason is also counted in
  ``streamseg_dead_letters_written_total``;
* a ``processed`` click or purchase is in the customer's state (its event id
  is in the duplicate filter, the event counter moved by one);
* every emitted change / current-segments record is valid against its schema.
"""

from __future__ import annotations

import base64
import math
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from unit.ingest_harness import Harness, schema_errors

from streamseg import codec
from streamseg.config import DAY, Settings
from streamseg.engine.dedup import event_hash
from streamseg.engine.events import RESTRICTIVE
from streamseg.engine.validate import Invalid, Valid, Validator

SETTINGS = Settings(max_event_bytes=4096, max_future_skew_s=30 * DAY)
BASE = datetime(2026, 1, 1, tzinfo=UTC)
CUSTOMERS = ["c1", "c2", "c3"]
KINDS = ("click", "purchase", "consent")

# ----------------------------------------------------------------- strategies

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def timestamps(draw: st.DrawFn) -> Any:
    """Mostly plausible RFC 3339 times; sometimes far past/future, odd offsets or junk."""
    choice = draw(st.integers(0, 9))
    if choice <= 5:  # within a year of BASE, in order-ish
        seconds = draw(st.integers(0, 365 * 86_400))
        return (BASE + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    if choice == 6:  # anywhere in 0001..9999 with any whole-minute offset
        moment = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
        minutes = draw(st.integers(-23 * 60, 23 * 60))
        return moment.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat()
    if choice == 7:  # far ahead of the others (beyond the future skew) but before 2100
        days = draw(st.integers(31, 20_000))
        return (BASE + timedelta(days=days)).isoformat()
    if choice == 8:  # naive or lowercase or junk text
        return draw(
            st.sampled_from(
                ["2026-01-01T00:00:00", "2026-01-01t00:00:00z", "yesterday", "",
                 "2026-13-01T00:00Z"]
            )
        )
    return draw(json_scalars)


def base_record(kind: str, draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event_id": draw(st.sampled_from(["e1", "e2", "e3", "e4", "e5"])),  # duplicates
        "customer_id": draw(st.sampled_from(CUSTOMERS)),
        "ts": draw(timestamps()),
    }
    if kind == "click":
        record["type"] = draw(
            st.sampled_from(["page_view", "add_to_cart", "session_start", "search"])
        )
        if draw(st.booleans()):
            record["channel"] = draw(st.sampled_from(["web", "app", "ads"]))
        if draw(st.booleans()):
            record["device"] = draw(st.sampled_from(["mobile", "desktop"]))
    elif kind == "purchase":
        record.update(
            order_id="o1",
            amount=draw(st.floats(0, 1e4)),
            currency=draw(st.sampled_from(["EUR", "USD", "XXX"])),
        )
        if draw(st.booleans()):
            record["items"] = [{"product_id": "p", "quantity": draw(st.integers(1, 5))}]
    else:
        record["type"] = draw(
            st.sampled_from(["consent_granted", "consent_withdrawn", "erasure_requested"])
        )
    return record


@st.composite
def records(draw: st.DrawFn, kind: str) -> Any:
    """A plausible record of ``kind``, then zero or one mutation."""
    record = base_record(kind, draw)
    mutation = draw(st.integers(0, 9))
    if mutation == 1:  # missing key
        record.pop(draw(st.sampled_from(sorted(record))))
    elif mutation == 2:  # wrong type for a field
        record[draw(st.sampled_from(sorted(record)))] = draw(json_values)
    elif mutation == 3:  # unknown event type
        record["type"] = draw(st.text(string.ascii_letters + "_", max_size=12))
    elif mutation == 4:  # huge payload (above max_event_bytes or above a maxLength)
        record["page"] = "x" * draw(st.sampled_from([2049, 5000]))
    elif mutation == 5:  # extra unknown properties (allowed, ignored)
        record["extra"] = draw(json_values)
    elif mutation == 6:  # not an object at all
        return draw(json_values)
    return record


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, bytes | None, bytes | None]:
    """(stream, key, value) as they could arrive on an input topic."""
    stream = draw(st.sampled_from([*KINDS, "tick"]))
    shape = draw(st.integers(0, 9))
    if stream == "tick":
        key = draw(st.sampled_from([b"c1", b"c2", b"nobody", None]))
        if shape < 6:
            now = (BASE + timedelta(days=draw(st.integers(0, 800)))).timestamp()
            return stream, key, codec.dumps({"now": now})
        return stream, key, draw(st.one_of(st.none(), st.binary(max_size=20)))
    if shape == 0:  # arbitrary bytes (mostly malformed JSON)
        return stream, draw(st.one_of(st.none(), st.binary(max_size=8))), draw(
            st.binary(max_size=60)
        )
    if shape == 1:  # truncated JSON
        raw = codec.dumps(draw(records(stream)))
        return stream, b"c1", raw[: draw(st.integers(0, max(0, len(raw) - 1)))]
    if shape == 2:  # null value
        return stream, b"c1", None
    record = draw(records(stream))
    value = codec.dumps(record)
    if shape == 3:  # a key that differs from customer_id (or no key)
        return stream, draw(st.sampled_from([b"c9", None])), value
    cid = record.get("customer_id") if isinstance(record, dict) else None
    key = cid.encode() if isinstance(cid, str) else b"c1"
    return stream, key, value


# ----------------------------------------------------------------- properties


def _sample(h: Harness, name: str, labels: dict[str, str]) -> float:
    return h.registry.get_sample_value(name, labels) or 0.0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages(), min_size=1, max_size=25))
def test_every_input_ends_as_state_dead_letter_or_counted_skip(
    batch: list[tuple[str, bytes | None, bytes | None]],
) -> None:
    h = Harness(SETTINGS)
    try:
        for i, (stream, key, value) in enumerate(batch):
            before = h.counts()
            n_dead, n_changes, n_segments = (
                len(h.app.dead_letters.sent), len(h.app.changes.sent), len(h.app.segments.sent)
            )
            h.send(stream, key, value)  # must not raise
            after = h.counts()
            moved = {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k)}
            assert len(moved) == 1 and next(iter(moved.values())) == 1.0, (i, moved)
            (got_stream, outcome), _ = moved.popitem()
            assert got_stream == stream
            event(f"{stream}: {outcome}")
            if outcome == "dead_letter":
                assert len(h.app.dead_letters.sent) == n_dead + 1
                dl_key, raw = h.app.dead_letters.sent[-1]
                assert dl_key == key and raw is not None
                record = codec.loads(raw)
                event(f"dead letter: {record['reason']}")
                assert schema_errors("dead-letter", record) == []
                assert base64.b64decode(record["value_b64"]) == (value or b"")
                assert record["source"]["offset"] == h.offset - 1
                assert _sample(
                    h, "streamseg_dead_letters_written_total", {"reason": record["reason"]}
                ) >= 1.0
            else:
                assert len(h.app.dead_letters.sent) == n_dead
            if outcome == "processed" and stream in ("click", "purchase"):
                rec = codec.loads(value or b"{}")
                state = h.state(rec["customer_id"])
                assert state is not None and event_hash(stream, rec["event_id"]) in state.recent_ids
            for _, change in h.app.changes.sent[n_changes:]:
                assert change is not None
                assert schema_errors("segment-change", codec.loads(change)) == []
            for _, seg in h.app.segments.sent[n_segments:]:
                if seg is not None:  # None is an erasure tombstone
                    assert schema_errors("customer-segments", codec.loads(seg)) == []
        assert h.total() == len(batch)
    finally:
        h.close()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(KINDS), st.one_of(st.none(), st.binary(max_size=6)), st.data())
def test_validator_never_raises_and_invalid_is_a_valid_dead_letter(
    kind: str, key: bytes | None, data: st.DataObject
) -> None:
    value = data.draw(
        st.one_of(
            st.none(),
            st.binary(max_size=80),
            records(kind).map(codec.dumps),
            json_values.map(codec.dumps),
        )
    )
    result = Validator(SETTINGS).check(kind, key, value)  # type: ignore[arg-type]
    if isinstance(result, Invalid):
        from streamseg.engine.deadletters import dead_letter

        assert schema_errors("dead-letter", dead_letter(result, "t", 0, 0, key, value)) == []
    else:
        assert isinstance(result, Valid)
        ev = result.event
        lo, hi = SETTINGS.event_time_window()  # default 1970-01-01 .. 2100-01-01
        # a withdrawal or erasure is never refused for its time (Engine.admit sets it to the
        # event clock)
        assert math.isfinite(ev.ts) and (lo <= ev.ts < hi or ev.type in RESTRICTIVE)
        assert key is None or key == ev.customer_id.encode()
        assert ev.amount >= 0.0 and ev.items >= 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=40), st.integers(1, 8))
def test_duplicate_event_ids_are_counted_skips_within_the_window(
    ids: list[int], window: int
) -> None:
    """Re-sending a recent event id (within ``dedup_window``) changes nothing and is counted."""
    h = Harness(Settings(dedup_window=window))
    try:
        kept: list[int] = []  # the duplicate filter, oldest first
        for n, i in enumerate(ids):
            before = h.state("c1")
            dups = h.count("click", "duplicate")
            h.send_json(
                "click",
                {
                    "event_id": f"e{i}",
                    "customer_id": "c1",
                    "type": "page_view",
                    "ts": (BASE + timedelta(hours=n)).isoformat(),
                },
            )
            after = h.state("c1")
            assert after is not None
            if i in kept:
                assert h.count("click", "duplicate") == dups + 1
                assert before is not None and after.events == before.events
            else:
                kept = [*kept, i][-window:]
                assert after.events == (0 if before is None else before.events) + 1
        assert h.count("click", "processed") + h.count("click", "duplicate") == len(ids)
    finally:
        h.close()
