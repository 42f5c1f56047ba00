"""Consent first after an assignment (``streamseg.consentfirst``, ``Gate.defer``, the ingest)."""

from __future__ import annotations

import dataclasses
import time
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from unit.test_edge_batch import CFG, buy, consent, harness, metric

from streamseg import assignment as assignment_module
from streamseg import codec
from streamseg.config import DAY
from streamseg.consentfirst import ConsentFirst
from streamseg.gate import Gate

CONSENT, PURCHASES = CFG.topic_consent, CFG.topic_purchases


def test_a_partition_with_nothing_new_is_not_waited_for() -> None:
    cf = ConsentFirst(give_up_s=3.0)
    cf.assigned({(CONSENT, 0): 7, (CONSENT, 1): None}, {(CONSENT, 0): 7, (CONSENT, 1): 0})
    assert cf.behind == {}


def test_the_wait_follows_each_partition_to_its_end() -> None:
    cf = ConsentFirst(give_up_s=3.0)
    cf.assigned({(CONSENT, 0): 2}, {(CONSENT, 0): 5, (CONSENT, 1): 1})
    cf.took(now=0.0)
    cf.read(CONSENT, 0, 3, now=0.5)
    cf.read(CONSENT, 1, 0, now=0.6)
    assert cf.behind == {(CONSENT, 0): (4, 5)} and cf.stalled(now=1.0) == []
    cf.read(CONSENT, 0, 4, now=1.1)
    assert cf.behind == {}


def test_a_stall_re_reads_consent_once_then_the_wait_gives_up() -> None:
    cf = ConsentFirst(give_up_s=3.0)
    cf.assigned({(CONSENT, 0): 2}, {(CONSENT, 0): 5})
    assert cf.stalled(now=100.0) == []  # nothing taken yet: tables being restored
    cf.took(now=100.0)
    cf.read(CONSENT, 0, 2, now=102.0)  # consent moving: the clock starts again
    assert cf.stalled(now=104.9) == []
    assert cf.stalled(now=105.0) == [((CONSENT, 0), 3)]  # from the next offset
    assert cf.stalled(now=107.9) == [] and cf.behind
    assert cf.stalled(now=108.0) == [] and cf.behind == {}


def test_a_deferred_partition_waits_for_its_release_then_is_re_read_from_the_first_event() -> None:
    g = Gate(hold_s=0.01)
    g.assigned({("p", 0): 3})
    assert g.admit("p", 0, 3, now=0.0) == "apply"
    assert g.defer("p", 0, 4, now=0.0) == "hold"
    assert g.defer("p", 0, 3, now=0.0) == "hold"  # a re-delivery: held too
    assert g.admit("p", 0, 4, now=1.0) == "hold"  # consent done mid-batch: still held
    assert g.overdue(now=10.0) == []  # never re-read before its release
    assert g.release(now=10.0) == [("p", 0)] and g.release(now=10.0) == []
    assert g.seek("p", 0, now=10.0) == 4
    assert [g.admit("p", 0, o, now=10.1) for o in (4, 5, 6)] == ["apply"] * 3
    assert g.admit("p", 0, 9, now=10.2) == "reseek"  # watched again: a jump is re-read


def test_a_watched_partition_deferred_at_a_jump_is_re_read_from_the_offset_expected() -> None:
    g = Gate(hold_s=3.0)
    g.assigned({("p", 0): 3})
    assert [g.admit("p", 0, o, now=0.0) for o in (3, 4)] == ["apply", "apply"]
    assert g.defer("p", 0, 9, now=0.1) == "hold"  # 5-8 skipped (Faust's gap)
    assert g.release(now=1.0) == [("p", 0)] and g.seek("p", 0, now=1.0) == 5


def test_an_event_the_gate_holds_anyway_is_held_as_before() -> None:
    g = Gate(hold_s=3.0)
    g.assigned({("p", 0): 3})
    assert g.defer("p", 0, 8, now=0.0) == "hold"  # ahead of the committed offset
    assert not g.closed[("p", 0)].deferred and g.release(now=1.0) == []
    assert g.overdue(now=3.0) == [("p", 0)]


class Broker:
    """The consumer and the broker calls of ``Assignment.follow``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, ends: dict[tuple[str, int], int],
                 committed: dict[tuple[str, int], int | None],
                 starts: dict[tuple[str, int], int] | None = None) -> None:
        starts = starts or {}
        self.assignment = {TP(CONSENT, 0), TP(PURCHASES, 0)}
        self.seeks: list[tuple[Any, int]] = []
        self.positions: dict[tuple[str, int], int] = {}
        self.calls = 0

        async def committed_offsets(settings: Any, tps: Any) -> dict[Any, Any]:
            self.calls += 1
            return {(tp.topic, tp.partition): committed.get((tp.topic, tp.partition))
                    for tp in tps}

        async def log_spans(settings: Any, tps: Any, topic: str) -> dict[Any, Any]:
            return {(tp.topic, tp.partition): (starts.get((tp.topic, tp.partition), 0),
                                               ends[tp.topic, tp.partition])
                    for tp in tps if tp.topic == topic and (tp.topic, tp.partition) in ends}

        monkeypatch.setattr(assignment_module, "committed_offsets", committed_offsets)
        monkeypatch.setattr(assignment_module, "log_spans", log_spans)

    async def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp, offset))

    async def position(self, tp: Any) -> int | None:
        return self.positions.get((tp.topic, tp.partition))

    def consumer(self) -> SimpleNamespace:
        return SimpleNamespace(seek=self.seek, _gap={}, assignment=lambda: self.assignment,
                               position=self.position)


def message(h: Any, stream: str, key: bytes, value: bytes, offset: int) -> Any:
    h.offset = offset
    return h.message(stream, key, value)


def purchases_after_one(h: Any, table: Any) -> int | None:
    """c1's purchases after a batch of its purchase at offset 5 (None: no state)."""
    h.batch([message(h, "purchase", b"c1", buy("e1", "c1", 1.0), offset=5)])
    state = table.state(0, "c1")
    return None if state is None else int(state["purchases"])


def test_a_purchase_read_before_the_withdrawal_that_precedes_it_is_never_profiled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a restart with a backlog: Faust hands the purchase (made after the withdrawal)
    # first; without consent first it was profiled and its change published
    h, table = harness()
    broker = Broker(monkeypatch, ends={(CONSENT, 0): 1},
                    committed={(CONSENT, 0): None, (PURCHASES, 0): 10})
    h.app.app.consumer = broker.consumer()
    try:
        later = message(h, "purchase", b"c1", buy("e2", "c1", 2.0), offset=10)
        withdrawal = message(h, "consent", b"c1", consent("w", "c1", "consent_withdrawn", 1.0),
                             offset=0)
        h.batch([later, withdrawal])
        assert later.message.acked  # withheld: not committed, re-read
        assert broker.seeks == [((PURCHASES, 0), 10)]  # re-read once consent is read
        assert metric(h, "streamseg_input_held_total") == 1.0
        h.batch([message(h, "purchase", b"c1", buy("e2", "c1", 2.0), offset=10)])
        assert h.count("purchase", "no_consent") == 1.0
        assert [v for v in h.app.changes.values() if v.get("kind") == "change"] == []
        state = table.state(0, "c1")
        assert state is not None and state["purchases"] == 0
        h.batch([message(h, "purchase", b"c1", buy("e3", "c1", 3.0), offset=11)])
        assert broker.calls == 1  # the offsets are asked once per assignment (generation)
        h.app.app.consumer_generation_id += 1  # a rebalance, the same partitions
        h.batch([message(h, "purchase", b"c1", buy("e4", "c1", 4.0), offset=13)])
        # the batch closed the gate at the committed offset (10) before its first event
        assert broker.calls == 2 and metric(h, "streamseg_input_held_total") == 2.0
    finally:
        h.close()


def test_inputs_wait_and_no_tick_goes_out_until_the_wait_gives_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h, table = harness(dataclasses.replace(CFG, gate_hold_s=0.02))  # a stall: 0.06 s
    broker = Broker(monkeypatch, ends={(CONSENT, 0): 4},
                    committed={(CONSENT, 0): None, (PURCHASES, 0): 5})
    h.app.app.consumer = broker.consumer()
    try:
        h.batch([message(h, "purchase", b"c1", buy("e1", "c1", 1.0), offset=5)])
        assert table.data == {} and broker.seeks == []
        assert h.loop.run_until_complete(h.ingest.timer_ticks()) == []
        h.loop.run_until_complete(h.ingest.check_gate())
        assert broker.seeks == []
        time.sleep(0.07)  # the consent records never come (a marker at the end, say)
        h.loop.run_until_complete(h.ingest.check_gate())
        assert broker.seeks == [((CONSENT, 0), 0)]  # first: consent re-read
        time.sleep(0.07)
        h.loop.run_until_complete(h.ingest.check_gate())
        assert broker.seeks[1:] == [((PURCHASES, 0), 5)]  # then the wait gives up
        assert purchases_after_one(h, table) == 1
    finally:
        h.close()


def test_a_consent_partition_never_fetched_is_re_read_and_its_withdrawal_applied_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Operator review 34 (F2): after a kill -9 and a rebalance, a consent partition with
    no commit, written while its owner was dead, was never fetched by the new owner:
    withdrawn customers stayed targeted and 28 changes went out for them, until a new
    consent record came. The stall re-reads it from its start; inputs wait for it."""
    h, table = harness(dataclasses.replace(CFG, gate_hold_s=0.02))
    broker = Broker(monkeypatch, ends={(CONSENT, 0): 1},
                    committed={(CONSENT, 0): None, (PURCHASES, 0): 5})
    broker.positions[CONSENT, 0] = 1  # the position stood at the end: not trusted
    h.app.app.consumer = broker.consumer()
    try:
        later = message(h, "purchase", b"c1", buy("e2", "c1", 2.0), offset=5)
        h.batch([later])  # the consent partition delivers nothing
        time.sleep(0.07)
        h.batch([message(h, "purchase", b"c1", buy("e3", "c1", 3.0), offset=6)])
        assert broker.seeks == [((CONSENT, 0), 0)] and table.data == {}
        h.batch([message(h, "consent", b"c1", consent("w", "c1", "consent_withdrawn", 1.0),
                         offset=0)])  # the re-read
        assert broker.seeks[1:] == [((PURCHASES, 0), 5)]
        h.batch([message(h, "purchase", b"c1", buy(f"e{o - 3}", "c1", o - 3.0), offset=o)
                 for o in (5, 6)])
        assert h.count("purchase", "no_consent") == 2.0
        assert [v for v in h.app.changes.values() if v.get("kind") == "change"] == []
    finally:
        h.close()


TICKS = CFG.topic_ticks


def test_inputs_also_wait_for_the_copies_of_the_consent_read_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Diff review 34: a withdrawal through another partitioner reaches the customer's
    partition as a copy on the ticks topic, written while the backlog is read; purchases
    re-read before it were published for 13-17 of 24 customers after a restart."""
    h, table = harness()
    broker = Broker(monkeypatch, ends={(CONSENT, 0): 1, (TICKS, 0): 2},
                    committed={(CONSENT, 0): None, (PURCHASES, 0): 10, (TICKS, 0): None})
    broker.assignment.add(TP(TICKS, 0))
    h.app.app.consumer = broker.consumer()
    try:
        later = message(h, "purchase", b"c1", buy("e2", "c1", 2.0), offset=10)
        withdrawal = message(h, "consent", b"c9", consent("w", "c9", "consent_withdrawn", 1.0),
                             offset=0)
        h.batch([later, withdrawal])
        assert broker.seeks == [] and h.ingest.consent_first.stage == "copies"
        assert h.loop.run_until_complete(h.ingest.timer_ticks()) == []
        h.batch([message(h, "tick", None, codec.dumps({"now": DAY}), offset=0)])
        assert broker.seeks == []
        h.batch([message(h, "tick", None, codec.dumps({"now": DAY}), offset=1)])
        assert broker.seeks == [((PURCHASES, 0), 10)]
        assert h.ingest.consent_first.stage is None and table.data.get(b"c1") is None
    finally:
        h.close()


def test_a_commit_marker_the_consumer_has_read_past_ends_the_wait_without_a_re_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Diff review 34: a transactional consent producer's end offset is a commit marker
    (no record there): the last offset never arrived and every restart stalled inputs and
    ticks for 10 s."""
    h, _ = harness(dataclasses.replace(CFG, gate_hold_s=0.02))
    broker = Broker(monkeypatch, ends={(CONSENT, 0): 4},
                    committed={(CONSENT, 0): 2, (PURCHASES, 0): 5})
    broker.positions[CONSENT, 0] = 4  # the consumer is past the marker at 3
    h.app.app.consumer = broker.consumer()
    try:
        h.batch([message(h, "consent", b"c9", consent("w", "c9", "consent_withdrawn", 1.0),
                         offset=2),
                 message(h, "purchase", b"c1", buy("e1", "c1", 1.0), offset=5)])
        assert broker.seeks == []
        time.sleep(0.01)
        h.loop.run_until_complete(h.ingest.check_gate())
        assert broker.seeks == [((PURCHASES, 0), 5)]  # consent not re-read
    finally:
        h.close()


def test_nothing_is_waited_for_when_the_committed_offsets_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h, table = harness()
    broker = Broker(monkeypatch, ends={(CONSENT, 0): 4}, committed={})

    async def fails(settings: Any, tps: Any) -> dict[Any, Any]:
        raise OSError("broker away")

    monkeypatch.setattr(assignment_module, "committed_offsets", fails)
    h.app.app.consumer = broker.consumer()
    try:
        assert purchases_after_one(h, table) == 1
    finally:
        h.close()


def test_a_consent_partition_emptied_by_retention_is_not_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Diff review 34: consent records deleted by retention before the group read them
    (no commit, log start = end): the wait stalled inputs for 10 s at every restart."""
    h, table = harness()
    broker = Broker(monkeypatch, ends={(CONSENT, 0): 4}, starts={(CONSENT, 0): 4},
                    committed={(CONSENT, 0): None, (PURCHASES, 0): 5})
    h.app.app.consumer = broker.consumer()
    try:
        assert purchases_after_one(h, table) == 1 and broker.seeks == []
    finally:
        h.close()


def test_the_position_is_trusted_only_for_a_last_offset_after_a_commit_or_a_read() -> None:
    cf = ConsentFirst(give_up_s=9.0)
    cf.assigned({(CONSENT, 0): 3, (CONSENT, 1): None}, {(CONSENT, 0): 4, (CONSENT, 1): 1})
    cf.took(now=0.0)
    # consent[0]: committed before a marker (a transactional producer, restarted);
    # consent[1]: no commit, one record, nothing read (the kill -9 case: not trusted)
    assert cf.at_marker(now=1.0) == [((CONSENT, 0), 4)]
    cf.assigned({(CONSENT, 0): None}, {(CONSENT, 0): 4}, firsts={(CONSENT, 0): 4})
    assert cf.behind == {}  # retention deleted it all: nothing to wait for
