"""Bad input on the real broker: every input ends as state, a dead letter or a counted skip.

A seeded fuzzer throws malformed JSON, wrong types, missing keys, unknown
event types, huge payloads, null values, mismatched keys, timestamps far in
the past or future (static window and the event-clock skew guard), junk
clock ticks and duplicate event ids at a running worker, mixed with valid
events. Then:

* every invalid input has exactly one dead letter, schema-valid, pointing at
  its exact source topic / partition / offset, with the expected reason;
* the valid events produce exactly the changes of the pure engine;
* ``/metrics`` accounts for every input: consumed counters per stream sum to
  what was produced, duplicates and unknown-customer ticks are counted skips;
* the worker is still up and processes a valid event sent after the junk.

The property-based version of the same invariants (hypothesis, thousands of
inputs against the real ``Ingest`` glue) is tests/unit/test_robustness_props.py.
"""

from __future__ import annotations

import base64
import random
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka_helpers import free_port, produce
from prometheus_client.parser import text_string_to_metric_families
from worker_proc import Tail, Workers, change_ids, make_settings, reference_changes

from streamseg import codec
from streamseg.app import ensure_topics
from streamseg.config import DAY, Settings
from streamseg.engine.deadletters import KEPT_BYTES, KEPT_KEY_BYTES

T0 = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
Junk = tuple[str, bytes | None, bytes | None, str | None]  # stream, key, value, expected reason


def ts(day: float) -> str:
    return datetime.fromtimestamp(T0 + day * DAY, tz=UTC).isoformat()


def valid(kind: str, cid: str, eid: str, day: float) -> dict[str, Any]:
    body: dict[str, Any] = {"event_id": eid, "customer_id": cid, "ts": ts(day)}
    if kind == "purchase":
        body.update(order_id=eid, amount=30.0, currency="EUR")
    else:
        body["type"] = "page_view"
    return body


def junk(rng: random.Random, n: int) -> list[Junk]:
    """``n`` seeded bad inputs with the dead-letter reason each must get (None: not a letter)."""
    out: list[Junk] = []
    for i in range(n):
        kind = rng.choice(["click", "purchase", "consent"])
        cid = f"j{rng.randrange(5)}"
        rec = valid(kind, cid, f"junk-{i}", rng.uniform(0, 2))
        if kind == "consent":
            rec["type"] = "consent_granted"
        key: bytes | None = cid.encode()
        case = rng.randrange(13)
        reason: str | None
        if case == 0:
            value: bytes | None = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
            value = b"\xff" + value  # never valid UTF-8 JSON
            reason = "not_json"
        elif case == 1:
            raw = codec.dumps(rec)
            value, reason = raw[: rng.randrange(1, len(raw) - 1)], "not_json"
        elif case == 2:
            value, reason = None, "not_object"
        elif case == 3:
            value, reason = codec.dumps([rec]), "not_object"
        elif case == 4:
            rec.pop(rng.choice(["event_id", "customer_id", "ts"]))
            value, reason = codec.dumps(rec), "schema_invalid"
        elif case == 5:
            rec["event_id"] = rng.choice([7, None, [], {"a": 1}, True, ""])
            value, reason = codec.dumps(rec), "schema_invalid"
        elif case == 6:
            rec["type"] = rng.choice(["teleport", "purchase_refund", "PAGE_VIEW"])
            value, reason = codec.dumps(rec), "unknown_event_type"
        elif case == 7:
            rec["blob"] = "x" * 70_000
            value, reason = codec.dumps(rec), "too_large"
        elif case == 8:
            # outside the static window (default 1970-01-01 .. 2100-01-01; issue 8 opened
            # it to 1970 so that 1997 order histories replay)
            rec["ts"] = rng.choice(["1969-12-31T23:59:59Z", "1900-01-01T00:00:00Z",
                                    "2100-01-01T00:00:00Z", "2999-01-01T00:00:00+05:00"])
            value, reason = codec.dumps(rec), "timestamp_out_of_range"
        elif case == 9:  # in the future: ahead of the event clock and the wall clock by
            # more than the skew (7 days); behind the wall clock an event is never too early
            ahead = (time.time() - T0) / DAY + 8
            rec["ts"] = ts(rng.uniform(ahead, ahead + 9000))
            value, reason = codec.dumps(rec), "timestamp_out_of_range"
        elif case == 10:
            rec["ts"] = rng.choice(["2026-03-01T00:00:00", "yesterday", "2026-02-30T00:00:00Z"])
            value, reason = codec.dumps(rec), "schema_invalid"
        elif case == 11:
            key, value, reason = b"someone-else", codec.dumps(rec), "key_mismatch"
        else:
            if kind != "purchase":
                kind, rec = "purchase", valid("purchase", cid, f"junk-{i}", 1)
            rec["currency"] = "XBT"
            value, reason = codec.dumps(rec), "unsupported_currency"
        out.append((kind, key, value, reason))
    # as large as the broker takes (an operator's 0.8 MB page view made a dead letter over
    # the producer's 1 MB limit: the worker crashed on it at every restart), and a key
    # that large: each letter keeps a prefix (tests/unit/test_dead_letter_size.py)
    big = valid("click", "j1", "junk-big", 1.0)
    big["blob"] = "x" * 1_000_000
    out.append(("click", b"j1", codec.dumps(big), "too_large"))
    out.append(("click", b"k" * 600_000, codec.dumps(valid("click", "j2", "junk-key", 1.0)),
                "key_mismatch"))
    # junk on the internal ticks topic, and a tick for nobody (a counted skip)
    out.append(("tick", b"j1", b"not a tick", "not_json"))
    out.append(("tick", b"j1", codec.dumps({"now": "soon"}), "schema_invalid"))
    out.append(("tick", b"nobody", codec.dumps({"now": T0}), None))
    return out



def scrape(port: int) -> dict[tuple[str, str], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "streamseg_events_consumed_total":
                counts[(sample.labels["stream"], sample.labels["outcome"])] = sample.value
    return counts


def topics(settings: Settings) -> dict[str, str]:
    return {"click": settings.topic_clickstream, "purchase": settings.topic_purchases,
            "consent": settings.topic_consent, "tick": settings.topic_ticks}


async def test_junk_ends_as_dead_letters_or_counted_skips_and_worker_stays_up(
    tmp_path: Path, broker_url: str, bootstrap_servers: str, assert_schema  # type: ignore[no-untyped-def]
) -> None:
    port = free_port()
    settings = make_settings("badinput", tmp_path / "data", broker_url, partitions=2,
                             max_future_skew_s=7 * DAY, metrics_port=port)
    await ensure_topics(settings)
    b = bootstrap_servers
    topic = topics(settings)
    good = [("purchase", valid("purchase", f"v{i}", f"v{i}-1", i * 0.1)) for i in range(6)]
    good += [("click", valid("click", f"w{i}", f"w{i}-1", i * 0.1)) for i in range(4)]
    bad = junk(random.Random(20261125), 120)
    duplicates = [("purchase", good[0][1]), ("purchase", good[3][1]), ("click", good[7][1])]

    with Workers(broker_url, tmp_path) as workers:
        w = workers.new("badinput-worker", settings)
        await w.start().ready()
        async with Tail(b, settings.topic_changes) as changes, \
                Tail(b, settings.topic_dead_letters) as letters:
            # valid events first, so the event clock is set before the far-future junk
            for kind, rec in good:
                await produce(b, topic[kind], [(rec["customer_id"].encode(), codec.dumps(rec))])
            first = reference_changes(settings, [(k, r["customer_id"].encode(), codec.dumps(r))
                                                 for k, r in good])
            assert await changes.until(lambda t: len(t.records) >= len(first), timeout=30)

            positions: dict[tuple[str, int, int], str] = {}
            originals: dict[tuple[str, int, int], bytes] = {}
            for kind, key, value, reason in bad:
                [(part, off)] = await produce(b, topic[kind], [(key, value)])
                if reason is not None:
                    positions[(topic[kind], part, off)] = reason
                    originals[(topic[kind], part, off)] = value or b""
            for kind, rec in duplicates:
                await produce(b, topic[kind], [(rec["customer_id"].encode(), codec.dumps(rec))])
            # the worker is still up: a valid event after all of it is processed
            last = valid("purchase", "after-junk", "z1", 2)
            await produce(b, topic["purchase"], [(b"after-junk", codec.dumps(last))])
            assert await changes.until(
                lambda t: any(v["customer_id"] == "after-junk" for v in t.values()), timeout=60
            ), "the worker stopped processing after the junk"
            assert await letters.until(lambda t: len(t.records) >= len(positions), timeout=60,
                                       settle=2.0)
            await changes.until(lambda t: False, timeout=1.0)

            # every invalid input: exactly one dead letter, at its exact source position
            got: dict[tuple[str, int, int], str] = {}
            for (_, _, key, _), letter in zip(letters.records, letters.values(), strict=True):
                assert_schema("dead-letter", letter)
                src = letter["source"]
                where = (src["topic"], src["partition"], src["offset"])
                assert where not in got, f"two dead letters for {where}"
                got[where] = letter["reason"]
                kept = base64.b64decode(letter["value_b64"])
                assert letter["value_bytes"] == len(originals[where])
                assert (kept == originals[where] if letter["redaction"] is None else
                        letter["redaction"] == "truncated" and len(kept) == KEPT_BYTES
                        and originals[where].startswith(kept))
                assert letter["key_b64"] == (None if key is None else
                                             base64.b64encode(key).decode())
                assert key is None or len(key) <= KEPT_KEY_BYTES
            assert got == positions
            print("dead letters by reason:", dict(Counter(got.values())))

            # valid events (and their duplicates) give exactly the engine's changes
            valid_inputs = [(k, r["customer_id"].encode(), codec.dumps(r))
                            for k, r in [*good, *duplicates, ("purchase", last)]]
            expected = change_ids(reference_changes(settings, valid_inputs))
            assert sorted(change_ids(changes.values())) == sorted(expected)

        # /metrics accounts for every single input
        counts = scrape(port)
        produced = Counter(k for k, _ in good) + Counter(k for k, *_ in bad) + Counter(
            k for k, _ in duplicates) + Counter(["purchase"])
        for stream in ("click", "purchase", "consent", "tick"):
            consumed = sum(v for (s, _), v in counts.items() if s == stream)
            assert consumed == produced[stream], (stream, counts)
        assert counts[("purchase", "duplicate")] + counts[("click", "duplicate")] == 3
        assert counts[("tick", "no_state")] == 1
        dead = sum(v for (_, o), v in counts.items() if o == "dead_letter")
        assert dead == len(positions)
        assert w.alive() and not w.crashes()
