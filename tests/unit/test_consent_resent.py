"""Re-sent and mis-dated consent (a fifth review, 33e): a grant overruled by a late
restriction stays overruled when read again; re-sent withdrawals trim nothing; a
withdrawal stamped ahead is in force from when it was read."""
from __future__ import annotations

from typing import Any

from unit.test_consent_log import consent_event, purchase

from streamseg.config import DAY, Settings
from streamseg.engine.processor import Engine


def _withdrawn_by_late_withdrawal(eng: Engine) -> Any:
    s = eng.apply(None, purchase("e1", 0.0)).state
    s = eng.apply(s, consent_event("w0", "consent_withdrawn", 1 * DAY), 1 * DAY).state
    s = eng.apply(s, consent_event("g1", "consent_granted", 10 * DAY), 10 * DAY).state
    s = eng.apply(s, purchase("e2", 11 * DAY), 11 * DAY).state
    # a withdrawal dated day 5 (device behind / late producer), read at day 20: applies,
    # and is "in force after the grant of day 10 too"
    off = eng.apply(s, consent_event("w1", "consent_withdrawn", 5 * DAY), 20 * DAY)
    assert off.state.withdrawn
    return off


def test_a_resent_grant_stays_stale_after_a_late_withdrawal() -> None:
    eng = Engine(Settings())
    off = _withdrawn_by_late_withdrawal(eng)
    # the very same grant of day 10, read again (producer retry, re-feed, copy)
    again = eng.apply(off.state, consent_event("g1", "consent_granted", 10 * DAY), 21 * DAY)
    after = eng.apply(again.state, purchase("e3", 22 * DAY, 500.0), 22 * DAY)
    assert again.skipped == "stale_consent" and again.state.withdrawn
    assert after.skipped == "no_consent" and after.changes == []


def test_an_older_grant_does_not_lift_a_late_withdrawal() -> None:
    eng = Engine(Settings())
    off = _withdrawn_by_late_withdrawal(eng)
    # a grant dated day 7 (before the grant of day 10 the withdrawal is in force after)
    on = eng.apply(off.state, consent_event("g2", "consent_granted", 7 * DAY), 21 * DAY)
    after = eng.apply(on.state, purchase("e3", 22 * DAY, 500.0), 22 * DAY)
    # either the grant is stale (in force from day 10), or it holds and the purchase counts
    assert on.skipped == "stale_consent" or after.skipped is None


def test_resent_withdrawals_trim_no_late_pre_withdrawal_purchase_away() -> None:
    eng = Engine(Settings())
    s = eng.apply(None, purchase("e1", 0.0)).state
    s = eng.apply(s, consent_event("w0", "consent_withdrawn", 1 * DAY), 1 * DAY).state
    s = eng.apply(s, consent_event("g1", "consent_granted", 10 * DAY), 10 * DAY).state
    s = eng.apply(s, consent_event("w1", "consent_withdrawn", 20 * DAY), 20 * DAY).state
    for i in range(40):  # the consent platform re-sends the opt-out (a daily sync)
        t = (21 + i) * DAY
        s = eng.apply(s, consent_event(f"w{i + 2}", "consent_withdrawn", t), t).state
    late = eng.apply(s, purchase("e2", 15 * DAY, 900.0), 61 * DAY)  # made while consent held
    assert late.state.purchases == 2  # folded into the withdrawn profile, as with 1 withdrawal


def test_worker_a_resent_grant_stays_stale_after_a_late_withdrawal() -> None:
    from unit.test_consent_copies import notices
    from unit.test_edge_batch import buy, consent, harness
    h, table = harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.send("consent", b"c1", consent("w0", "c1", "consent_withdrawn", 1.0), partition=0)
        h.send("consent", b"c1", consent("g1", "c1", "consent_granted", 10.0), partition=0)
        h.send("purchase", b"c1", buy("e2", "c1", 11.0), partition=0)
        h.send("purchase", b"c1", buy("e9", "c9", 20.0), partition=0)  # clock to day 20
        # a withdrawal dated day 5 (device clock behind), read at day 20: applies
        h.send("consent", b"c1", consent("w1", "c1", "consent_withdrawn", 5.0), partition=0)
        assert table.state(0, "c1")["withdrawn"]
        # the same grant message sent again by its producer (a retry): another offset
        h.send("consent", b"c1", consent("g1", "c1", "consent_granted", 10.0), partition=0)
        st = table.state(0, "c1")
        assert st["withdrawn"] and notices(h) == [True, False, True]
    finally:
        h.close()


def test_a_resent_grant_after_a_late_erasure_brings_no_data_back() -> None:
    eng = Engine(Settings())
    s = eng.apply(None, purchase("e1", 0.0)).state
    s = eng.apply(s, consent_event("w0", "consent_withdrawn", 1 * DAY), 1 * DAY).state
    s = eng.apply(s, consent_event("g1", "consent_granted", 10 * DAY), 10 * DAY).state
    s = eng.apply(s, purchase("e2", 11 * DAY), 11 * DAY).state
    # an erasure dated day 5 (device clock behind), read at day 20: erases
    off = eng.apply(s, consent_event("x1", "erasure_requested", 5 * DAY), 20 * DAY)
    assert off.erased
    # the grant of day 10 sent again by its producer
    again = eng.apply(off.state, consent_event("g1", "consent_granted", 10 * DAY), 21 * DAY)
    # a purchase made on day 15 -- before the erasure was read/applied -- read late
    late = eng.apply(again.state, purchase("e3", 15 * DAY, 900.0), 21 * DAY)
    assert late.skipped == "no_consent"


def test_a_purchase_after_a_future_stamped_withdrawal_is_not_folded_in() -> None:
    eng = Engine(Settings())
    s = eng.apply(None, purchase("e1", 0.0)).state
    s = eng.apply(s, purchase("e2", 20 * DAY), 20 * DAY).state
    # the withdrawal, stamped by a device 6 days ahead, read when reading is at day 20
    off = eng.apply(s, consent_event("w1", "consent_withdrawn", 26 * DAY), 20 * DAY)
    assert off.state.withdrawn
    # purchases dated days 21-23: made after the withdrawal was read (the clock was at day 20)
    for i, d in enumerate((21, 22, 23)):
        out = eng.apply(off.state, purchase(f"p{i}", d * DAY, 300.0), d * DAY)
    on = eng.apply(out.state, consent_event("g1", "consent_granted", 27 * DAY), 27 * DAY)
    assert out.state.purchases == 2  # nothing made while withdrawn is profiled
    assert on.state.purchases == 2 and not on.state.withdrawn
