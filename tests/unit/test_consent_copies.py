"""Consent copies on the real ``Ingest`` glue, with a table read by partition (RocksDB-like).

A consent event is applied on the partition it arrives on and copied to every other
partition through the ticks topic (``Emitter.fan_out``). With two producer
partitioners the customer's profile may be on another partition than its consent:
the notices must still be published, once; a copy read again must not be applied
again; and with pseudonymisation a copy carries no raw id.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from unit.ingest_harness import Harness
from unit.test_edge_batch import BASE, CFG, PartitionedTable, at, buy, consent, harness, metric

from streamseg import codec
from streamseg.config import DAY, Settings
from streamseg.engine.events import format_ts, parse_ts
from streamseg.engine.validate import pseudonymise


def deliver_copies(h: Harness) -> list[Any]:
    """Hand the consent copies sent so far to the agent, each on its partition; the
    messages (to read them again)."""
    ticks = h.app.ticks
    sent = list(zip(ticks.sent, ticks.partitions, ticks.headers, strict=True))
    ticks.sent.clear(), ticks.partitions.clear(), ticks.headers.clear()
    msgs = []
    for (key, value), p, headers in sent:
        msg = h.message("tick", key, value, partition=p or 0,
                        headers=list((headers or {}).items()))
        h.batch([msg])
        msgs.append(msg)
    return msgs


def notices(h: Harness) -> list[bool]:
    """The ``suppressed`` flag of every suppression notice published, in order."""
    return [v["suppressed"] for v in h.app.changes.values() if v.get("kind") == "suppression"]


def tombstone_headers(h: Harness) -> list[Any]:
    """The headers of every tombstone published on customer-segments, in order."""
    return [hd for (_, v), hd in zip(h.app.segments.sent, h.app.segments.headers, strict=True)
            if v is None]


def records(h: Harness) -> list[bool | None]:
    """The ``suppressed`` flag of every customer-segments record (None: a tombstone)."""
    return [None if v is None else v["suppressed"] for v in h.app.segments.values()]


def test_consent_on_another_partition_than_the_profile_publishes_each_notice_once() -> None:
    # the profile is on partition 0 (one producer), the consent comes on 1 (another)
    h, table = harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        assert records(h) == [False]
        h.send("consent", b"c1", consent("w1", "c1", "consent_withdrawn", 1.0), partition=1)
        assert notices(h) == []  # partition 1 never saw c1: nothing to tell from there
        deliver_copies(h)
        assert notices(h) == [True] and records(h) == [False, True]
        h.send("consent", b"c1", consent("g1", "c1", "consent_granted", 2.0), partition=1)
        deliver_copies(h)
        assert notices(h) == [True, False] and records(h) == [False, True, False]
        state = table.state(0, "c1")
        assert state is not None and not state["withdrawn"] and state["purchases"] == 1
        # the copy's notice continues the profile's own sequence
        seqs = [v["sequence"] for v in h.app.changes.values() if v.get("kind") == "suppression"]
        assert seqs == [1, 2]
    finally:
        h.close()


def test_consent_where_the_profile_is_publishes_once_and_the_copies_stay_silent() -> None:
    # c1 fed through two partitioners: a profile on 0 and on 2; the consent comes on 2
    h, _ = harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.send("purchase", b"c1", buy("e2", "c1", 0.5), partition=2)
        h.send("consent", b"c1", consent("w1", "c1", "consent_withdrawn", 1.0), partition=2)
        assert notices(h) == [True]
        deliver_copies(h)
        assert notices(h) == [True] and records(h).count(True) == 1
        h.send("consent", b"c1", consent("g1", "c1", "consent_granted", 2.0), partition=2)
        deliver_copies(h)
        assert notices(h) == [True, False] and records(h).count(True) == 1
        assert metric(h, "streamseg_consent_fanout_total", outcome="applied") == 6.0
    finally:
        h.close()


def test_a_consent_copy_read_again_is_not_applied_again() -> None:
    # c1 on two partitions (two producers): 0 and 2; an erasure, then a fresh consent
    h, table = harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.send("purchase", b"c1", buy("e2", "c1", 0.5), partition=2)
        erasure = h.message("consent", b"c1", consent("x1", "c1", "erasure_requested", 1.0),
                            partition=0)
        h.batch([erasure])
        erasure_copies = deliver_copies(h)
        assert table.state(2, "c1")["epoch"] == 1  # type: ignore[index]
        h.send("consent", b"c1", consent("g1", "c1", "consent_granted", 2.0), partition=0)
        deliver_copies(h)
        h.send("purchase", b"c1", buy("e3", "c1", 3.0), partition=2)  # a fresh profile on 2
        fresh = table.state(2, "c1")
        assert fresh is not None and fresh["purchases"] == 1 and fresh["epoch"] == 1
        changes = len(h.app.changes.sent)
        # the erasure's copy to partition 2 read again (a crash before the ticks commit)
        again = next(m for m in erasure_copies if m.message.partition == 2)
        h.batch([h.message("tick", again.message.key, again.message.value, partition=2,
                           headers=again.message.headers)])
        assert table.state(2, "c1") == fresh  # not erased a second time (epoch 2)
        assert metric(h, "streamseg_consent_fanout_total", outcome="duplicate") == 1.0
        assert len(h.app.changes.sent) == changes
    finally:
        h.close()


def test_a_consent_copied_again_is_not_applied_again_where_a_copy_applied_it() -> None:
    h, table = harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.send("purchase", b"c1", buy("e2", "c1", 0.5), partition=2)
        before = table.data[0, b"c1"]
        erasure = h.message("consent", b"c1", consent("x1", "c1", "erasure_requested", 1.0),
                            partition=0)
        h.batch([erasure])
        deliver_copies(h)
        markers = {p: table.state(p, "c1") for p in (1, 2, 3)}
        assert markers[2]["epoch"] == 1  # type: ignore[index]
        # a crash after the outputs, before partition 0's state write: the original is
        # read again on the old state, applied again, and copied again
        table.data[0, b"c1"] = before
        again = h.message("consent", b"c1", erasure.message.value, partition=0)
        again.message.offset = erasure.message.offset
        h.batch([again])
        deliver_copies(h)
        assert {p: table.state(p, "c1") for p in (1, 2, 3)} == markers  # epoch still 1
        assert metric(h, "streamseg_consent_fanout_total", outcome="duplicate") == 3.0
    finally:
        h.close()


def test_pseudonymised_consent_copies_carry_no_raw_id() -> None:
    secret = "copy-secret-key"
    h, table = harness(dataclasses.replace(CFG, pseudonymise_key=secret))
    alias = pseudonymise(secret, "kim")
    try:
        h.send("purchase", b"kim", buy("e1", "kim", 0.0), partition=0)
        h.send("consent", b"kim", consent("w1-kim", "kim", "consent_withdrawn", 1.0),
               partition=1)
        sent = list(h.app.ticks.sent)
        assert len(sent) == 3
        for key, value in sent:
            assert key == alias.encode() and value is not None
            assert b"kim" not in key and b"kim" not in value  # nor the raw event id
            assert codec.loads(value)["customer_id"] == alias
        deliver_copies(h)
        assert notices(h) == [True]
        state = table.state(0, alias)
        assert state is not None and state["withdrawn"]
        assert table.state(0, "kim") is None
    finally:
        h.close()


def test_a_copy_from_before_the_copy_format_is_applied_as_before() -> None:
    # the original's bytes with the old header value: applied, silent, no position
    h, table = harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.batch([h.message("tick", b"c1", consent("w1", "c1", "consent_withdrawn", 1.0),
                           partition=0, headers=[("streamseg-fanout", b"consent")])])
        state = table.state(0, "c1")
        assert state is not None and state["withdrawn"] and notices(h) == []
        assert list(state["_positions"]) == [f"{CFG.topic_purchases}:0"]
    finally:
        h.close()



def test_a_withdrawal_from_the_future_is_applied_at_the_clock_on_every_partition() -> None:
    """An erasure / withdrawal dated years ahead is never dead-lettered (an operator's
    2030 erasure was, and the customer stayed profiled); it and its copies on the other
    partitions are applied at the worker's event clock (day 3 here: the wall clock is at
    day 10), not at the producer's date, and neither moves the clock nor the consent
    input's progress (the first fix moved them to the wall clock)."""
    wall = BASE.timestamp() + 10 * DAY
    h = Harness(CFG, wall=lambda: wall)
    table = PartitionedTable()
    h.app.state = table  # type: ignore[assignment]
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.send("purchase", b"c2", buy("e2", "c2", 3.0), partition=2)  # the clock: day 3
        h.send("consent", b"c1", consent("w1", "c1", "consent_withdrawn", 2000.0), partition=1)
        assert h.app.dead_letters.values() == []
        deliver_copies(h)
        assert notices(h) == [True]
        (notice,) = [v for v in h.app.changes.values() if v.get("kind") == "suppression"]
        assert notice["event_time"] == "2026-01-04T00:00:00Z", notice  # day 3
        assert all((st := table.state(p, "c1")) is not None and st["withdrawn"]
                   for p in range(4))
        assert h.ingest.punctuator.clock.max_seen == BASE.timestamp() + 3 * DAY
        progress = h.ingest.punctuator.sources
        assert not any(topic == CFG.topic_consent for topic, _ in progress.sources)
    finally:
        h.close()


def test_a_restart_after_erasure_and_grant_warns_of_no_settings_change(caplog: Any) -> None:
    """An operator's run: click, erasure, grant, restart with the same settings; the worker
    warned that 4 customers were evaluated under other settings (the fresh profile and the
    three copies had no settings hash)."""
    h, table = harness()
    try:
        h.send("click", b"c1", codec.dumps({"event_id": "k1", "customer_id": "c1",
                                             "type": "page_view", "ts": at(0.0)}), partition=0)
        h.send("consent", b"c1", consent("x1", "c1", "erasure_requested", 1.0), partition=0)
        deliver_copies(h)
        h.send("consent", b"c1", consent("g1", "c1", "consent_granted", 2.0), partition=0)
        deliver_copies(h)
        assert sum(1 for p in range(4) if table.state(p, "c1") is not None) == 4
        clocks = dict(h.app.clocks)
    finally:
        h.close()
    again, _ = harness()  # restarted, same settings
    try:
        again.app.state = table  # type: ignore[assignment]
        again.app.clocks.update(clocks)
        again.ingest.punctuator.assign({0, 1, 2, 3})
        with caplog.at_level("WARNING"):
            again.ingest.due_ticks()
        assert "other segment settings" not in caplog.text
    finally:
        again.close()


class _Databases(dict[tuple[int, bytes], bytes]):
    """A table's data with RocksDB-like per-partition databases (``adapters.partition_get``
    reads one partition's database: the split-customer check searches them)."""

    @property
    def _dbs(self) -> dict[int, dict[bytes, bytes]]:
        out: dict[int, dict[bytes, bytes]] = {p: {} for p in range(CFG.partitions)}
        for (p, k), v in self.items():
            out[p][k] = v
        return out


def split_harness() -> tuple[Harness, PartitionedTable]:
    h = Harness(CFG)
    table = PartitionedTable()
    table.data = _Databases()
    h.app.state = table  # type: ignore[assignment]
    h.ingest.punctuator.assign(set(range(CFG.partitions)))
    return h, table


def split(h: Harness, stream: str) -> float:
    return metric(h, "streamseg_split_customers_total", stream=stream)


def test_consent_through_another_partitioner_splits_no_customer() -> None:
    """Consent may come through another producer partitioner than the customer's events
    (it reaches every partition). A withdrawal or a grant on a partition without the
    customer's state counted the customer as split, and the alert told the operator to
    fix producers that were fine (review 31)."""
    h, table = split_harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.send("consent", b"c1", consent("w1", "c1", "consent_withdrawn", 1.0), partition=1)
        h.send("consent", b"c2", consent("g2", "c2", "consent_granted", 1.0), partition=2)
        h.send("purchase", b"c2", buy("e2", "c2", 2.0), partition=3)
        assert table.state(1, "c1") is not None and table.state(2, "c2") is not None
        assert split(h, "consent") == split(h, "purchase") == 0.0
        h.send("purchase", b"c1", buy("e3", "c1", 3.0), partition=2)  # a real split
        assert split(h, "purchase") == 1.0
    finally:
        h.close()


def test_a_split_after_a_withdrawal_and_a_grant_is_counted() -> None:
    """c1 (profiled on partition 0) withdrew and granted again: the copies left a marker on
    partitions 1-3. Its next purchase arrives on partition 1 (another partitioner) and
    starts a second, independent state on the marker. The marker made it look known there,
    so the split went uncounted (review 31)."""
    h, table = split_harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.send("consent", b"c1", consent("w1", "c1", "consent_withdrawn", 1.0), partition=0)
        deliver_copies(h)
        h.send("consent", b"c1", consent("g1", "c1", "consent_granted", 2.0), partition=0)
        deliver_copies(h)
        h.send("purchase", b"c1", buy("e2", "c1", 3.0), partition=1)
        profiled = [p for p in range(CFG.partitions)
                    if (s := table.state(p, "c1")) and s.get("events")]
        assert profiled == [0, 1]
        assert split(h, "purchase") == 1.0
    finally:
        h.close()


def test_a_split_onto_a_consent_only_state_is_counted() -> None:
    """c1 is profiled on partition 0; its consent producer (another partitioner) sends a
    grant, then a withdrawal and a grant, to partition 1: originals, so partition 1 holds a
    consent-only state, not a copy's marker. A purchase there starts a second profile: a
    split, which went uncounted (review 31)."""
    for grants in (["g1"], ["w1", "g1"]):
        h, table = split_harness()
        try:
            h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
            for i, eid in enumerate(grants):
                typ = "consent_granted" if eid.startswith("g") else "consent_withdrawn"
                h.send("consent", b"c1", consent(eid, "c1", typ, 1.0 + i), partition=1)
                deliver_copies(h)
            h.send("purchase", b"c1", buy("e2", "c1", 3.0), partition=1)
            profiled = [p for p in range(CFG.partitions)
                        if (s := table.state(p, "c1")) and s.get("events")]
            assert profiled == [0, 1]
            assert split(h, "purchase") == 1.0, grants
        finally:
            h.close()


def test_a_split_customer_is_counted_once_while_withdrawn() -> None:
    """c1, profiled on 0, withdrew (markers on 1-3). Three purchases through another
    partitioner land on 1, each its own batch, all skipped (no consent): they make no
    profile there, so no split is counted (each was counted once, review 31)."""
    h, _ = split_harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.send("consent", b"c1", consent("w1", "c1", "consent_withdrawn", 1.0), partition=0)
        deliver_copies(h)
        for i in range(3):
            h.send("purchase", b"c1", buy(f"x{i}", "c1", 2.0 + i), partition=1)
        assert split(h, "purchase") == 0.0
        h.send("consent", b"c1", consent("g1", "c1", "consent_granted", 6.0), partition=0)
        deliver_copies(h)
        for i in range(2):
            h.send("purchase", b"c1", buy(f"y{i}", "c1", 7.0 + i), partition=1)
        assert split(h, "purchase") == 1.0  # the first profile there, once
    finally:
        h.close()


def test_an_erasure_through_another_partitioner_ends_with_a_tombstone_after_the_profile() -> None:
    """The profile is on partition 0 (one producer), the erasure comes on 1 (another), and
    a purchase of the customer is read on 0 before the erasure's copy reaches it (an
    operator's run with confluent-kafka: 7 of 10 erased customers ended with a live profile
    in the compacted topic). The copy that erases the profile publishes a tombstone after
    that profile's last record; a copy that finds no profile publishes none."""
    h, table = harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.send("consent", b"c1", consent("x1", "c1", "erasure_requested", 1.0), partition=1)
        assert records(h) == [False, None]  # the original's tombstone, from partition 1
        h.send("purchase", b"c1", buy("e2", "c1", 1.5), partition=0)  # before the copy
        assert records(h) == [False, None, False]
        deliver_copies(h)
        assert records(h) == [False, None, False, None]  # only partition 0's copy
        assert table.state(0, "c1") is not None and table.state(0, "c1")["purchases"] == 0  # type: ignore[index]
        # each tombstone carries the epoch after the erasure; the change published between
        # them is the erased profile's (epoch 0: no field), which a subscriber tells apart
        # whatever order it reads the two topics in (examples/dedupe_consumer.py)
        tombstones = tombstone_headers(h)
        assert tombstones == [{"streamseg-epoch": b"1"}] * 2
        assert all("epoch" not in c for c in h.app.changes.values())
        # a grant and a fresh profile: its changes carry epoch 1, its notice too
        h.send("consent", b"c1", consent("g1", "c1", "consent_granted", 2.0), partition=1)
        deliver_copies(h)
        before = len(h.app.changes.sent)
        h.send("purchase", b"c1", buy("e3", "c1", 3.0), partition=1)
        fresh = h.app.changes.values()[before:]
        assert fresh and all(c["epoch"] == 1 for c in fresh)
    finally:
        h.close()


def take_copies(h: Harness) -> list[tuple[bytes | None, bytes | None, int, Any]]:
    """The consent copies sent so far, taken off the ticks topic (to deliver later)."""
    ticks = h.app.ticks
    sent = [(k, v, p or 0, h_) for (k, v), p, h_ in
            zip(ticks.sent, ticks.partitions, ticks.headers, strict=True)]
    ticks.sent.clear(), ticks.partitions.clear(), ticks.headers.clear()
    return sent


def deliver(h: Harness, copies: list[tuple[bytes | None, bytes | None, int, Any]]) -> None:
    for key, value, p, headers in copies:
        h.batch([h.message("tick", key, value, partition=p,
                           headers=list((headers or {}).items()))])


@pytest.mark.parametrize("second", [
    consent("x2", "c1", "erasure_requested", 3.0),
    consent("x2", "c1", "erasure_requested", 2.0),  # the grant's second (review 33)
    # a reset device clock: moved to the event clock, the grant's time (review 33)
    codec.dumps({"event_id": "x2", "customer_id": "c1", "type": "erasure_requested",
                 "ts": "1969-12-31T00:00:00Z"}),
    # the same inside the window: it keeps its date, and counts from the event clock it
    # was applied at against the grant (review 33b)
    codec.dumps({"event_id": "x2", "customer_id": "c1", "type": "erasure_requested",
                 "ts": "1970-01-01T00:00:00Z"}),
], ids=["later", "same_second", "reset_clock", "reset_clock_in_window"])
@pytest.mark.parametrize("settings", [
    CFG,
    # the default allowed lateness: the tick clock trails the event clock by an hour, and
    # a restriction counted from it left the grant unrefused (review 33c)
    dataclasses.replace(CFG, allowed_lateness_s=3600.0),
    Settings(partitions=4),  # the defaults
], ids=["no_lateness", "default_lateness", "defaults"])
def test_a_grants_copy_read_after_a_later_erasure_does_not_revive_the_customer(
    second: bytes, settings: Settings,
) -> None:
    # consent through two partitioners: erasures arrive on partition 1, the grant between
    # them on 0 (where the events are); the grant's copy reaches 1 after the second erasure
    h, table = harness(settings)
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.send("consent", b"c1", consent("x1", "c1", "erasure_requested", 1.0), partition=1)
        deliver_copies(h)
        h.send("consent", b"c1", consent("g1", "c1", "consent_granted", 2.0), partition=0)
        grant_copies = take_copies(h)
        h.send("consent", b"c1", second, partition=1)
        erasure_copies = take_copies(h)
        deliver(h, grant_copies)  # late: partition 1 has applied the second erasure
        deliver(h, erasure_copies)
        assert metric(h, "streamseg_consent_fanout_total", outcome="stale") == 1.0
        for p in range(4):
            state = table.state(p, "c1")
            assert state is not None and state["withdrawn"] and state["erased"], p
            assert state["epoch"] == 2, p
        changes = len(h.app.changes.sent)
        # the customer's later events, through either partitioner: erased for good
        h.send("purchase", b"c1", buy("e2", "c1", 4.0), partition=1)
        h.send("purchase", b"c1", buy("e3", "c1", 4.5), partition=0)
        assert len(h.app.changes.sent) == changes
        assert metric(h, "streamseg_events_consumed_total", stream="purchase",
                      outcome="no_consent") == 2.0
    finally:
        h.close()


def test_an_erasures_copy_read_after_a_later_grant_still_erases() -> None:
    # the erasure comes on partition 1; its copy reaches the profile's partition 0 only
    # after a grant of a later date there. Whether the grant or the erasure is really the
    # later one no date tells for sure (a device clock reset): the profile is erased and
    # the customer stays withdrawn there (privacy first; docs/RELIABILITY.md)
    h, table = harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.send("consent", b"c1", consent("x1", "c1", "erasure_requested", 1.0), partition=1)
        erasure_copies = take_copies(h)
        h.send("consent", b"c1", consent("g1", "c1", "consent_granted", 2.0), partition=0)
        grant_copies = take_copies(h)
        deliver(h, erasure_copies)  # late at 0: after the grant
        deliver(h, grant_copies)
        state = table.state(0, "c1")
        assert state is not None and state["purchases"] == 0 and state["erased"]
        assert state["withdrawn"] and state["epoch"] == 1
        tombstones = tombstone_headers(h)
        assert tombstones == [{"streamseg-epoch": b"1"}] * 2  # the original's and the copy's
        changes = len(h.app.changes.sent)
        h.send("purchase", b"c1", buy("e2", "c1", 3.0), partition=0)
        assert len(h.app.changes.sent) == changes
    finally:
        h.close()


def test_an_older_consent_read_after_a_later_one_on_its_own_partition_is_skipped() -> None:
    # one producer, out of order: a withdrawal of day 3, then a grant dated day 2
    h, table = harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.send("consent", b"c1", consent("w1", "c1", "consent_withdrawn", 3.0), partition=0)
        h.send("consent", b"c1", consent("g1", "c1", "consent_granted", 2.0), partition=0)
        state = table.state(0, "c1")
        assert state is not None and state["withdrawn"]
        assert notices(h) == [True]
        assert metric(h, "streamseg_events_consumed_total", stream="consent",
                      outcome="stale_consent") == 1.0
    finally:
        h.close()


def test_a_withdrawal_copy_counts_from_the_time_its_original_was_applied_at() -> None:
    # two workers (review 33b): the withdrawal, dated by a reset device clock, was applied
    # on another worker whose reading had reached day 10; this worker, behind at day 1,
    # gets its copy, then the copy of a grant dated day 5: not applied here either
    from streamseg.emit import COPY_FORMAT, FANOUT, copy_record
    from streamseg.engine.events import Event

    h, table = harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 1.0), partition=0)
        day = 86400.0
        base = parse_ts(at(0.0))
        withdrawal = Event("consent", "consent_withdrawn", "w1", "c1", 0.0)
        grant = Event("consent", "consent_granted", "g1", "c1", base + 5 * day)
        for ev, offset, applied in ((withdrawal, 7, base + 10 * day), (grant, 8, None)):
            value = copy_record(ev, format_ts(ev.ts), "customer-consent", 1, offset, True,
                                applied)
            h.batch([h.message("tick", b"c1", value, partition=0,
                               headers=[(FANOUT, COPY_FORMAT)])])
        state = table.state(0, "c1")
        assert state is not None and state["withdrawn"], state
        assert metric(h, "streamseg_consent_fanout_total", outcome="stale") == 1.0
    finally:
        h.close()
