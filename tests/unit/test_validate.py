"""Validator reason codes, the event-time future-skew guard and tick decoding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from unit.ingest_harness import Harness, schema_errors

from streamseg import codec
from streamseg.config import DAY, Settings
from streamseg.engine.clock import EventClock
from streamseg.engine.events import Event
from streamseg.engine.processor import Engine
from streamseg.engine.validate import Invalid, Valid, Validator, pseudonymise
from streamseg.errors import ConfigError

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def click(**over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {"event_id": "e1", "customer_id": "c1", "type": "page_view",
                           "ts": "2026-01-01T00:00:00Z"}
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not None}


def buy(**over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {"event_id": "p1", "customer_id": "c1", "ts": "2026-01-01T00:00:00Z",
                           "order_id": "o1", "amount": 10.0, "currency": "EUR"}
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not None}


@pytest.mark.parametrize(
    ("kind", "key", "value", "reason", "field"),
    [
        ("click", b"c1", None, "not_object", None),
        ("click", b"c1", b"x" * 70_000, "too_large", None),
        ("click", b"c1", b'{"event_id": ', "not_json", None),
        ("click", b"c1", b"[1, 2]", "not_object", None),
        ("click", b"c1", codec.dumps(click(type="teleport")), "unknown_event_type", "type"),
        ("consent", b"c1", codec.dumps(click(type="page_view")), "unknown_event_type", "type"),
        # a missing field is named (an operator's dead letters had field null for these)
        ("click", b"c1", codec.dumps(click(customer_id=None)), "schema_invalid", "customer_id"),
        ("purchase", b"c1", codec.dumps({"event_id": "p", "customer_id": "c1", "amount": 1,
                                         "ts": "2026-01-01T00:00:00Z", "order_id": "o"}),
         "schema_invalid", "currency"),
        ("profile", b"c1", codec.dumps({"event_id": "p", "customer_id": "c1",
                                        "ts": "2026-01-01T00:00:00Z"}),
         "schema_invalid", "attributes"),
        ("click", b"c1", codec.dumps(click(event_id=7)), "schema_invalid", "event_id"),
        ("click", b"c1", codec.dumps(click(ts="2026-01-01T00:00:00")), "schema_invalid", "ts"),
        ("click", b"c1", codec.dumps(click(ts="1969-12-31T23:59:59Z")),
         "timestamp_out_of_range", "ts"),
        ("click", b"c1", codec.dumps(click(ts="2100-01-01T00:00:00Z")),
         "timestamp_out_of_range", "ts"),
        ("click", b"c2", codec.dumps(click()), "key_mismatch", "customer_id"),
        ("purchase", b"c1", codec.dumps(buy(amount="12")), "schema_invalid", "amount"),
        ("purchase", b"c1", codec.dumps(buy(currency="XXX")), "unsupported_currency", "currency"),
    ],
)
def test_reason_codes(
    kind: str, key: bytes, value: bytes | None, reason: str, field: str | None
) -> None:
    result = Validator(Settings()).check(kind, key, value)  # type: ignore[arg-type]
    assert isinstance(result, Invalid)
    assert (result.reason, result.field) == (reason, field)


def test_valid_purchase_converts_currency_and_counts_items() -> None:
    rec = buy(currency="USD", amount=100.0, discount=10.0,
              items=[{"product_id": "a", "quantity": 2}, {"product_id": "b", "quantity": 3}])
    result = Validator(Settings()).check("purchase", b"c1", codec.dumps(rec))
    assert isinstance(result, Valid)
    ev = result.event
    assert (ev.amount, ev.discount, ev.items) == (92.0, pytest.approx(9.2), 5)


def test_missing_key_is_accepted_and_unknown_fields_ignored() -> None:
    result = Validator(Settings()).check("click", None, codec.dumps(click(extra={"a": 1})))
    assert isinstance(result, Valid) and result.event.customer_id == "c1"


def test_pseudonymised_customer_id_is_the_keyed_hash() -> None:
    result = Validator(Settings(pseudonymise_key="k")).check("click", b"c1", codec.dumps(click()))
    assert isinstance(result, Valid)
    assert result.event.customer_id == pseudonymise("k", "c1") != pseudonymise("other", "c1")
    assert len(result.event.customer_id) == 32


def test_screen_is_relative_to_the_later_of_the_event_clock_and_the_wall_clock() -> None:
    t0 = BASE.timestamp()
    live = Engine(Settings(max_future_skew_s=7 * DAY), wall=lambda: t0)  # data at the wall clock
    ev = Event("click", "page_view", "e", "c1", t0 + 8 * DAY)
    assert live.screen(ev, t0 + 1 * DAY) is None  # exactly 7 days ahead: admitted
    rejected = live.screen(ev, t0 - DAY)
    assert rejected is not None and (rejected.reason, rejected.field) == (
        "timestamp_out_of_range", "ts"
    )
    assert rejected.message.endswith("ahead of the wall clock (2026-01-01T00:00:00Z)")
    assert live.screen(ev, None) is not None  # from the future, also as the very first event
    ahead = live.screen(Event("click", "page_view", "e", "c1", t0 + 20 * DAY), t0 + 10 * DAY)
    assert ahead is not None and ahead.message.endswith(
        "ahead of the event clock (2026-01-11T00:00:00Z)")
    # a 2026 history replayed later: a quiet spell longer than the skew is no reason
    later = Engine(Settings(max_future_skew_s=7 * DAY), wall=lambda: t0 + 300 * DAY)
    assert later.screen(ev, t0) is None
    assert later.screen(Event("click", "page_view", "e", "c1", t0 + 308 * DAY), t0) is not None


def test_the_event_time_window_is_a_setting_and_1997_is_accepted() -> None:
    old = codec.dumps(click(ts="1997-01-01T00:00:00Z"))
    assert isinstance(Validator(Settings()).check("click", b"c1", old), Valid)
    narrow = Settings(event_time_min="2000-01-01T00:00:00Z", event_time_max="2030-01-01")
    result = Validator(narrow).check("click", b"c1", old)
    assert isinstance(result, Invalid) and result.reason == "timestamp_out_of_range"
    late = Validator(narrow).check("click", b"c1", codec.dumps(click(ts="2030-01-01T00:00:00Z")))
    assert isinstance(late, Invalid) and late.reason == "timestamp_out_of_range"
    with pytest.raises(ConfigError):
        Settings.from_env({"STREAMSEG_EVENT_TIME_MIN": "yesterday"})
    with pytest.raises(ConfigError):
        Settings.from_env({"STREAMSEG_EVENT_TIME_MIN": "2200-01-01T00:00:00Z"})


def consent(typ: str, ts: str, cid: str = "c1") -> bytes:
    return codec.dumps({"event_id": f"{typ}-{ts}", "customer_id": cid, "type": typ, "ts": ts})


@pytest.mark.parametrize("typ", ["erasure_requested", "consent_withdrawn"])
def test_a_withdrawal_or_erasure_is_never_refused_for_its_time(typ: str) -> None:
    """An operator's erasure dated 2030 was dead-lettered (timestamp_out_of_range) and the
    customer kept being profiled. A withdrawal or erasure the window or the skew would
    refuse is applied at the event clock, and does not move it: replaying 2011 data on
    2026-11-27, a first fix set it to the wall clock and aged every customer 15 years."""
    window = {"event_time_min": "2000-01-01T00:00:00Z", "event_time_max": "2012-01-01T00:00:00Z"}
    narrow = Validator(Settings(**window))
    for ts in ("1997-05-01T00:00:00Z", "2031-01-01T00:00:00Z"):
        assert isinstance(narrow.check("consent", b"c1", consent(typ, ts)), Valid)
    grant = narrow.check("consent", b"c1", consent("consent_granted", "1997-05-01T00:00:00Z"))
    assert isinstance(grant, Invalid) and grant.reason == "timestamp_out_of_range"

    t2011 = datetime(2011, 6, 1, tzinfo=UTC).timestamp()
    wall = datetime(2026, 11, 27, tzinfo=UTC).timestamp()
    eng = Engine(Settings(max_future_skew_s=7 * DAY, **window), wall=lambda: wall)
    clock = EventClock()
    for when in (t2011 + 3 * 365 * DAY,  # 2014: past the window's end, not the skew
                 wall + 3 * 365 * DAY,  # 2029: past both
                 datetime(1997, 5, 1, tzinfo=UTC).timestamp()):  # before the window
        buy = eng.ingest(None, Event("click", "page_view", "v", "c1", t2011), clock)
        assert not isinstance(buy, Invalid) and buy.state is not None
        out = eng.ingest(buy.state, Event("consent", typ, f"x{when}", "c1", when), clock)
        assert not isinstance(out, Invalid) and out.state is not None
        assert out.state.withdrawn and out.erased == (typ == "erasure_requested")
        assert [n["event_time"] for n in out.notices] == (
            ["2011-06-01T00:00:00Z"] if typ == "consent_withdrawn" else [])  # erasure: none
        assert clock.max_seen == t2011  # at the event clock, which did not move
    regrant = Event("consent", "consent_granted", "g", "c1", wall + 3 * 365 * DAY)
    refused = eng.ingest(out.state, regrant, clock)
    assert isinstance(refused, Invalid) and refused.reason == "timestamp_out_of_range"


def test_the_skew_check_ignores_the_customers_own_last_seen() -> None:
    """Issue 8: after a restart the check compared with one customer's last_seen."""
    t0 = BASE.timestamp()
    eng = Engine(Settings(max_future_skew_s=7 * DAY), wall=lambda: t0)  # live data
    clock = EventClock()
    old = eng.ingest(None, Event("click", "page_view", "a0", "c1", t0), EventClock())
    assert not isinstance(old, Invalid) and old.state is not None
    # after a restart with no clock yet, c1 returns 30 days after its last event (and
    # the wall clock has moved on too): accepted (the old check rejected it against last_seen)
    eng.wall = lambda: t0 + 30 * DAY
    first = eng.ingest(old.state, Event("click", "page_view", "a", "c1", t0 + 30 * DAY), clock)
    assert not isinstance(first, Invalid) and first.state is not None
    # a restored clock is the reference, not c1's last_seen (day 30)
    restored = EventClock.from_dict(clock.to_dict())
    assert restored.max_seen == t0 + 30 * DAY
    far = eng.ingest(first.state, Event("click", "page_view", "c", "c1", t0 + 38 * DAY), restored)
    assert isinstance(far, Invalid) and far.reason == "timestamp_out_of_range"
    near = eng.ingest(first.state, Event("click", "page_view", "d", "c1", t0 + 36 * DAY), restored)
    assert not isinstance(near, Invalid)


def test_far_future_event_is_a_dead_letter_and_does_not_move_the_clock() -> None:
    h = Harness(Settings(max_future_skew_s=7 * DAY), wall=lambda: BASE.timestamp())  # live
    try:
        def send(eid: str, days: float) -> None:
            ts = (BASE + timedelta(days=days)).isoformat()
            h.send_json("click", click(event_id=eid, ts=ts))

        send("a", 0)
        send("b", 30)  # 30 days ahead of the clock (day 0): rejected
        send("c", 6)  # 6 days ahead: accepted, but the clock stays at the wall clock (day 0)
        send("d", 13)  # 13 days ahead of the wall clock: rejected (no creep through c)
        send("e", 20.5)  # rejected
        assert h.count("click", "processed") == 2.0
        assert h.count("click", "dead_letter") == 3.0
        letters = h.app.dead_letters.values()
        assert [d["reason"] for d in letters] == ["timestamp_out_of_range"] * 3
        assert [d["source"]["offset"] for d in letters] == [1, 3, 4]
        assert all(schema_errors("dead-letter", d) == [] for d in letters)
        assert h.ingest.clock.max_seen == BASE.timestamp()
        state = h.state("c1")
        assert state is not None and state.events == 2
    finally:
        h.close()


def test_an_event_dated_ahead_of_the_wall_clock_does_not_age_other_customers() -> None:
    """Reviewer's defect: one click stamped 6 days ahead (a phone with a wrong date) moved
    the event clock, and a bystander 86 days after her last purchase went ``at_risk``
    (90 days) 4 days early; a second such event could then go 13 days ahead, and so on."""
    t0 = BASE.timestamp()
    eng = Engine(Settings(max_future_skew_s=7 * DAY), wall=lambda: t0)
    clock = EventClock(3600.0)
    alice = None
    for eid, day in (("a1", -120), ("a2", -86)):
        out = eng.ingest(alice, Event("purchase", "purchase", eid, "alice", t0 + day * DAY,
                                      amount=20.0), clock)
        assert not isinstance(out, Invalid)
        alice = out.state
    assert alice is not None
    zed = eng.ingest(None, Event("click", "page_view", "z1", "zed", t0 + 6 * DAY), clock)
    assert not isinstance(zed, Invalid) and zed.state is not None  # applied to zed
    assert clock.max_seen == t0  # the clock stops at the wall clock
    now = clock.now()
    assert now is not None and eng.tick(alice, now).changes == []  # alice: still active
    assert alice.segments["lifecycle"][0] == "active"
    late = eng.ingest(zed.state, Event("click", "page_view", "z2", "zed", t0 + 12 * DAY), clock)
    assert isinstance(late, Invalid) and late.reason == "timestamp_out_of_range"
    # data dated ahead of the wall clock from its first event (a simulated future) runs on
    # a clock stopped at the wall clock; what is more than the skew ahead is dead-lettered
    future = EventClock()
    got = [eng.ingest(None, Event("click", "page_view", f"f{i}", "f", t0 + day * DAY), future)
           for i, day in enumerate((3, 6, 9))]
    assert [isinstance(g, Invalid) for g in got] == [False, False, True]
    assert future.max_seen == t0


def test_a_quiet_spell_longer_than_the_skew_never_wedges_the_worker() -> None:
    """Reviewer's defect: with the event clock as the only reference, one gap in the
    data longer than the skew made every later event a dead letter, for good."""
    wall = BASE.timestamp() + 400 * DAY  # the history is behind the wall clock
    h = Harness(Settings(max_future_skew_s=7 * DAY), wall=lambda: wall)
    try:
        for eid, days in (("a", 0), ("b", 30), ("c", 31), ("d", 200)):  # gaps of 30 and 169 d
            h.send_json("click", click(event_id=eid, ts=(BASE + timedelta(days=days)).isoformat()))
        h.send_json("click", click(event_id="e", ts=(BASE + timedelta(days=408)).isoformat()))
        assert h.count("click", "processed") == 4.0  # e: 8 days after the wall clock
        assert [d["reason"] for d in h.app.dead_letters.values()] == ["timestamp_out_of_range"]
        assert h.ingest.clock.max_seen == (BASE + timedelta(days=200)).timestamp()
    finally:
        h.close()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b'{"now": 1767225600}', 1767225600.0),
        (b'{"now": 1.5}', 1.5),
        (b'{"now": true}', "schema_invalid"),
        (b'{"now": "1"}', "schema_invalid"),
        (b'{"later": 1}', "schema_invalid"),
        (b"[]", "schema_invalid"),
        (b"{", "not_json"),
        (None, "not_object"),
    ],
)
def test_check_tick(value: bytes | None, expected: float | str) -> None:
    result = Validator(Settings()).check_tick(value)
    assert (result.reason if isinstance(result, Invalid) else result) == expected


def test_malformed_tick_is_a_dead_letter_not_a_crash() -> None:
    h = Harness(Settings())
    try:
        h.send("tick", b"c1", b"not json")
        h.send("tick", b"c1", codec.dumps({"now": 5.0}))  # no state for c1: counted skip
        assert h.count("tick", "dead_letter") == 1.0
        assert h.count("tick", "no_state") == 1.0
        assert h.app.dead_letters.values()[0]["source"]["topic"] == Settings().topic_ticks
    finally:
        h.close()


def test_a_withdrawal_dated_past_year_9999_in_utc_is_applied_at_the_event_clock() -> None:
    """Operator review 34: ``9999-12-31T23:59:59-23:59`` is valid RFC 3339 and year 10000
    in UTC. A withdrawal skips the static window, so it reached the future-skew screen,
    whose message formatted the time: ValueError crashed the agent, and every worker that
    read the record crashed again (a poison pill)."""
    import time

    settings = Settings()
    body = (b'{"event_id":"w1","customer_id":"c1","type":"consent_withdrawn",'
            b'"ts":"9999-12-31T23:59:59-23:59"}')
    checked = Validator(settings).check("consent", b"c1", body)
    assert isinstance(checked, Valid)
    engine, clock = Engine(settings), EventClock(0.0)
    clock.observe(time.time() - 86_400)
    admitted = engine.admit(checked.event, clock, wall=time.time())
    assert not isinstance(admitted, Invalid) and admitted.ts == clock.max_seen
