"""Consent by event time (streamseg.engine.consentlog): inputs dated while consent was
withdrawn or before an erasure are not profiled, whatever order they are read in; a grant
dated at or before the latest withdrawal or erasure is not applied."""

from __future__ import annotations

from typing import Any

import pytest
from unit.test_edge_batch import buy, consent

from streamseg.config import DAY, Settings
from streamseg.engine.events import Event
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine
from streamseg.engine.validate import Invalid
from streamseg.replay import Replayer
from streamseg.tools import volatility


def purchase(eid: str, ts: float, amount: float = 20.0) -> Event:
    """A purchase of customer c1 (the consent tests' customer)."""
    return Event("purchase", "purchase", eid, "c1", ts, amount=amount)


def consent_event(eid: str, typ: str, ts: float) -> Event:
    return Event("consent", typ, eid, "c1", ts)


def test_a_purchase_dated_before_an_erasure_does_not_come_back_after_a_new_grant() -> None:
    # purchase, erasure, grant; then a purchase dated before the erasure (an offline till,
    # or the purchases topic read behind the consent topic): the erased person's data
    eng = Engine(Settings())
    s = eng.apply(None, purchase("e1", 0.0)).state
    s = eng.apply(s, consent_event("x1", "erasure_requested", 1 * DAY)).state
    s = eng.apply(s, consent_event("g1", "consent_granted", 2 * DAY)).state
    late = eng.apply(s, purchase("e0", 0.5 * DAY))
    assert late.skipped == "no_consent" and late.changes == []
    assert late.state.purchases == 0 and late.state.epoch == 1
    fresh = eng.apply(late.state, purchase("e2", 3 * DAY))  # after the grant: profiled
    assert fresh.skipped is None and fresh.state.purchases == 1
    assert [c["epoch"] for c in fresh.changes] == [1] * len(fresh.changes) != []


def test_a_purchase_dated_while_consent_was_withdrawn_is_not_profiled_after_the_grant() -> None:
    eng = Engine(Settings())
    s = eng.apply(None, purchase("e1", 0.0)).state
    s = eng.apply(s, consent_event("w1", "consent_withdrawn", 1 * DAY)).state
    s = eng.apply(s, consent_event("g1", "consent_granted", 3 * DAY)).state
    during = eng.apply(s, purchase("e2", 2 * DAY))  # read after the grant, made before it
    assert during.skipped == "no_consent" and during.state.purchases == 1
    assert eng.apply(s, purchase("e3", 4 * DAY)).state.purchases == 2


def test_a_grant_at_the_same_time_as_the_latest_restriction_is_not_applied() -> None:
    eng = Engine(Settings())
    s = eng.apply(None, consent_event("x1", "erasure_requested", 2 * DAY)).state
    tie = eng.apply(s, consent_event("g1", "consent_granted", 2 * DAY))
    assert tie.skipped == "stale_consent" and tie.state.withdrawn


def test_an_erasure_marker_saved_before_the_log_still_refuses_an_older_grant() -> None:
    # a marker written by the previous release (no consent_log): its first_seen is the
    # erasure's time (review 33)
    eng = Engine(Settings())
    marker = eng.apply(None, consent_event("x2", "erasure_requested", 3 * DAY)).state
    data = marker.to_dict()
    del data["consent_log"]
    old = CustomerState.from_dict(data)
    out = eng.apply(old, consent_event("g1", "consent_granted", 2 * DAY))
    assert out.skipped == "stale_consent" and out.state.erased


@pytest.mark.parametrize("lines", [
    # one producer, out of order: a withdrawal of day 3, then a grant dated day 2 (review 33:
    # the daily reference counted c1 as consenting, the engine kept it withdrawn)
    [buy("e1", "c1", 0.0), buy("e2", "c2", 0.0), consent("w1", "c1", "consent_withdrawn", 3.0),
     consent("g1", "c1", "consent_granted", 2.0), buy("e3", "c2", 6.0)],
    # a withdrawal dated day 2 read at day 60 (over UNDATED_S behind: a reset clock?) counts
    # from day 60: a grant of day 5 is refused by the engine, and by the reference (33c)
    [buy("e1", "c1", 0.0), buy("e2", "c2", 60.0), consent("w1", "c1", "consent_withdrawn", 2.0),
     consent("g1", "c1", "consent_granted", 5.0), buy("e3", "c2", 66.0)],
], ids=["older_grant", "grant_before_the_clock"])
def test_the_daily_reference_skips_a_grant_the_engine_skips(lines: list[bytes]) -> None:
    s = Settings()
    r = Replayer(s)
    for line in lines:
        r.feed(line)
    assert r.states["c1"].withdrawn
    history, _ = volatility.read_history(lines, s)
    table = volatility.daily_frequency(history, s)
    last = table.columns[-1]
    assert table.loc["c1", last] != table.loc["c1", last]  # NaN: not labelled while withdrawn


def test_a_purchase_made_before_a_withdrawal_and_read_after_it_is_kept_for_the_regrant() -> None:
    # a restart backlog read the consent topic first (an operator's review: 17 of 24
    # customers lost their pre-withdrawal purchase): kept, unpublished, and the re-grant
    # lists the same segments as in the order the events happened
    def regrant(order: list[Event]) -> tuple[Any, Any]:
        eng = Engine(Settings())
        s = None
        published = []
        for ev in order:
            out = eng.apply(s, ev)
            s = out.state
            published += out.changes
        return s, published

    e1, e2 = purchase("e1", 0.0), purchase("e2", 3 * DAY)
    w, g = consent_event("w1", "consent_withdrawn", 5 * DAY), consent_event(
        "g1", "consent_granted", 10 * DAY)
    in_order, _ = regrant([e1, e2, w, g])
    eng = Engine(Settings())
    s = eng.apply(None, e1).state
    s = eng.apply(s, w).state
    late = eng.apply(s, e2)
    assert late.skipped == "no_consent" and late.changes == [] and late.segments is None
    assert late.state.purchases == 2 and late.folded != []
    notice = eng.apply(late.state, g).notices[0]
    assert {k: v["segment"] for k, v in notice["segments"].items()} == {
        k: v[0] for k, v in in_order.segments.items()}


def test_many_grants_do_not_forget_a_withdrawal_period() -> None:
    # review 33b: 32 routine re-grants trimmed the log, and a purchase dated inside an old
    # withdrawal, read late, was profiled; and a withdrawal read after 32 later-dated
    # grants was trimmed at once, so an older grant lifted it
    eng = Engine(Settings())
    s = eng.apply(None, purchase("e1", 0.0)).state
    s = eng.apply(s, consent_event("w1", "consent_withdrawn", 1 * DAY)).state
    s = eng.apply(s, consent_event("g1", "consent_granted", 2 * DAY)).state
    for i in range(32):
        s = eng.apply(s, consent_event(f"g{i + 2}", "consent_granted", (3 + i) * DAY)).state
    late = eng.apply(s, purchase("e2", 1.5 * DAY))
    assert late.skipped == "no_consent" and late.state.purchases == 1
    t = eng.apply(None, purchase("e1", 0.0)).state
    for i in range(32):
        t = eng.apply(t, consent_event(f"g{i}", "consent_granted", (10 + i) * DAY)).state
    t = eng.apply(t, consent_event("w1", "consent_withdrawn", 5 * DAY)).state
    out = eng.apply(t, consent_event("gx", "consent_granted", 4 * DAY))
    assert out.skipped == "stale_consent" and out.state.withdrawn


def test_quality_does_not_count_a_purchase_the_engine_skipped_for_consent() -> None:
    # review 33b: withdraw day 1, grant day 3, then a purchase dated day 2 (made while
    # withdrawn): the engine skips it; the reference counted it (frequency agreement 50%)
    from streamseg.tools.qualityrun import run_engine

    lines = [buy("e1", "c1", 0.0), consent("w1", "c1", "consent_withdrawn", 1.0),
             consent("g1", "c1", "consent_granted", 3.0), buy("e2", "c1", 2.0),
             buy("e3", "c2", 0.0)]
    run = run_engine(lines, Settings())
    assert run.states["c1"].purchases == 1
    assert [e.event_id for e in run.events if e.customer_id == "c1" and e.kind == "purchase"] \
        == ["e1"]


def test_a_late_withdrawal_keeps_its_date_and_a_real_regrant_after_it_applies() -> None:
    # ops review 33b: other customers' events read hours ahead; the customer withdraws
    # (dated 30 min) and grants again (1 h), both read late: the grant is the later one
    # and applies (counted from the clock, the withdrawal had dropped it as stale)
    from streamseg.engine.clock import EventClock

    eng, clock = Engine(Settings()), EventClock(3600.0)
    t0 = 1_700_000_000.0  # (2023: behind the wall clock)
    other = eng.ingest(None, Event("purchase", "purchase", "o1", "c9", t0 + 3 * 3600.0,
                                   amount=5.0), clock)
    assert not isinstance(other, Invalid)
    s = eng.ingest(None, purchase("e1", t0), clock)
    assert not isinstance(s, Invalid)
    off = eng.ingest(s.state, consent_event("w1", "consent_withdrawn", t0 + 1800.0), clock)
    assert not isinstance(off, Invalid) and off.state.withdrawn
    on = eng.ingest(off.state, consent_event("g1", "consent_granted", t0 + 3600.0), clock)
    assert not isinstance(on, Invalid)
    assert on.skipped is None and not on.state.withdrawn
    later = eng.ingest(on.state, purchase("e2", t0 + 3.5 * 3600.0), clock)
    assert not isinstance(later, Invalid) and later.state.purchases == 2
