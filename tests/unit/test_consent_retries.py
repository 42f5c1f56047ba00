"""Retried consent (a sixth review, 33f): a customer's first grant, sent again after a
late withdrawal or erasure dated before it, stays stale; a withdrawal stamped ahead counts
from when it was read, through a copy too."""
from __future__ import annotations

from typing import Any

from streamseg.config import DAY, Settings


def _copy_run(consent_partition: int) -> Any:
    from unit.ingest_harness import Harness
    from unit.test_consent_copies import deliver_copies
    from unit.test_edge_batch import BASE, CFG, PartitionedTable, buy, consent
    wall = BASE.timestamp() + 20 * DAY  # live: the wall clock at day 20
    h = Harness(CFG, wall=lambda: wall)
    table = PartitionedTable()
    h.app.state = table  # type: ignore[assignment]
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.send("purchase", b"c2", buy("e2", "c2", 20.0), partition=2)  # clock: day 20
        # stamped by a device 6 days ahead of the wall clock
        h.send("consent", b"c1", consent("w1", "c1", "consent_withdrawn", 26.0),
               partition=consent_partition)
        deliver_copies(h)
        for i, d in enumerate((21.0, 22.0, 23.0)):  # made after the withdrawal was read
            h.send("purchase", b"c1", buy(f"p{i}", "c1", d), partition=0)
        return table.state(0, "c1")
    finally:
        h.close()


def test_a_copy_of_a_withdrawal_stamped_ahead_counts_from_when_it_was_read() -> None:
    same = _copy_run(0)    # consent on the profile's partition
    other = _copy_run(1)   # consent through another partitioner: the copy reaches 0
    assert same["purchases"] == 1
    assert other["purchases"] == same["purchases"]


def _late_withdrawal_then_resent_grant(first_withdraws: bool) -> Any:
    from streamseg.engine.events import Event
    from streamseg.engine.processor import Engine

    def ev(eid: str, typ: str, ts: float) -> Event:
        kind = "purchase" if typ == "purchase" else "consent"
        return Event(kind, typ, eid, "c1", ts, amount=20.0 if kind == "purchase" else None)
    eng = Engine(Settings())
    s = eng.apply(None, ev("e1", "purchase", 0.0)).state
    if first_withdraws:
        s = eng.apply(s, ev("w0", "consent_withdrawn", 1 * DAY), 1 * DAY).state
    s = eng.apply(s, ev("g1", "consent_granted", 10 * DAY), 10 * DAY).state
    s = eng.apply(s, ev("e2", "purchase", 11 * DAY), 11 * DAY).state
    # a withdrawal dated day 5 (device clock behind), read at day 20: applies
    s = eng.apply(s, ev("w1", "consent_withdrawn", 5 * DAY), 20 * DAY).state
    assert s.withdrawn
    again = eng.apply(s, ev("g1", "consent_granted", 10 * DAY), 21 * DAY)  # producer retry
    after = eng.apply(again.state, ev("e3", "purchase", 22 * DAY), 22 * DAY)
    return s.consent_log, again, after


def test_a_resent_first_grant_stays_stale_after_a_late_withdrawal() -> None:
    # the committed test (test_consent_resent) withdraws first, so its grant is recorded;
    # with a withdrawal before the grant, and without (a customer's first grant: it was
    # "consent held already" and not recorded, so the withdrawal was not recorded after it)
    for first in (True, False):
        _, again, after = _late_withdrawal_then_resent_grant(first)
        assert again.skipped == "stale_consent" and again.state.withdrawn, first
        assert after.skipped == "no_consent" and after.changes == [], first


def test_worker_a_resent_first_grant_stays_stale_after_a_late_withdrawal() -> None:
    from unit.test_consent_copies import notices
    from unit.test_edge_batch import buy, consent, harness
    h, table = harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.send("consent", b"c1", consent("g1", "c1", "consent_granted", 10.0), partition=0)
        h.send("purchase", b"c1", buy("e2", "c1", 11.0), partition=0)
        h.send("purchase", b"c9", buy("e9", "c9", 20.0), partition=0)  # clock to day 20
        h.send("consent", b"c1", consent("w1", "c1", "consent_withdrawn", 5.0), partition=0)
        assert table.state(0, "c1")["withdrawn"]
        h.send("consent", b"c1", consent("g1", "c1", "consent_granted", 10.0), partition=0)
        st = table.state(0, "c1")
        assert st["withdrawn"] and notices(h) == [True]
    finally:
        h.close()



def test_a_resent_first_grant_after_a_late_erasure_brings_no_data_back() -> None:
    # test_consent_resent's erasure case with no withdrawal before: the first grant is not
    # recorded (d4db34a), so the erasure is not re-recorded after it (5f4a30a)
    from streamseg.engine.events import Event
    from streamseg.engine.processor import Engine
    eng = Engine(Settings())

    def ev(eid: str, typ: str, ts: float, amount: float = 20.0) -> Event:
        kind = "purchase" if typ == "purchase" else "consent"
        return Event(kind, typ, eid, "c1", ts, amount=amount if kind == "purchase" else None)
    s = eng.apply(None, ev("e1", "purchase", 0.0)).state
    s = eng.apply(s, ev("g1", "consent_granted", 10 * DAY), 10 * DAY).state
    s = eng.apply(s, ev("e2", "purchase", 11 * DAY), 11 * DAY).state
    off = eng.apply(s, ev("x1", "erasure_requested", 5 * DAY), 20 * DAY)  # device behind
    assert off.erased
    again = eng.apply(off.state, ev("g1", "consent_granted", 10 * DAY), 21 * DAY)  # retry
    late = eng.apply(again.state, ev("e3", "purchase", 15 * DAY, 900.0), 21 * DAY)  # pre-erasure
    assert late.skipped == "no_consent"
