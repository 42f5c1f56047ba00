"""Consent and privacy flows through the real ``Ingest`` glue (in-memory transport).

Decisions under test (see docs/RELIABILITY.md):

* consent withdrawn -> events are counted ``no_consent`` skips, clock ticks too;
* erasure -> the profile is deleted, a tombstone goes to customer-segments and a
  suppression marker (withdrawn, no features, no segments) stays in the table,
  so events still in flight cannot re-create a profile from old data;
* consent granted after erasure starts a fresh, empty profile (a customer only
  known as withdrawn has an empty one anyway; any other keeps its profile);
* with ``pseudonymise_key`` the raw id never reaches state or outputs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from unit.ingest_harness import Harness

from streamseg import codec
from streamseg.config import DAY, Settings
from streamseg.engine.validate import pseudonymise

BASE = datetime(2026, 1, 1, tzinfo=UTC)
# these stories jump weeks of event time at once; the future-skew guard is
# tested on its own (test_validate.py)
LOOSE = Settings(max_future_skew_s=365 * DAY)


def at(days: float) -> str:
    return (BASE + timedelta(days=days)).isoformat()


def click(eid: str, cid: str, days: float) -> dict[str, Any]:
    return {"event_id": eid, "customer_id": cid, "type": "page_view", "ts": at(days)}


def buy(eid: str, cid: str, days: float) -> dict[str, Any]:
    return {"event_id": eid, "customer_id": cid, "ts": at(days), "order_id": eid,
            "amount": 20.0, "currency": "EUR"}


def consent(eid: str, cid: str, kind: str, days: float) -> dict[str, Any]:
    return {"event_id": eid, "customer_id": cid, "type": kind, "ts": at(days)}


def tick(h: Harness, cid: str, days: float) -> None:
    h.send("tick", cid.encode(), codec.dumps({"now": (BASE + timedelta(days=days)).timestamp()}))


def mentions(h: Harness, cid: str) -> list[Any]:
    return [v for _, v in h.app.changes.sent if v is not None and cid.encode() in v]


def test_withdrawn_unknown_customer_is_never_profiled_then_erased() -> None:
    h = Harness(LOOSE)
    h.send_json("consent", consent("w1", "c1", "consent_withdrawn", 0))
    marker = h.state("c1")
    assert marker is not None and marker.withdrawn and marker.events == 0
    h.send_json("click", click("e1", "c1", 1))
    h.send_json("purchase", buy("p1", "c1", 2))
    tick(h, "c1", 400)
    assert (h.count("click", "no_consent"), h.count("purchase", "no_consent")) == (1.0, 1.0)
    assert h.count("tick", "no_consent") == 1.0
    assert h.app.changes.sent == [] and h.app.segments.sent == []
    h.send_json("consent", consent("x1", "c1", "erasure_requested", 3))
    assert h.app.segments.sent == [(b"c1", None)]  # tombstone
    h.send_json("click", click("e2", "c1", 4))
    assert h.count("click", "no_consent") == 2.0
    assert h.app.changes.sent == []


def test_erasure_deletes_profile_and_no_later_change_mentions_the_customer() -> None:
    h = Harness(LOOSE)
    for n in range(4):
        h.send_json("purchase", buy(f"p{n}", "c1", 7 * n))
    h.send_json("click", click("k1", "c2", 1))  # a bystander
    assert len(mentions(h, "c1")) >= 2
    before = len(h.app.changes.sent)
    h.send_json("consent", consent("x1", "c1", "erasure_requested", 30))
    assert h.count("consent", "erased") == 1.0
    assert h.app.segments.sent[-1] == (b"c1", None)
    marker = h.state("c1")
    assert marker is not None and marker.withdrawn
    assert (marker.events, marker.purchases, marker.monetary, marker.segments) == (0, 0, 0.0, {})
    assert (marker.last_purchase, marker.gap_days, marker.recent_ids) == (None, None, [])
    # in-flight events from before the erasure, late ticks: skipped, nothing published
    h.send_json("purchase", buy("p9", "c1", 29))
    h.send_json("click", click("k9", "c1", 31))
    tick(h, "c1", 300)
    assert len(h.app.changes.sent) == before
    assert h.app.segments.sent[-1] == (b"c1", None)
    assert h.count("purchase", "no_consent") + h.count("click", "no_consent") == 2.0
    assert h.count("tick", "no_consent") == 1.0
    # the bystander is untouched
    c2 = h.state("c2")
    assert c2 is not None and c2.events == 1


def test_fresh_consent_after_erasure_starts_an_empty_profile() -> None:
    h = Harness(LOOSE)
    h.send_json("purchase", buy("p1", "c1", 0))
    h.send_json("purchase", buy("p2", "c1", 3))
    h.send_json("consent", consent("x1", "c1", "erasure_requested", 10))
    n_changes = len(h.app.changes.sent)
    h.send_json("consent", consent("g1", "c1", "consent_granted", 20))
    fresh = h.state("c1")
    assert fresh is not None and not fresh.withdrawn
    assert (fresh.first_seen, fresh.events, fresh.purchases) == (
        (BASE + timedelta(days=20)).timestamp(), 0, 0
    )
    h.send_json("purchase", buy("p3", "c1", 21))
    new = [codec.loads(v) for _, v in h.app.changes.sent[n_changes:] if v is not None]
    assert [(c["segmenter"], c["from_segment"], c["sequence"]) for c in new] == [
        ("frequency", None, 1),
        ("lifecycle", None, 1),
    ]
    assert new[0]["features"]["purchases_total"] == 1  # nothing of the old profile survives
    # the fresh profile's ids differ from the erased profile's, sequences restarting or not
    old_ids = {codec.loads(v)["change_id"] for _, v in h.app.changes.sent[:n_changes] if v}
    assert old_ids and not old_ids & {c["change_id"] for c in new}
    assert fresh.epoch == 1


def test_withdraw_then_regrant_resumes_the_kept_profile() -> None:
    h = Harness(LOOSE)
    h.send_json("purchase", buy("p1", "c1", 0))
    h.send_json("consent", consent("w1", "c1", "consent_withdrawn", 1))
    h.send_json("purchase", buy("p2", "c1", 2))
    assert h.count("purchase", "no_consent") == 1.0
    h.send_json("consent", consent("g1", "c1", "consent_granted", 3))
    h.send_json("purchase", buy("p3", "c1", 4))
    state = h.state("c1")
    assert state is not None and (state.purchases, state.withdrawn) == (2, False)
    assert h.count("purchase", "processed") == 2.0


def test_pseudonymised_ids_never_reach_state_or_outputs() -> None:
    h = Harness(Settings(pseudonymise_key="s3cret", max_future_skew_s=365 * DAY))
    h.send_json("purchase", buy("p1", "alice@example.com", 0))
    h.send_json("click", click("k1", "alice@example.com", 1))
    h.send_json("consent", consent("x1", "alice@example.com", "erasure_requested", 2))
    alias = pseudonymise("s3cret", "alice@example.com")
    raw = b"alice@example.com"
    assert list(h.app.state) == [alias.encode()]
    outputs = h.app.changes.sent + h.app.segments.sent
    assert outputs and all(k == alias.encode() for k, _ in outputs)
    assert not any(raw in (v or b"") for _, v in outputs)
    assert h.app.segments.sent[-1] == (alias.encode(), None)


def test_a_profile_only_customer_regranting_consent_keeps_its_sequences(tmp_path: Any) -> None:
    # a customer known from profile records only, in an attribute audience until every
    # attribute was removed, withdraws and grants consent again: it was taken for an
    # erasure marker and restarted its sequences at 1 in the same epoch, so its next
    # changes reused change ids already published with other content
    from streamseg.engine.events import Event
    from streamseg.engine.processor import Engine

    rules = {"audiences": {"vip": {"description": "VIP flag",
                                   "when": {"attribute": "x_vip", "=": True}}}}
    path = tmp_path / "aud.json"
    path.write_text(codec.dumps(rules).decode())
    eng = Engine(Settings(audiences_file=str(path)), wall=lambda: 1e12)
    published: dict[str, Any] = {}
    s = None
    steps = [Event("profile", "profile", "p1", "c1", 1 * DAY, attributes={"x_vip": True}),
             Event("profile", "profile", "p2", "c1", 2 * DAY, attributes={"x_vip": None}),
             Event("consent", "consent_withdrawn", "w1", "c1", 3 * DAY),
             Event("consent", "consent_granted", "g1", "c1", 4 * DAY),
             Event("profile", "profile", "p3", "c1", 5 * DAY, attributes={"x_vip": True}),
             Event("consent", "consent_withdrawn", "w2", "c1", 6 * DAY)]
    for ev in steps:
        out = eng.apply(s, ev)
        s = out.state
        for record in out.changes + out.notices:
            body = {k: v for k, v in record.items() if k != "features"}
            assert published.setdefault(record["change_id"], body) == body
    assert s is not None and s.segments["audience:vip"][2] == 3  # in, out, in
    assert len(published) == 6  # 3 moves, withdraw, grant, withdraw: each id once
