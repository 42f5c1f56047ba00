"""Profile attributes: merge by event time, removal, dedupe, consent, validation, edge."""

from __future__ import annotations

from typing import Any

import pytest
from unit.ingest_harness import Harness, schema_errors

from streamseg import codec
from streamseg.config import DAY, Settings
from streamseg.engine.events import Event, kind_of, parse_ts
from streamseg.engine.features import CustomerState
from streamseg.engine.lookup import customer_answer
from streamseg.engine.processor import Engine
from streamseg.engine.segmenters.base import Assignment, NoPopulation, Trigger
from streamseg.engine.validate import Invalid, Valid, Validator
from streamseg.replay import replay_lines
from streamseg.resources import PACKAGE_DIR

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def profile(eid: str, at_day: float, cid: str = "c1", **attributes: Any) -> Event:
    return Event("profile", "profile", eid, cid, T0 + at_day * DAY, attributes=attributes)


def click(eid: str, at_day: float, cid: str = "c1") -> Event:
    return Event("click", "page_view", eid, cid, T0 + at_day * DAY, channel="web")


def buy(eid: str, at_day: float, cid: str = "c1") -> Event:
    return Event("purchase", "purchase", eid, cid, T0 + at_day * DAY, amount=20.0)


class CountryAudience(NoPopulation):
    """A tiny rule segmenter over an attribute (as a rule audience would be)."""

    name = "country"

    def assign(self, state: CustomerState, now: float) -> Assignment | None:
        country = state.attributes.get("country")
        return None if country is None else Assignment(str(country), "profile country")

    def due(self, state: CustomerState, after: float) -> float | None:
        return None

    def hold(self, state: CustomerState, current: str, verdict: Assignment, now: float,
             trigger: Trigger) -> bool:
        return False

    def describe(self, segment: str) -> str:
        return segment

    def segments(self) -> tuple[str, ...]:
        return ()


def fold(engine: Engine, events: list[Event]) -> CustomerState:
    state = None
    for ev in events:
        state = engine.apply(state, ev).state
    assert state is not None
    return state


def test_merge_by_event_time_per_attribute() -> None:
    eng = Engine(Settings())
    s = fold(eng, [profile("p1", 1, country="DE", age_band="25-34"),
                   profile("p2", 3, country="FR"),
                   # late: older than country@3 but newer than age_band@1 and a new name
                   profile("p3", 2, country="IT", age_band="35-44", x_tier="gold")])
    assert s.attributes == {"country": "FR", "age_band": "35-44", "x_tier": "gold"}
    assert s.attributes_ts == {"country": T0 + 3 * DAY, "age_band": T0 + 2 * DAY,
                               "x_tier": T0 + 2 * DAY}


def test_null_removes_and_a_late_older_value_does_not_come_back() -> None:
    eng = Engine(Settings())
    s = fold(eng, [profile("p1", 1, country="DE", household_size=2),
                   profile("p2", 5, country=None),
                   profile("p3", 4, country="FR")])
    assert s.attributes == {"household_size": 2}
    assert s.attributes_ts["country"] == T0 + 5 * DAY  # the removal is remembered
    s = fold(eng, [profile("p1", 1, "c2", country="DE"), profile("p4", 6, "c2", country="FR")])
    assert s.attributes == {"country": "FR"}  # a later value after a removal is kept


def test_equal_times_the_record_applied_last_wins() -> None:
    s = fold(Engine(Settings()), [profile("p1", 1, country="DE"), profile("p2", 1, country="AT")])
    assert s.attributes == {"country": "AT"}


def test_duplicate_profile_records_are_skipped() -> None:
    eng = Engine(Settings())
    out = eng.apply(None, profile("p1", 1, country="DE"))
    assert out.state is not None
    again = eng.apply(out.state, profile("p1", 2, country="FR"))
    assert again.skipped == "duplicate" and again.state is not None
    assert again.state.attributes == {"country": "DE"}


def test_a_profile_record_is_not_activity() -> None:
    eng = Engine(Settings())
    out = eng.apply(None, profile("p1", 10, country="DE"))
    assert out.changes == [] and out.state is not None
    s = out.state
    assert (s.events, s.sessions, s.purchases, s.segments) == (0, 0, 0, {})
    assert eng.due(s) is None  # nothing to re-evaluate for a profile-only customer
    s = eng.apply(s, click("e1", 2)).state  # an earlier click: first and last seen are its
    assert s is not None and s.first_seen == s.last_seen == T0 + 2 * DAY
    s = eng.apply(s, buy("b1", 3)).state
    assert s is not None
    before = (s.events, s.sessions, s.last_seen, s.d_events, list(s.d_channels), s.segments)
    kpis = eng.kpis.view()
    after = eng.apply(s, profile("p2", 30, age_band="65+")).state
    assert after is not None and after.attributes == {"country": "DE", "age_band": "65+"}
    assert (after.events, after.sessions, after.last_seen, after.d_events,
            list(after.d_channels), after.segments) == before
    assert kpis and eng.kpis.view() == kpis  # no order, session or revenue counted


def test_profile_records_change_no_behavioural_segment_on_the_sample() -> None:
    """The sample events with profile records interleaved publish the very same changes."""
    lines = (PACKAGE_DIR / "samples" / "events.jsonl").read_bytes().splitlines()
    mixed: list[bytes] = []
    seen: dict[str, int] = {}
    for line in lines:
        rec = _record(line)
        if rec is not None:
            cid, n = rec["customer_id"], seen.get(rec["customer_id"], 0)
            if n % 5 == 0:  # before the first event (same time), then after every fifth
                mixed.append(codec.dumps({"event_id": f"prof-{cid}-{n}", "customer_id": cid,
                                          "ts": rec["ts"], "attributes": {"country": "DE",
                                                                          "x_n": n}}))
            seen[cid] = n + 1
        mixed.append(line)
    cfg = Settings()
    letters: list[dict[str, Any]] = []
    plain = list(replay_lines(lines, cfg, dead_letters=letters.append))
    bad = len(letters)
    with_profiles = list(replay_lines(mixed, cfg, dead_letters=letters.append))
    assert len(mixed) > len(lines) + 100 and plain and with_profiles == plain
    assert len(letters) == 2 * bad  # the sample's bad lines, and no profile record


def _record(line: bytes) -> dict[str, Any] | None:
    """A decodable sample record with a customer id and a valid time, else None."""
    try:
        rec = codec.loads(line)
        parse_ts(rec["ts"])
    except (codec.DecodeError, TypeError, KeyError, ValueError):
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("customer_id"), str) else None


def test_rules_on_attributes_react_to_a_profile_record() -> None:
    eng = Engine(Settings(), [CountryAudience()])
    first = eng.apply(None, click("e1", 1))
    out = eng.apply(first.state, profile("p1", 2, country="DE"))
    assert [(c["to_segment"], c["trigger"], c["event_time"]) for c in out.changes] == [
        ("DE", "event", "2026-01-03T00:00:00Z")]
    late = eng.apply(out.state, profile("p0", 1.5, country="FR"))  # older: nothing moves
    assert late.changes == []


def test_erasure_removes_attributes_and_withdrawal_skips_profile_records() -> None:
    eng = Engine(Settings())
    s = fold(eng, [buy("b1", 0), profile("p1", 1, country="DE", x_vip=True)])
    status, body = customer_answer(eng, s, T0 + 2 * DAY)
    assert status == 200 and body["attributes"] == {"country": "DE", "x_vip": True}
    assert schema_errors("lookup-customer", body) == []
    off = eng.apply(s, Event("consent", "consent_withdrawn", "w1", "c1", T0 + 3 * DAY))
    assert off.state is not None
    skipped = eng.apply(off.state, profile("p2", 4, country="FR"))
    assert skipped.skipped == "no_consent"
    status, body = customer_answer(eng, off.state, T0 + 5 * DAY)
    assert body["attributes"] is None and schema_errors("lookup-customer", body) == []
    on = eng.apply(off.state, Event("consent", "consent_granted", "g1", "c1", T0 + 6 * DAY))
    assert on.state is not None and on.state.attributes == {"country": "DE", "x_vip": True}
    gone = eng.apply(on.state, Event("consent", "erasure_requested", "x1", "c1", T0 + 7 * DAY))
    assert gone.erased and gone.state is not None
    assert gone.state.attributes == {} and gone.state.attributes_ts == {}
    assert eng.apply(gone.state, profile("p3", 8, country="FR")).skipped == "no_consent"
    assert customer_answer(eng, gone.state, T0 + 9 * DAY)[0] == 404


def test_a_profile_only_customer_keeps_attributes_across_withdraw_and_grant() -> None:
    eng = Engine(Settings())
    s = fold(eng, [profile("p1", 1, country="DE"),
                   Event("consent", "consent_withdrawn", "w1", "c1", T0 + 2 * DAY),
                   Event("consent", "consent_granted", "g1", "c1", T0 + 3 * DAY)])
    assert not s.withdrawn and s.attributes == {"country": "DE"}


def record(**over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {"event_id": "p1", "customer_id": "c1", "ts": "2026-01-01T00:00:00Z",
                           "attributes": {"country": "DE"}}
    rec.update(over)
    return rec


GOOD_ATTRIBUTES: dict[str, Any] = {
    "country": "US", "region": "US-OH", "city": "Columbus", "postal_code": "43004",
    "language": "pt-BR", "age_band": "65+", "birth_year": 1950, "income_band": "Under 15K",
    "household_size": 5, "kids_count": 0, "marital_status": "unmarried",
    "home_ownership": "probable_renter", "signup_date": "2016-03-01", "loyalty_member": True,
    "x_household_comp": "2 Adults Kids", "x_score": 0.5, "x_flag": False, "x_gone": None,
}


def test_every_known_attribute_validates() -> None:
    rec = record(attributes=GOOD_ATTRIBUTES, type="profile")
    assert schema_errors("customer-profile", rec) == []
    result = Validator(Settings()).check("profile", b"c1", codec.dumps(rec))
    assert isinstance(result, Valid)
    ev = result.event
    assert (ev.kind, ev.type, ev.attributes) == ("profile", "profile", GOOD_ATTRIBUTES)
    assert kind_of(rec) == "profile" and kind_of(record()) == "profile"


@pytest.mark.parametrize(
    ("over", "reason", "field"),
    [
        ({"attributes": {"shoe_size": 42}}, "schema_invalid", "attributes.shoe_size"),
        ({"attributes": {"X_Tier": "a"}}, "schema_invalid", "attributes.X_Tier"),
        ({"attributes": {"household_size": "5+"}}, "schema_invalid", "attributes.household_size"),
        ({"attributes": {"country": "Germany"}}, "schema_invalid", "attributes.country"),
        ({"attributes": {"age_band": "old"}}, "schema_invalid", "attributes.age_band"),
        ({"attributes": {"signup_date": "2016-13-01"}}, "schema_invalid",
         "attributes.signup_date"),
        ({"attributes": {"marital_status": "Married"}}, "schema_invalid",
         "attributes.marital_status"),
        ({"attributes": {"x_tags": ["a", "b"]}}, "schema_invalid", "attributes.x_tags"),
        ({"attributes": {"x_nested": {"a": 1}}}, "schema_invalid", "attributes.x_nested"),
        ({"attributes": {}}, "schema_invalid", "attributes"),
        ({"attributes": None}, "schema_invalid", "attributes"),
        ({"attributes": "DE"}, "schema_invalid", "attributes"),
        ({"type": "page_view"}, "unknown_event_type", "type"),
        ({"customer_id": "c2"}, "key_mismatch", "customer_id"),
        ({"ts": "2026-01-01T00:00:00"}, "schema_invalid", "ts"),
    ],
)
def test_invalid_profile_records(over: dict[str, Any], reason: str, field: str) -> None:
    rec = record(**over)
    result = Validator(Settings()).check("profile", b"c1", codec.dumps(rec))
    assert isinstance(result, Invalid), result
    assert (result.reason, result.field) == (reason, field), result
    if reason == "schema_invalid" and field.startswith("attributes"):
        assert schema_errors("customer-profile", rec) != []  # the schema says the same


def test_missing_attributes_object_is_invalid() -> None:
    rec = record()
    del rec["attributes"]
    result = Validator(Settings()).check("profile", b"c1", codec.dumps(rec))
    assert isinstance(result, Invalid) and result.reason == "schema_invalid"
    assert "attributes" in result.message


def test_the_agent_consumes_profiles_and_dead_letters_bad_ones() -> None:
    h = Harness(Settings(partitions=1))
    try:
        h.send_json("purchase", {"event_id": "b1", "customer_id": "c1", "order_id": "o1",
                                 "ts": "2026-01-01T00:00:00Z", "amount": 5, "currency": "EUR"})
        h.send_json("profile", record(ts="2026-01-02T00:00:00Z",
                                      attributes={"country": "DE", "x_tier": "gold"}))
        h.send_json("profile", record(event_id="p2", attributes={"shoe_size": 42}))
        h.send_json("profile", record())  # the same event id: a duplicate
        assert h.count("profile", "processed") == 1
        assert h.count("profile", "dead_letter") == 1
        assert h.count("profile", "duplicate") == 1
        raw = h.app.state.get(b"c1")
        state = CustomerState.from_dict(codec.loads(raw))
        assert state.attributes == {"country": "DE", "x_tier": "gold"}
        assert state.purchases == 1 and state.events == 1
        letters = [codec.loads(v) for _, v in h.app.dead_letters.sent]
        assert [(d["reason"], d["field"]) for d in letters] == [
            ("schema_invalid", "attributes.shoe_size")]
        assert all(schema_errors("dead-letter", d) == [] for d in letters)
    finally:
        h.close()


def test_a_customers_attribute_names_are_capped_by_dead_letters() -> None:
    """A producer that names attributes per product (``x_viewed_<sku>``) grew one state
    without bound: past about 1 MB its changelog record cannot be sent and every worker
    that takes the partition crashes on it. A record that would give the customer more
    than ``STREAMSEG_MAX_ATTRIBUTES`` names is dead-lettered, in the worker and in replay
    alike; one that only sets or removes names the customer holds is applied."""
    settings = Settings(partitions=1, max_attributes=70)
    batches = [{f"x_v{i}_{j}": j for j in range(30)} for i in range(3)]
    lines = [record(event_id=f"p{i}", ts=f"2026-01-0{i + 1}T00:00:00Z", attributes=attrs)
             for i, attrs in enumerate(batches)]
    lines.append(record(event_id="p9", ts="2026-01-09T00:00:00Z",
                        attributes={"x_v0_0": None, "x_v1_1": "again"}))
    h = Harness(settings)
    try:
        for line in lines:
            h.send_json("profile", line)
        assert h.count("profile", "processed") == 3 and h.count("profile", "dead_letter") == 1
        state = CustomerState.from_dict(codec.loads(h.app.state.get(b"c1")))
        assert len(state.attributes_ts) == 60 and "x_v0_0" not in state.attributes
        [letter] = [codec.loads(v) for _, v in h.app.dead_letters.sent]
        assert (letter["reason"], letter["field"]) == ("too_many_attributes", "attributes")
        assert letter["message"] == ("customer c1 holds 60 attribute names; this record adds "
                                     "30 more (at most 70: STREAMSEG_MAX_ATTRIBUTES)")
        assert schema_errors("dead-letter", letter) == []
    finally:
        h.close()
    letters: list[dict[str, Any]] = []
    list(replay_lines([codec.dumps(r) for r in lines], settings, "p.jsonl", letters.append))
    assert [(d["reason"], d["source"]["offset"]) for d in letters] == [("too_many_attributes", 3)]


def test_a_withdrawn_customers_record_is_skipped_not_refused_by_the_cap() -> None:
    """A reviewer's case: with the cap reached, a withdrawn customer's profile record was
    dead-lettered (its bytes kept) instead of skipped as ``no_consent``."""
    eng = Engine(Settings(max_attributes=2))
    state = fold(eng, [profile("p1", 1, x_a=1, x_b=2)])
    state = eng.apply(state, Event("consent", "consent_withdrawn", "w1", "c1", T0 + 2 * DAY)).state
    late = profile("p2", 3, x_c=3)
    assert eng.refuse(state, late) is None
    assert eng.apply(state, late).skipped == "no_consent"
