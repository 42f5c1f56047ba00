"""Consent dates that contradict the read order (a fourth review, 33d): a withdrawal dated
before a recorded grant is in force after it; an in-order re-grant is not lost to another
partition's read-ahead; routine grants trim nothing; a folded profile record is capped."""
from __future__ import annotations

from typing import Any

from unit.test_consent_log import consent_event, purchase

from streamseg.config import DAY, Settings
from streamseg.engine.events import Event
from streamseg.engine.processor import Engine


def test_purchases_during_a_withdrawal_dated_before_the_latest_grant_are_not_profiled() -> None:
    # consented by an event (day 10), a withdrawal whose device clock is behind (dated day 5,
    # read at day 20): it applies (privacy first). The purchases made while withdrawn
    # (days 21-22) must not be profiled; they are folded into the profile.
    eng = Engine(Settings())
    s = eng.apply(None, purchase("e1", 0.0)).state
    s = eng.apply(s, consent_event("g1", "consent_granted", 10 * DAY)).state
    s = eng.apply(s, purchase("e2", 15 * DAY), 15 * DAY).state
    off = eng.apply(s, consent_event("w1", "consent_withdrawn", 5 * DAY), 20 * DAY)
    assert off.state.withdrawn
    print("log", off.state.consent_log)
    before = off.state.purchases
    during = eng.apply(off.state, purchase("e3", 21 * DAY, 500.0), 21 * DAY)
    print("skipped", during.skipped, "purchases", before, "->", during.state.purchases,
          "folded", [(c["segmenter"], c["to_segment"]) for c in during.folded])
    assert during.skipped == "no_consent"
    assert during.state.purchases == before  # not profiled while withdrawn


def test_a_folded_profile_record_is_checked_against_max_attributes() -> None:
    from streamseg.engine.validate import Invalid
    eng = Engine(Settings(max_attributes=2))
    s = eng.apply(None, purchase("e1", 0.0)).state
    s = eng.apply(s, consent_event("g0", "consent_granted", 0.5)).state
    s = eng.apply(s, Event("profile", "profile", "p1", "c1", 1.0,
                           attributes={"a": "1", "b": "2"})).state
    s = eng.apply(s, consent_event("w1", "consent_withdrawn", 2 * DAY)).state
    rec = Event("profile", "profile", "p2", "c1", 1.5, attributes={"c": "3", "d": "4"})
    why = eng.refuse(s, rec)
    out = eng.apply(s, rec)
    print("refuse:", why, "skipped:", out.skipped, "attributes:", sorted(out.state.attributes))
    assert isinstance(why, Invalid) or len(out.state.attributes_ts) <= 2


def test_replay_a_withdrawal_dated_before_a_grant_profiles_nothing_after_it() -> None:
    from unit.test_edge_batch import buy, consent

    from streamseg.replay import Replayer

    def run(during: bool) -> Any:
        # the withdrawal from a device whose clock is behind, read at day 20
        lines = [buy("e1", "c1", 0.0), consent("g1", "c1", "consent_granted", 10.0),
                 buy("e2", "c2", 20.0), consent("w1", "c1", "consent_withdrawn", 5.0)]
        if during:
            lines += [buy(f"d{i}", "c1", 21.0 + i) for i in range(6)]  # made while withdrawn
        lines += [buy("e3", "c2", 40.0), consent("g2", "c1", "consent_granted", 41.0)]
        r = Replayer(Settings())
        out = []
        for line in lines:
            res = r.feed(line)
            out += [] if not isinstance(res, list) else res
        notes = [c for c in out if c.get("customer_id") == "c1" and "suppressed" in c]
        return r.states["c1"], notes
    quiet, nq = run(False)
    busy, nb = run(True)
    print("purchases", quiet.purchases, busy.purchases)
    print("notice quiet", [{k: v["segment"] for k, v in n["segments"].items()} for n in nq][-1:])
    print("notice busy ", [{k: v["segment"] for k, v in n["segments"].items()} for n in nb][-1:])
    assert busy.purchases == quiet.purchases


def test_worker_an_in_order_regrant_holds_when_another_partition_reads_ahead() -> None:
    # worker, one consent partition read in order (withdrawal day 1, re-grant day 2); the
    # purchases topic, read ahead (a restart backlog), had reached day 10 for another customer
    from unit.test_edge_batch import buy, consent, harness
    h, table = harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=1)
        h.send("purchase", b"c2", buy("e2", "c2", 10.0), partition=0)
        h.send("consent", b"c1", consent("w1", "c1", "consent_withdrawn", 1.0), partition=1)
        h.send("consent", b"c1", consent("g1", "c1", "consent_granted", 2.0), partition=1)
        st = table.state(1, "c1")
        print("c1 withdrawn:", st["withdrawn"], "log:", st["consent_log"])
        assert not st["withdrawn"]
    finally:
        h.close()


def test_worker_a_withdrawal_dated_before_a_grant_folds_nothing_after_it() -> None:
    from unit.test_edge_batch import buy, consent, harness
    h, table = harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=1)
        h.send("consent", b"c1", consent("g1", "c1", "consent_granted", 10.0), partition=1)
        h.send("consent", b"c1", consent("w1", "c1", "consent_withdrawn", 5.0), partition=1)
        for i in range(4):
            h.send("purchase", b"c1", buy(f"d{i}", "c1", 11.0 + i), partition=1)
        st = table.state(1, "c1")
        print("withdrawn:", st["withdrawn"], "purchases:", st["purchases"])
        assert st["purchases"] == 1
    finally:
        h.close()


def test_routine_grants_trim_nothing_for_a_customer_who_never_withdrew() -> None:
    # a consent platform that re-sends the grant each visit (every minute here); the
    # customer never withdrew. A purchase of 40 minutes ago, read late (a backlog, another
    # topic), is refused for consent.
    eng = Engine(Settings())
    t0 = 100 * DAY
    s = eng.apply(None, purchase("e1", t0)).state
    for i in range(40):
        s = eng.apply(s, consent_event(f"g{i}", "consent_granted", t0 + 60.0 * (i + 1))).state
    late = eng.apply(s, purchase("e2", t0 + 60.0 * 5 + 30))  # between two grants, 35 min ago
    print("log head", s.consent_log[:3], "skipped:", late.skipped)
    assert late.skipped is None and late.state.purchases == 2
