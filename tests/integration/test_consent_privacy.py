"""Consent and privacy on the real broker.

* A customer who withdrew consent is not profiled: later events change nothing.
* An erasure request deletes the profile (the changelog's latest value for the
  customer is a suppression marker with no features), writes a tombstone to
  customer-segments, and no change published afterwards mentions the customer,
  even when events for them keep arriving.
* A customer who withdraws consent gets a suppression notice on
  segment-changes and a ``suppressed`` customer-segments record with no
  segments; granting consent again lifts it (the segments come back).
* With ``STREAMSEG_PSEUDONYMISE_KEY`` the raw customer id appears in no output
  topic, not in the state changelog and not in dead letters (hashed key,
  redacted payload: see the dead-letter schema).

Ordering between topics is not guaranteed, so each step waits for an
observable effect: a change, a tombstone, the changelog value, or a dead
letter produced behind the events on the same partition (a barrier).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka_helpers import produce
from worker_proc import Tail, Workers, make_settings

from streamseg import codec
from streamseg.app import ensure_topics
from streamseg.config import DAY, Settings
from streamseg.engine.validate import pseudonymise

T0 = datetime(2026, 2, 1, tzinfo=UTC).timestamp()


def ts(day: float) -> str:
    return datetime.fromtimestamp(T0 + day * DAY, tz=UTC).isoformat()


def buy(cid: str, eid: str, day: float) -> tuple[bytes, bytes]:
    return cid.encode(), codec.dumps({"event_id": eid, "customer_id": cid, "ts": ts(day),
                                      "order_id": eid, "amount": 25.0, "currency": "EUR"})


def click(cid: str, eid: str, day: float) -> tuple[bytes, bytes]:
    return cid.encode(), codec.dumps({"event_id": eid, "customer_id": cid, "ts": ts(day),
                                      "type": "add_to_cart"})


def consent(cid: str, eid: str, kind: str, day: float) -> tuple[bytes, bytes]:
    return cid.encode(), codec.dumps({"event_id": eid, "customer_id": cid, "ts": ts(day),
                                      "type": kind})


def changelog_topic(settings: Settings) -> str:
    return f"{settings.app_id}-customer-state-changelog"


def latest(tail: Tail, key: bytes) -> Any:
    """The latest value for ``key`` in a tailed topic (None for a tombstone); KeyError if none."""
    found: list[bytes | None] = [v for _, _, k, v in tail.records if k == key]
    if not found:
        raise KeyError(key)
    return None if found[-1] is None else codec.loads(found[-1])


async def barrier(bootstrap: str, topic: str, keys: list[bytes], letters: Tail) -> None:
    """Produce a malformed message behind earlier ones on each key's partition; wait for all."""
    n = len(letters.records)
    tokens = [f"barrier-{n}-{key.decode()}".encode() for key in keys]
    await produce(bootstrap, topic, [(k, b"{" + t) for k, t in zip(keys, tokens, strict=True)])
    assert await letters.until(
        lambda t: all(any(tok in codec_b64(v) for v in t.values()) for tok in tokens), timeout=30
    ), "barrier dead letters never arrived"


def codec_b64(letter: dict[str, Any]) -> bytes:
    import base64

    return base64.b64decode(letter["value_b64"])


async def test_withdrawal_and_erasure(tmp_path: Path, broker_url: str,
                                      bootstrap_servers: str) -> None:
    settings = make_settings("consent", tmp_path / "data", broker_url, partitions=2)
    await ensure_topics(settings)
    b = bootstrap_servers
    with Workers(broker_url, tmp_path) as workers:
        w = workers.new("consent-worker", settings)
        await w.start().ready()
        async with Tail(b, settings.topic_changes) as changes, \
                Tail(b, settings.topic_segments) as segments, \
                Tail(b, settings.topic_dead_letters) as letters:
            # 1. alice and bob are profiled; carol and dave are only known by consent events
            await produce(b, settings.topic_purchases,
                          [buy("alice", "a1", 0), buy("alice", "a2", 5), buy("bob", "b1", 1)])
            await produce(b, settings.topic_consent, [
                consent("carol", "c0", "consent_withdrawn", 0),
                consent("dave", "d0", "consent_withdrawn", 0),
                consent("dave", "d1", "erasure_requested", 1),
            ])
            assert await changes.until(
                lambda t: {"alice", "bob"} <= {v["customer_id"] for v in t.values()}
                and len(t.records) >= 4, timeout=30, settle=1.0)
            async with Tail(b, changelog_topic(settings)) as state:
                assert await state.until(
                    lambda t: latest(t, b"carol") is not None if any(
                        k == b"carol" for _, _, k, _ in t.records) else False, timeout=30)
                assert latest(state, b"carol")["withdrawn"] is True
            assert await segments.until(lambda t: (b"dave", None) in
                                        [(k, v) for _, _, k, v in t.records], timeout=30)

            # 2. alice asks for erasure
            await produce(b, settings.topic_consent,
                          [consent("alice", "a9", "erasure_requested", 6)])
            assert await segments.until(lambda t: (b"alice", None) in
                                        [(k, v) for _, _, k, v in t.records], timeout=30)
            erased_at = len(changes.records)

            # 3. events keep coming for alice, carol and dave; bob goes on buying
            for topic, msgs in [
                (settings.topic_purchases, [buy("alice", "a3", 7), buy("carol", "c1", 7),
                                            buy("dave", "d2", 7), buy("bob", "b2", 8)]),
                (settings.topic_clickstream, [click("alice", "a4", 8), click("carol", "c2", 8),
                                              click("dave", "d3", 8)]),
            ]:
                await produce(b, topic, msgs)
                await barrier(b, topic, [b"alice", b"carol", b"dave", b"bob"], letters)
            await changes.until(lambda t: False, timeout=1.0)  # drain

            after = changes.values()[erased_at:]
            mentioned = {v["customer_id"] for v in after}
            assert mentioned <= {"bob"}, after
            assert not any(v["customer_id"] in ("carol", "dave") for v in changes.values())
            # the compacted view: alice and dave are tombstoned, bob is current
            assert latest(segments, b"alice") is None and latest(segments, b"dave") is None
            assert latest(segments, b"bob")["customer_id"] == "bob"
            assert not any(k == b"carol" for _, _, k, _ in segments.records)
            # the state changelog: alice's latest value is a bare suppression marker
            async with Tail(b, changelog_topic(settings)) as state:
                await state.until(lambda t: False, timeout=2.0)
                marker = latest(state, b"alice")
                assert marker["withdrawn"] is True
                assert (marker["events"], marker["purchases"], marker["monetary"]) == (0, 0, 0.0)
                assert (marker["segments"], marker["recent_ids"]) == ({}, [])
                assert latest(state, b"bob")["purchases"] == 2

            # 4. bob withdraws consent, then grants it again: suppression notice, then lifted
            # (bob's day-8 purchase, 7 days after his first, made him "high" at once)
            assert await segments.until(
                lambda t: latest(t, b"bob")["segments"]["frequency"]["segment"] == "high",
                timeout=30)
            current = latest(segments, b"bob")["segments"]
            await produce(b, settings.topic_consent,
                          [consent("bob", "b8", "consent_withdrawn", 9)])
            assert await segments.until(lambda t: latest(t, b"bob")["suppressed"], timeout=30)
            assert latest(segments, b"bob")["segments"] == {}
            await produce(b, settings.topic_consent, [consent("bob", "b9", "consent_granted", 10)])
            assert await segments.until(lambda t: not latest(t, b"bob")["suppressed"],
                                        timeout=30)
            assert latest(segments, b"bob")["segments"] == current
            assert await changes.until(lambda t: sum(
                v.get("kind") == "suppression" for v in t.values()) >= 2, timeout=30)
            notices = [v for v in changes.values() if v.get("kind") == "suppression"]
            assert [(n["customer_id"], n["suppressed"], n["sequence"]) for n in notices] == [
                ("bob", True, 1), ("bob", False, 2)]
            assert all(n["segments"] == current for n in notices)
        assert not w.crashes()


async def test_pseudonymised_ids_stay_out_of_outputs_and_state(
    tmp_path: Path, broker_url: str, bootstrap_servers: str
) -> None:
    settings = make_settings("pseudo", tmp_path / "data", broker_url, partitions=2,
                             pseudonymise_key="test-secret")
    await ensure_topics(settings)
    b = bootstrap_servers
    raw = "alice@example.com"
    alias = pseudonymise("test-secret", raw).encode()
    with Workers(broker_url, tmp_path) as workers:
        w = workers.new("pseudo-worker", settings)
        await w.start().ready()
        await produce(b, settings.topic_purchases, [buy(raw, "p1", 0), buy(raw, "p2", 3)])
        await produce(b, settings.topic_clickstream, [click(raw, "k1", 4)])
        bad = codec.loads(click(raw, "k2", 5)[1]) | {"device": "toaster", "page": f"/u/{raw}"}
        await produce(b, settings.topic_clickstream, [
            (raw.encode(), b'{"customer_id": "' + raw.encode() + b'"'),  # not JSON
            (raw.encode(), codec.dumps(bad)),  # schema-invalid
        ])
        async with Tail(b, settings.topic_changes) as changes, \
                Tail(b, settings.topic_segments) as segments, \
                Tail(b, settings.topic_dead_letters) as letters, \
                Tail(b, changelog_topic(settings)) as state:
            assert await changes.until(lambda t: len(t.records) >= 2, timeout=30, settle=1.0)
            assert await segments.until(lambda t: len(t.records) >= 1, timeout=30, settle=1.0)
            # states are written once per batch: the latest value holds all three events
            assert await state.until(
                lambda t: any(v is not None and b'"events":3' in v for *_, v in t.records),
                timeout=30, settle=1.0)
            assert await letters.until(lambda t: len(t.records) >= 2, timeout=30, settle=1.0)
            for tail in (changes, segments, state, letters):
                for _, _, key, value in tail.records:
                    assert key == alias
                    assert raw.encode() not in (value or b"")
            redacted = [codec_b64(v) for v in letters.values()]
            assert redacted[0] == b"" and codec.loads(redacted[1])["page"] == f"/u/{alias.decode()}"
            assert [v["redaction"] for v in letters.values()] == [
                "payload_dropped", "ids_pseudonymised"]
            assert {v["customer_id"] for v in changes.values()} == {alias.decode()}
        # a consent is copied to the other partition through the ticks topic: the alias
        # only, neither the raw key nor the raw payload (before: the original's bytes)
        await produce(b, settings.topic_consent, [consent(raw, "w1", "consent_withdrawn", 6)])
        async with Tail(b, settings.topic_ticks) as ticks:
            assert await ticks.until(lambda t: any(k for _, _, k, _ in t.records),
                                     timeout=30, settle=1.0)
            assert [k for _, _, k, _ in ticks.records if k is not None] == [alias]
            for _, _, key, value in ticks.records:
                assert raw.encode() not in (key or b"") + (value or b"")
        assert not w.crashes()
