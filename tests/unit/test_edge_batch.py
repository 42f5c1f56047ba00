"""The batched edge on the real ``Ingest`` glue (no Kafka): partitions, order, batches, clocks.

The state table here is partitioned like Faust's RocksDB store: reads and
writes go to the partition of Faust's *current event*, so a customer whose
events arrive on two partitions has two states, as on the broker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from faust import streams
from intervaltree import IntervalTree
from unit.ingest_harness import Harness

from streamseg import codec
from streamseg.config import DAY, Settings
from streamseg.partitions import home

BASE = datetime(2026, 1, 1, tzinfo=UTC)
# source_idle_s=0: another customer's event moves the clock at once (no input holds it back)
CFG = Settings(max_future_skew_s=7 * DAY, allowed_lateness_s=0.0, partitions=4, source_idle_s=0.0)


class PartitionedTable:
    """A table keyed by (current event's partition, key), counting writes."""

    def __init__(self) -> None:
        self.data: dict[tuple[int, bytes], bytes] = {}
        self.writes = 0

    @staticmethod
    def _p() -> int:
        event = streams.current_event()
        assert event is not None, "table used outside of an event"
        return int(event.message.partition)

    def get(self, key: bytes) -> bytes | None:
        return self.data.get((self._p(), key))

    def __contains__(self, key: bytes) -> bool:
        return (self._p(), key) in self.data

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes += 1
        self.data[self._p(), key] = value

    def __delitem__(self, key: bytes) -> None:
        del self.data[self._p(), key]

    def items(self) -> list[tuple[bytes, bytes]]:
        return [(k, v) for (_, k), v in self.data.items()]

    def values(self) -> list[bytes]:
        return list(self.data.values())

    def state(self, partition: int, cid: str) -> dict[str, Any] | None:
        raw = self.data.get((partition, cid.encode()))
        return None if raw is None else codec.loads(raw)


def at(days: float) -> str:
    return (BASE + timedelta(days=days)).isoformat()


def buy(eid: str, cid: str, days: float) -> bytes:
    return codec.dumps({"event_id": eid, "customer_id": cid, "ts": at(days), "order_id": eid,
                        "amount": 20.0, "currency": "EUR"})


def consent(eid: str, cid: str, typ: str, days: float) -> bytes:
    return codec.dumps({"event_id": eid, "customer_id": cid, "type": typ, "ts": at(days)})


def harness(settings: Settings = CFG) -> tuple[Harness, PartitionedTable]:
    h = Harness(settings)
    table = PartitionedTable()
    h.app.state = table  # type: ignore[assignment]
    return h, table


def metric(h: Harness, name: str, **labels: str) -> float:
    return h.registry.get_sample_value(name, labels) or 0.0


def test_keyless_input_is_dead_lettered_and_never_creates_state() -> None:
    h, table = harness()
    try:
        for p in range(4):
            h.send("purchase", None, buy(f"e{p}", "kim", 0.0), partition=p)
        assert table.data == {}
        letters = h.app.dead_letters.values()
        assert [d["reason"] for d in letters] == ["key_mismatch"] * 4
        assert h.count("purchase", "dead_letter") == 4.0
    finally:
        h.close()


def test_keyless_consent_is_dead_lettered_saying_it_is_not_applied() -> None:
    # a key-less withdrawal would not split anyone (consent reaches every partition): the
    # letter says what matters, that it is not applied until re-fed (an operator's review)
    h, table = harness()
    try:
        h.send("consent", None, consent("w1", "kim", "consent_withdrawn", 0.0), partition=1)
        assert table.data == {}
        [letter] = h.app.dead_letters.values()
        assert letter["reason"] == "key_mismatch"
        assert "not applied until it is re-fed with a key" in letter["message"]
    finally:
        h.close()


def test_keyless_malformed_input_is_dead_lettered_with_what_is_wrong_with_it() -> None:
    """Reviewer's finding: non-JSON, a JSON array or a numeric customer id sent without a
    key were all dead-lettered as ``key_mismatch``; replay named the real fault."""
    h, _ = harness()
    try:
        h.send("purchase", None, b"not json")
        h.send("purchase", None, b"[1, 2]")
        h.send("purchase", None, codec.dumps({**codec.loads(buy("e1", "kim", 0.0)),
                                              "customer_id": 42}))
        h.send("purchase", None, buy("e2", "kim", 0.0))  # valid, but no key
        letters = h.app.dead_letters.values()
        assert [(d["reason"], d.get("field")) for d in letters] == [
            ("not_json", None), ("not_object", None), ("schema_invalid", "customer_id"),
            ("key_mismatch", "customer_id")]
    finally:
        h.close()


def test_input_off_its_murmur2_partition_is_counted_and_kept_where_it_arrived() -> None:
    h, table = harness()
    try:
        own = home(b"c1", 4)
        other = (own + 1) % 4
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=own)
        assert metric(h, "streamseg_input_foreign_partition_total", stream="purchase") == 0.0
        h.send("purchase", b"c2", buy("e2", "c2", 0.0), partition=(home(b"c2", 4) + 1) % 4)
        assert metric(h, "streamseg_input_foreign_partition_total", stream="purchase") == 1.0
        assert table.state(own, "c1") is not None and table.state(other, "c1") is None
    finally:
        h.close()


def test_consent_fans_out_and_erasure_is_final_on_every_partition() -> None:
    h, table = harness()
    try:
        # c1's events arrive on two partitions (two producers, two partitioners)
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.send("purchase", b"c1", buy("e2", "c1", 1.0), partition=2)
        h.send("consent", b"c1", consent("x1", "c1", "erasure_requested", 2.0), partition=2)
        copies = list(zip(h.app.ticks.sent, h.app.ticks.partitions, strict=True))
        assert sorted(p for _, p in copies) == [0, 1, 3]
        # the copies arrive on the other partitions (ticks topic, with the fan-out header)
        for (key, value), p in copies:
            msg = h.message("tick", key, value, partition=p or 0,
                            headers=[("streamseg-fanout", b"consent")])
            h.batch([msg])
        for p in range(4):
            marker = table.state(p, "c1")
            assert marker is not None and marker["withdrawn"] and marker["segments"] == {}
            # a marker a copy created where c1 was never seen is not counted as a customer
            assert marker.get("_copy", False) is (p in (1, 3))
        published = len(h.app.changes.sent)
        h.send("purchase", b"c1", buy("e3", "c1", 3.0), partition=0)  # the other producer
        assert len(h.app.changes.sent) == published
        assert h.count("purchase", "no_consent") == 1.0
        assert metric(h, "streamseg_consent_fanout_total", outcome="applied") == 3.0
        # a tombstone from each partition that held a profile (2: the original's, 0: its
        # copy's), so the compacted topic ends erased whatever each published before
        assert [v for v in h.app.segments.values() if v is None] == [None, None]
        assert h.app.segments.values()[-1] is None
    finally:
        h.close()


def test_an_input_older_than_the_states_position_is_never_applied() -> None:
    h, table = harness()
    try:
        first = h.message("purchase", b"c1", buy("e1", "c1", 0.0))
        late = h.message("purchase", b"c1", buy("e2", "c1", 1.0))
        h.batch([late])  # offset 1 first (delivered ahead) ...
        h.batch([first])  # ... then offset 0: out of order, not applied
        assert h.count("purchase", "out_of_order") == 1.0
        state = table.state(0, "c1")
        assert state is not None and state["purchases"] == 1
        assert state["_positions"] == {f"{CFG.topic_purchases}:0": 1}
        again = h.message("purchase", b"c1", late.message.value)
        again.message.offset = late.message.offset  # a re-delivery after a crash
        writes = table.writes
        h.batch([again])
        assert h.count("purchase", "duplicate") == 1.0
        assert table.state(0, "c1") == state
        # written again: the changelog may have lost the first write in the crash, and
        # this offset is about to commit (CI: a restore from the changelog then lost it)
        assert table.writes == writes + 1
    finally:
        h.close()



def test_an_input_skipped_for_no_consent_is_never_applied_when_read_again() -> None:
    # a purchase made while consent was withdrawn is a counted skip; re-read after the
    # grant (a crash before the offset commit, a rebalance) it used to be applied: the
    # withdrawal period was profiled and changes the first run never made went out
    h, table = harness()
    try:
        h.batch([h.message("purchase", b"c1", buy("e1", "c1", 0.0))])
        h.batch([h.message("consent", b"c1", consent("w", "c1", "consent_withdrawn", 1.0))])
        skipped = h.message("purchase", b"c1", buy("e2", "c1", 2.0))
        h.batch([skipped])
        assert h.count("purchase", "no_consent") == 1.0
        h.batch([h.message("consent", b"c1", consent("g", "c1", "consent_granted", 3.0))])
        sent = len(h.app.changes.sent)
        again = h.message("purchase", b"c1", skipped.message.value)
        again.message.offset = skipped.message.offset
        h.batch([again])
        state = table.state(0, "c1")
        assert state is not None and state["purchases"] == 1
        assert h.count("purchase", "out_of_order") == 1.0
        assert len(h.app.changes.sent) == sent
    finally:
        h.close()

def test_gate_holds_events_ahead_of_the_committed_offset_after_an_assignment() -> None:
    h, table = harness()
    try:
        topic = CFG.topic_purchases
        h.ingest.on_assigned([], {(topic, 0): 5})
        h.offset = 7
        ahead = h.message("purchase", b"c1", buy("e7", "c1", 7.0))
        h.batch([ahead])
        assert ahead.message.acked  # withheld: Faust will not commit it
        assert table.data == {} and metric(h, "streamseg_input_held_total") == 1.0
        h.offset = 5  # the seek: from the committed offset, in order
        h.batch([h.message("purchase", b"c1", buy("e5", "c1", 5.0)),
                 h.message("purchase", b"c1", buy("e6", "c1", 6.0)),
                 h.message("purchase", b"c1", buy("e7", "c1", 7.0))])
        state = table.state(0, "c1")
        assert state is not None and state["purchases"] == 3
        assert state["_positions"] == {f"{topic}:0": 7}
    finally:
        h.close()


def test_a_seek_counts_as_failed_only_after_what_was_queued_ahead_of_it_went_through() -> None:
    """Review reproducer (tests/integration/test_gate_backlog.py): under a backlog of
    transactional input the gate re-read every partition at its first marker, and the
    re-read was queued behind the events fetched before the seek. The gate counted
    seconds, gave up after 5 seeks, applied later events, and the held ones were lost.
    Now the held events keep coming for as long as it takes; no failed seek is counted
    until ``ahead`` events have been taken, and the re-read then opens the gate."""
    from streamseg.gate import Gate

    g = Gate(hold_s=3.0, ahead=1000)
    g.assigned({("t", 0): 10})
    g.progress(1, 0.0)
    assert g.admit("t", 0, 10, now=0.0) == "apply"
    g.progress(1, 0.1)
    assert g.admit("t", 0, 12, now=0.1) == "reseek"  # 11 is a transaction marker
    assert g.seek("t", 0, now=0.1) == 11
    t, verdicts = 0.1, []
    for offset in range(13, 913):  # 900 stale events over 45 s, each a batch of its own
        t += 0.05
        g.progress(1, t)
        verdicts.append(g.admit("t", 0, offset, now=t))
    assert set(verdicts) == {"hold"} and g.overdue(now=t) == []
    for offset in range(913, 1020):  # ``ahead`` taken since the seek: seek again, once
        t += 0.05
        g.progress(1, t)
        verdicts.append(g.admit("t", 0, offset, now=t))
        if verdicts[-1] == "reseek":  # what Ingest.reseek does
            assert g.seek("t", 0, now=t) == 11
    assert verdicts.count("reseek") == 1 and "apply" not in verdicts
    g.progress(1, t + 0.1)
    assert [g.admit("t", 0, o, now=t + 0.1) for o in (12, 13)] == ["apply", "apply"]


def test_at_a_trickle_a_seek_counts_as_failed_after_the_hold_as_before() -> None:
    """Small batches (below the size limit) leave nothing queued: a seek whose re-read
    does not come (the batch being handed over undid it) is repeated after
    ``hold_s / 3``, as the kill -9 tests need at 150 events/s."""
    from streamseg.gate import Gate

    g = Gate(hold_s=3.0, ahead=1000)
    g.assigned({("t", 0): 0})
    g.progress(1, 1.0, emptied=True)
    assert g.admit("t", 0, 41, now=1.0) == "hold"
    assert g.overdue(now=4.0) == [("t", 0)] and g.seek("t", 0, now=4.0) == 0
    g.progress(2, 4.5, emptied=True)
    assert g.admit("t", 0, 42, now=4.5) == "hold"
    g.progress(2, 5.01, emptied=True)
    assert g.admit("t", 0, 43, now=5.01) == "reseek"  # 1 s after the seek, queue empty


def test_an_idle_worker_counts_a_seek_as_failed_after_the_hold_alone() -> None:
    """Nothing queued (no batch for the hold): a seek whose re-read does not come is
    repeated after ``hold_s / 3`` as before, and the gate gives up after MAX_SEEKS."""
    from streamseg.gate import MAX_SEEKS, Gate

    g = Gate(hold_s=3.0, ahead=1000)
    g.assigned({("t", 0): 0})
    g.progress(1, 1.0)
    assert g.admit("t", 0, 41, now=1.0) == "hold"
    t, seeks = 4.0, 0
    while ("t", 0) in g.overdue(now=t):
        assert g.seek("t", 0, now=t) == 0
        seeks, t = seeks + 1, t + 1.0
    assert seeks == MAX_SEEKS and g.admit("t", 0, 42, now=t) == "apply"


def test_a_held_partition_is_re_read_when_its_hold_runs_out_even_with_no_later_event() -> None:
    """CI storm failure: after a kill -9 the restarted worker held everything Faust
    delivered ahead of the committed offset, and no later event came (the feeder waits
    for output) to notice the hold had run out: nothing was applied for 30 s."""
    h, table = harness(dataclasses.replace(CFG, gate_hold_s=0.05))
    seeks: list[tuple[Any, int]] = []

    async def seek(tp: Any, offset: int) -> None:
        seeks.append((tp, offset))

    h.app.app.consumer = SimpleNamespace(seek=seek, _gap={}, assignment=set)
    try:
        topic = CFG.topic_purchases
        h.ingest.on_assigned([], {(topic, 0): None})  # killed before its first commit
        h.offset = 2
        h.batch([h.message("purchase", b"c1", buy("e2", "c1", 2.0))])
        assert table.data == {} and seeks == []
        h.loop.run_until_complete(h.ingest.check_gate())
        assert seeks == []  # still within the hold
        time.sleep(0.06)
        h.loop.run_until_complete(h.ingest.check_gate())
        assert seeks == [((topic, 0), 0)]  # the timer re-reads from the committed offset
        assert metric(h, "streamseg_input_reseeks_total") == 1.0
        h.offset = 0  # the re-read: from the start, in order, up to the held event
        h.batch([h.message("purchase", b"c1", buy(f"e{i}", "c1", float(i))) for i in (0, 1)])
        h.batch([h.message("purchase", b"c1", buy("e2", "c1", 2.0))])
        state = table.state(0, "c1")
        assert state is not None and state["purchases"] == 3
    finally:
        h.close()


def test_offsets_skipped_after_the_seek_are_re_read_before_later_ones_apply() -> None:
    """CI crash-test failure: after a restore from the changelog Faust handed the agent
    offset 38 (the committed one), then 60: 39-59 were fetched before its seek, cleared
    from the stream queue, and never delivered again; Faust recorded them as a gap and
    committed past them. The gate re-reads from 39 and forgets Faust's gap."""
    h, table = harness()
    seeks: list[tuple[Any, int]] = []

    async def seek(tp: Any, offset: int) -> None:
        seeks.append((tp, offset))

    topic = CFG.topic_purchases
    gaps = {(topic, 0): IntervalTree.from_tuples([(39, 61)])}
    h.app.app.consumer = SimpleNamespace(seek=seek, _gap=gaps, assignment=set)
    try:
        h.ingest.on_assigned([], {(topic, 0): 38})
        h.offset = 38
        h.batch([h.message("purchase", b"c1", buy("e38", "c1", 38.0))])
        h.offset = 60
        jump = h.message("purchase", b"c1", buy("e60", "c1", 60.0))
        stale = h.message("purchase", b"c1", buy("e61", "c1", 61.0))
        h.batch([jump, stale])
        assert seeks == [((topic, 0), 39)] and not gaps[(topic, 0)]
        assert jump.message.acked and stale.message.acked  # withheld: not committed
        state = table.state(0, "c1")
        assert state is not None and state["purchases"] == 1
        h.offset = 39  # the re-read, in order, through the held events
        h.batch([h.message("purchase", b"c1", buy(f"e{i}", "c1", float(i)))
                 for i in range(39, 62)])
        state = table.state(0, "c1")
        assert state is not None and state["purchases"] == 24
        assert state["_positions"] == {f"{topic}:0": 61}
        assert metric(h, "streamseg_input_reseeks_total") == 1.0
    finally:
        h.close()


def test_a_batch_reads_and_writes_each_state_once_after_its_outputs() -> None:
    h, table = harness()
    try:
        writes_at_send: list[int] = []
        original = h.app.changes.send

        async def send(*args: Any, **kwargs: Any) -> Any:
            writes_at_send.append(table.writes)
            return await original(*args, **kwargs)

        h.app.changes.send = send  # type: ignore[method-assign]
        h.batch([h.message("purchase", b"c1", buy(f"e{i}", "c1", i * 3.0)) for i in range(5)])
        assert table.writes == 1
        assert writes_at_send and set(writes_at_send) == {0}
        assert h.count("purchase", "processed") == 5.0
    finally:
        h.close()


def test_the_event_clock_survives_a_restart() -> None:
    h, table = harness()
    try:
        h.send("purchase", b"ret", buy("r1", "ret", 0.0))
        for i in range(1, 12):
            h.send("purchase", b"o", buy(f"o{i}", "o", float(i)))
        clocks = dict(h.app.clocks)
        assert clocks[b"clock:0"] == codec.dumps((BASE + timedelta(days=11)).timestamp())
    finally:
        h.close()
    fresh, _ = harness()
    try:
        fresh.app.state = table  # type: ignore[assignment]
        fresh.app.clocks = clocks
        fresh.offset = 100  # after the inputs already applied
        fresh.send("purchase", b"ret", buy("r2", "ret", 12.0))  # 12 days after its last
        assert fresh.count("purchase", "processed") == 1.0
        assert fresh.app.dead_letters.sent == []
    finally:
        fresh.close()


def test_a_restored_event_clock_shows_on_the_gauges_before_any_input() -> None:
    """Regression (review10): a worker that joined after the input ended answered lookups
    on the clock restored from the partition-clock table while /metrics showed
    ``streamseg_event_clock_timestamp_seconds 0.0`` and an event-time lag of 0."""
    restored = (BASE + timedelta(days=11)).timestamp()
    h, _ = harness()
    try:
        h.app.clocks = {b"clock:1": codec.dumps(restored - DAY), b"clock:2": codec.dumps(restored)}
        h.ingest.punctuator.assign({1, 2})
        assert h.loop.run_until_complete(h.ingest.timer_ticks()) == []  # restores the clocks
        assert h.ingest.clock.max_seen == restored
        assert metric(h, "streamseg_event_clock_timestamp_seconds") == restored
        lag = metric(h, "streamseg_event_time_lag_seconds")
        assert abs(lag - (time.time() - restored)) < 60  # the newest event processed there
        h.send("purchase", b"c1", buy("e1", "c1", 12.0), partition=2)  # its own input from now
        assert metric(h, "streamseg_event_clock_timestamp_seconds") == restored + DAY
        assert abs(metric(h, "streamseg_event_time_lag_seconds")
                   - (time.time() - restored - DAY)) < 60
    finally:
        h.close()
    tick = Harness(CFG)  # a partition tick reads the stored clock too (Punctuator.open)
    try:
        tick.app.clocks = {b"clock:0": codec.dumps(restored)}
        tick.send("tick", None, codec.dumps({"now": restored}))
        assert metric(tick, "streamseg_event_clock_timestamp_seconds") == restored
    finally:
        tick.close()


def spy_rescore(h: Harness) -> list[str]:
    """The customers ``Engine.rescore`` (trigger "population") is called for, in order."""
    evaluated: list[str] = []
    rescore = h.ingest.engine.rescore

    def spy(state: Any, now: float) -> Any:
        evaluated.append(state.customer_id)
        return rescore(state, now)

    h.ingest.engine.rescore = spy  # type: ignore[method-assign]
    return evaluated


def test_customers_to_rescore_are_evaluated_at_the_next_partition_tick() -> None:
    h, _ = harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=1)
        h.send("purchase", b"c2", buy("e2", "c2", 1.0), partition=2)
        evaluated = spy_rescore(h)
        h.ingest.engine.moved = lambda: ["c1"]  # type: ignore[attr-defined]
        h.send("purchase", b"c2", buy("e3", "c2", 1.5), partition=2)  # a batch drains moved()
        h.ingest.engine.moved = list  # type: ignore[attr-defined]
        ticks = h.ingest.due_ticks()
        assert sorted(p for p, _ in ticks) == [1, 2]  # c1 may be on any owned partition
        for p, value in ticks:
            h.send("tick", None, value, partition=p)
        assert evaluated == ["c1"]  # found on partition 1 only
        assert h.ingest.due_ticks() == []
    finally:
        h.close()


def test_a_large_rescore_is_spread_over_quick_ticks() -> None:
    """A new cluster version that moved 277 customers made one batch of 100 ms (4
    partition ticks, each loading all 277), the events behind it waiting: p99 event ->
    change over 50 ms at 2,000 events/s. A tick now re-scores a share (at least 64 ids),
    the rest at the next tick, which the quick timer sends (``behind_ticks``)."""
    h, _ = harness()
    try:
        h.send("purchase", b"zz", buy("e1", "zz", 0.0), partition=1)
        evaluated = spy_rescore(h)
        moved = [*(f"x{i:03d}" for i in range(200)), "zz"]  # x...: on no partition here
        h.ingest.engine.moved = lambda: moved  # type: ignore[attr-defined]
        h.send("purchase", b"zz", buy("e2", "zz", 1.0), partition=1)  # drains moved()
        h.ingest.engine.moved = list  # type: ignore[attr-defined]
        assert h.loop.run_until_complete(h.ingest.behind_ticks()) == []  # nothing left behind yet
        ticks = h.ingest.due_ticks()
        rounds = when = 0
        while ticks:
            rounds += 1
            before = {p: len(h.ingest.punctuator.part(p).rescore) for p, _ in ticks}
            for p, value in ticks:
                h.send("tick", None, value, partition=p)
                left = len(h.ingest.punctuator.part(p).rescore)
                assert before[p] - left <= max(64, -(-before[p] // 4))  # a share, not all
            when = when or (rounds if evaluated else 0)
            quick = h.loop.run_until_complete(h.ingest.behind_ticks())
            assert h.loop.run_until_complete(h.ingest.behind_ticks()) == []  # one unread
            ticks = quick
        # 201 ids, the longest pending first: 64, 64, 64, 9; zz (named last) once, last
        assert rounds == 4 and when == 4 and evaluated == ["zz"]
        assert not h.ingest.punctuator.behind() and h.ingest.due_ticks() == []
    finally:
        h.close()


def test_a_schedule_rebuild_while_a_batch_awaits_its_acks_keeps_the_batchs_customers() -> None:
    """Regression (CRC32 integration test, 2 of 10 runs): the timer's first run after
    the clock starts rebuilds the schedules from the table; when it ran while the first
    batch awaited its outputs' acknowledgements, that batch's customers (pushed by emit,
    not yet written) vanished from the schedule and were never ticked."""
    h, _ = harness(Settings(max_future_skew_s=365 * DAY, allowed_lateness_s=0.0, partitions=4,
                            source_idle_s=0.0))
    try:
        release: asyncio.Future[None] = h.loop.create_future()
        original = h.app.changes.send

        async def slow_send(*args: Any, **kwargs: Any) -> Any:
            await original(*args, **kwargs)
            return release  # acknowledged only when the test says so

        h.app.changes.send = slow_send  # type: ignore[method-assign]

        async def scenario() -> list[tuple[int, bytes]]:
            batch = asyncio.ensure_future(h.ingest.handle_batch(
                [h.message("purchase", b"q", buy("q1", "q", 0.0), partition=1)]))
            for _ in range(5):
                await asyncio.sleep(0)  # the batch is now waiting for its acks
            assert not batch.done()
            timer = asyncio.ensure_future(h.ingest.timer_ticks())  # first run: rebuild
            for _ in range(5):
                await asyncio.sleep(0)
            release.set_result(None)
            await batch
            return await timer

        h.loop.run_until_complete(scenario())
        h.app.changes.send = original  # type: ignore[method-assign]
        # the clock moves 200 days on (another customer): q lapses with no event
        h.send("click", b"busy", codec.dumps({"event_id": "b1", "customer_id": "busy",
                                              "ts": at(200.0), "type": "page_view"}),
               partition=2)
        ticks = h.ingest.due_ticks()
        assert 1 in [p for p, _ in ticks]
        assert "q" in h.ingest.parts[1].ready
    finally:
        h.close()


def test_the_schedule_is_rebuilt_only_once_the_assigned_tables_are_restored() -> None:
    from types import SimpleNamespace

    h, _ = harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=1)
        tables = SimpleNamespace(actives_ready=False)  # Faust: a changelog recovery runs
        h.app.app.tables = tables
        h.ingest.on_assigned([SimpleNamespace(topic=CFG.topic_purchases, partition=1)], {})
        assert h.ingest.due_ticks() == [] and h.ingest.punctuator.rebuild  # waits
        tables.actives_ready = True
        h.ingest.due_ticks()
        assert not h.ingest.punctuator.rebuild
        assert len(h.ingest.parts[1].schedule) == 1  # c1, from the table
    finally:
        h.close()


def test_a_worker_started_with_other_thresholds_re_evaluates_its_customers_at_the_next_tick(
    caplog: Any,
) -> None:
    # review 12: STREAMSEG_NEW_DAYS lowered between two runs on the same state. The label
    # the new definition no longer gives is not at any due time after the customer's last
    # event, so it stayed `new` until the customer's next event published the move there
    h, table = harness()
    try:
        h.send("purchase", b"c1", buy("e1", "c1", 0.0), partition=0)
        h.send("click", b"c1", codec.dumps({"event_id": "k1", "customer_id": "c1",
                                             "type": "page_view", "ts": at(8.0)}), partition=0)
        h.send("purchase", b"c2", buy("e2", "c2", 9.0), partition=1)  # the clock: day 9
        stored = table.state(0, "c1")
        assert stored is not None and stored["segments"]["lifecycle"][0] == "new"
        clocks = dict(h.app.clocks)
    finally:
        h.close()
    again, _ = harness(dataclasses.replace(CFG, new_days=5.0))  # restarted, other settings
    try:
        again.app.state = table  # type: ignore[assignment]
        again.app.clocks.update(clocks)
        again.ingest.punctuator.assign({0, 1, 2, 3})  # the assignment: clocks restored
        with caplog.at_level("WARNING"):
            ticks = again.ingest.due_ticks()
        assert "2 customers were last evaluated under other segment settings" in caplog.text
        for p, value in ticks:
            again.send("tick", None, value, partition=p)
        moved = [codec.loads(v) for _, v in again.app.changes.sent if v]
        assert [(c["customer_id"], c["segmenter"], c["from_segment"], c["to_segment"],
                 c["trigger"], c["event_time"][:10]) for c in moved
                if c["segmenter"] == "lifecycle"] == [
            ("c1", "lifecycle", "new", "active", "population", "2026-01-09")]
        again.send("tick", None, codec.dumps({"now": 9.5 * DAY + BASE.timestamp()}), partition=0)
        assert len(again.app.changes.sent) == len(moved)  # once
    finally:
        again.close()


# a helper's review of the share rule (b6817ce): each failed on it

def test_a_customer_whose_id_sorts_last_is_rescored_while_moves_keep_coming() -> None:
    """take_rescore takes the lowest ids first. While population models name >64 other
    customers per tick (a refit under load, a backfill), a customer whose id sorts after
    them is never re-scored: before b6817ce every tick re-scored every pending id."""
    h, _ = harness()
    try:
        h.send("purchase", b"zz", buy("e1", "zz", 0.0), partition=1)
        evaluated = spy_rescore(h)
        h.ingest.rescore(["zz"])  # a population model moved zz
        rng = random.Random(7)
        for _round in range(40):  # 40 partition ticks (10 s at the 0.25 s cadence)
            # meanwhile the models name 80 other customers (ids sort before "zz")
            h.ingest.rescore([f"c{rng.getrandbits(48):012x}" for _ in range(80)])
            for p, value in h.ingest.due_ticks():
                h.send("tick", None, value, partition=p)
            if "zz" in evaluated:
                break
        assert "zz" in evaluated, (
            f"zz never re-scored in 40 ticks; {len(h.ingest.parts[1].rescore)} pending on p1")
    finally:
        h.close()


def test_behind_is_reset_when_the_pending_rest_is_dropped_by_a_rebuild() -> None:
    """A rebalance rebuild drops the pending ids it no longer owns (retain) but leaves
    ``behind`` set: the next small re-score (1 id) then ticks on the 0.25 s timer
    instead of tick_interval_s, the timer ticking every partition's due customers too."""
    h, _ = harness()
    try:
        h.send("purchase", b"zz", buy("e1", "zz", 0.0), partition=1)
        for i in range(200):  # named by the population models, on no owned partition
            h.ingest.engine.queue(f"x{i:03d}")
        h.ingest.queue_moved()
        for p, value in h.ingest.due_ticks():
            h.send("tick", None, value, partition=p)
        assert h.ingest.punctuator.behind()
        h.ingest.on_assigned([SimpleNamespace(topic=CFG.topic_purchases, partition=p)
                              for p in range(4)], {})
        h.ingest.due_ticks()  # the rebuild: x... are forgotten (retain), pending emptied
        assert all(not s.rescore for s in h.ingest.parts.values())
        h.ingest.rescore(["zz"])  # one ordinary move
        assert not h.ingest.punctuator.behind(), "a single pending id counts as behind"
    finally:
        h.close()


def test_queued_ticks_in_one_batch_do_not_rebuild_the_long_batch() -> None:
    """The 0.25 s timer sends a tick each run while a partition is behind, with no
    regard for ticks already sent and not yet read. Under load (the ticks topic read
    late) several land in one batch and each takes its share: the whole set in one
    batch again, the case the change meant to remove."""
    h, _ = harness()
    try:
        h.send("purchase", b"zz", buy("e1", "zz", 0.0), partition=1)
        h.ingest.rescore([f"x{i:03d}" for i in range(300)])
        queued = []
        for _ in range(4):  # 1 s of the quick timer, before any of them is read
            ticks = h.loop.run_until_complete(h.ingest.timer_ticks())
            queued += [h.message("tick", None, v, partition=p) for p, v in ticks if p == 1]
        assert len(queued) == 4
        h.batch(queued)
        taken = 300 - len(h.ingest.parts[1].rescore)
        assert taken <= 75, f"4 queued ticks re-scored {taken} of 300 pending ids in one batch"
    finally:
        h.close()
