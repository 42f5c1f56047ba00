"""Consent first after an assignment (``streamseg.consentfirst``, ``Gate.defer``, the ingest)."""

from __future__ import annotations

import dataclasses
import time
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from unit.test_edge_batch import CFG, buy, consent, harness, metric

from streamseg import ingest as ingest_module
from streamseg.consentfirst import ConsentFirst
from streamseg.gate import Gate

CONSENT, PURCHASES = CFG.topic_consent, CFG.topic_purchases


def test_a_partition_with_nothing_new_is_not_waited_for() -> None:
    cf = ConsentFirst(give_up_s=3.0)
    cf.assigned({(CONSENT, 0): 7, (CONSENT, 1): None}, {(CONSENT, 0): 7, (CONSENT, 1): 0})
    assert cf.behind == {} and cf.done(now=0.0)


def test_the_wait_follows_each_partition_to_its_end() -> None:
    cf = ConsentFirst(give_up_s=3.0)
    cf.assigned({(CONSENT, 0): 2}, {(CONSENT, 0): 5, (CONSENT, 1): 1})
    cf.took(now=0.0)
    cf.read(CONSENT, 0, 3, now=0.5)
    cf.read(CONSENT, 1, 0, now=0.6)
    assert cf.behind == {(CONSENT, 0): (4, 5)} and not cf.done(now=1.0)
    cf.read(CONSENT, 0, 4, now=1.1)
    assert cf.done(now=1.1)


def test_the_wait_gives_up_only_while_events_are_taken_with_no_consent_among_them() -> None:
    cf = ConsentFirst(give_up_s=3.0)
    cf.assigned({}, {(CONSENT, 0): 5})
    assert not cf.done(now=100.0)  # nothing taken yet: tables being restored
    cf.took(now=100.0)
    cf.read(CONSENT, 0, 1, now=102.0)  # consent moving: the clock starts again
    assert not cf.done(now=104.9)
    assert cf.done(now=105.0) and cf.behind == {}


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
    """The consumer and the broker calls of ``Ingest.follow_assignment``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, ends: dict[tuple[str, int], int],
                 committed: dict[tuple[str, int], int | None]) -> None:
        self.assignment = {TP(CONSENT, 0), TP(PURCHASES, 0)}
        self.seeks: list[tuple[Any, int]] = []
        self.calls = 0

        async def committed_offsets(settings: Any, tps: Any) -> dict[Any, Any]:
            self.calls += 1
            return {(tp.topic, tp.partition): committed.get((tp.topic, tp.partition))
                    for tp in tps}

        async def end_offsets(settings: Any, tps: Any) -> dict[Any, Any]:
            return {(tp.topic, tp.partition): ends[tp.topic, tp.partition] for tp in tps
                    if tp.topic == CONSENT}

        monkeypatch.setattr(ingest_module, "committed_offsets", committed_offsets)
        monkeypatch.setattr(ingest_module, "end_offsets", end_offsets)

    async def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp, offset))

    def consumer(self) -> SimpleNamespace:
        return SimpleNamespace(seek=self.seek, _gap={}, assignment=lambda: self.assignment)


def message(h: Any, stream: str, key: bytes, value: bytes, offset: int) -> Any:
    h.offset = offset
    return h.message(stream, key, value)


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
    h, table = harness(dataclasses.replace(CFG, gate_hold_s=0.02))  # gives up after 0.06 s
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
        assert broker.seeks == [((PURCHASES, 0), 5)]
        h.batch([message(h, "purchase", b"c1", buy("e1", "c1", 1.0), offset=5)])
        state = table.state(0, "c1")
        assert state is not None and state["purchases"] == 1
    finally:
        h.close()
