"""Consent stamped ahead and old copies (a seventh review, 33g): a grant stamped ahead of
the wall clock counts from when it was read; a copy with no ``applied`` (the previous
release) counts from the reading worker's event clock."""
from __future__ import annotations

from streamseg.config import DAY, Settings
from streamseg.engine.clock import EventClock
from streamseg.engine.events import Event
from streamseg.engine.processor import Engine
from streamseg.engine.validate import Invalid

WALL = 1.7e9


def test_a_grant_stamped_ahead_read_after_a_later_withdrawal_does_not_lift_it() -> None:
    eng = Engine(Settings(), wall=lambda: WALL)
    clock = EventClock(0.0)
    s = eng.ingest(None, Event("purchase", "purchase", "e1", "c1", WALL - DAY, amount=5.0),
                   clock).state
    # real order: grant on a device 6 days ahead (stamp WALL+6d, made at WALL-1h), then the
    # withdrawal decided on the server at WALL; the grant's copy reaches the profile's
    # partition after the withdrawal (another producer partitioner)
    s = eng.ingest(s, Event("consent", "consent_withdrawn", "w1", "c1", WALL), clock).state
    assert s.withdrawn
    out = eng.ingest(s, Event("consent", "consent_granted", "g1", "c1", WALL + 6 * DAY), clock)
    after = eng.ingest(out.state, Event("purchase", "purchase", "e2", "c1", WALL + 60.0,
                                        amount=5.0), clock)
    assert out.skipped == "stale_consent"  # stamped ahead: in force from when it was read
    assert not isinstance(after, Invalid) and after.skipped == "no_consent"


def test_worker_a_grant_copy_stamped_ahead_does_not_lift_a_later_withdrawal() -> None:
    from unit.ingest_harness import Harness
    from unit.test_consent_copies import deliver_copies, notices
    from unit.test_edge_batch import BASE, CFG, PartitionedTable, buy, consent
    wall = BASE.timestamp() + 20 * DAY  # live: the wall clock at day 20
    h = Harness(CFG, wall=lambda: wall)
    table = PartitionedTable()
    h.app.state = table  # type: ignore[assignment]
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 19.0), partition=0)
        h.send("purchase", b"c2", buy("e2", "c2", 20.0), partition=2)  # clock: day 20
        # the grant, from a device 6 days ahead, through another producer partitioner
        h.send("consent", b"c1", consent("g1", "c1", "consent_granted", 26.0), partition=1)
        # then the customer withdraws on the server (day 20), where the profile is; the
        # grant's copy (40-150 ms behind its original) reaches partition 0 after it
        h.send("consent", b"c1", consent("w1", "c1", "consent_withdrawn", 20.0), partition=0)
        deliver_copies(h)
        st = table.state(0, "c1")
        assert st["withdrawn"] and notices(h)[-1] is True
    finally:
        h.close()


def test_a_grant_stamped_ahead_read_after_a_later_erasure_starts_no_fresh_profile() -> None:
    eng = Engine(Settings(), wall=lambda: WALL)
    clock = EventClock(0.0)
    s = eng.ingest(None, Event("purchase", "purchase", "e1", "c1", WALL - DAY, amount=5.0),
                   clock).state
    s = eng.ingest(s, Event("consent", "erasure_requested", "x1", "c1", WALL), clock).state
    out = eng.ingest(s, Event("consent", "consent_granted", "g1", "c1", WALL + 6 * DAY), clock)
    later = eng.ingest(out.state, Event("purchase", "purchase", "e2", "c1", WALL + 7 * DAY,
                                        amount=5.0), clock)
    assert out.skipped == "stale_consent"
    assert not isinstance(later, Invalid) and later.skipped == "no_consent"


def test_worker_a_copy_without_applied_counts_a_reset_clock_erasure_from_the_clock() -> None:
    # a consent/2 copy written by the previous release (no "applied") during a rolling
    # upgrade: a reset-clock erasure (1970) counts from 1970 on this partition
    from unit.ingest_harness import Harness
    from unit.test_edge_batch import BASE, CFG, PartitionedTable, buy

    from streamseg.emit import COPY_FORMAT, FANOUT, copy_record
    wall = BASE.timestamp() + 100 * DAY
    h = Harness(CFG, wall=lambda: wall)
    table = PartitionedTable()
    h.app.state = table  # type: ignore[assignment]
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 90.0), partition=0)
        h.send("purchase", b"c2", buy("e2", "c2", 100.0), partition=2)  # clock: day 100
        erase = Event("consent", "erasure_requested", "x", "c1", 0.0)
        h.batch([h.message("tick", b"c1", copy_record(erase, "1970-01-01T00:00:00Z",
                                                      CFG.topic_consent, 1, 5, False),
                           partition=0, headers=[(FANOUT, COPY_FORMAT)])])
        assert table.state(0, "c1")["erased"]
        grant = Event("consent", "consent_granted", "g", "c1", BASE.timestamp() + 99 * DAY)
        h.batch([h.message("tick", b"c1", copy_record(grant, "x", CFG.topic_consent, 3, 7, True)
                           .replace(b'"ts":"x"', b'"ts":"' + (BASE.isoformat().replace(
                               "+00:00", "Z").replace("2026-01-01", "2026-04-10")).encode()
                                    + b'"'), partition=0, headers=[(FANOUT, COPY_FORMAT)])])
        st = table.state(0, "c1")
        assert st["erased"]
    finally:
        h.close()
