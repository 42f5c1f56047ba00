"""The engine contract: a segmenter is driven only through its protocol methods.

A toy population segmenter (``above`` / ``below`` the population's mean spend)
checks that ``Engine.moved`` drains every segmenter, ``Engine.rescore`` publishes
with trigger ``population``, honours ``hold`` and evaluates only the segmenters
that named the customer, and that a clock tick
evaluates only the segmenters due at that instant.
"""

from __future__ import annotations

import copy
import inspect

from streamseg.config import DAY, Settings
from streamseg.engine import scheduler
from streamseg.engine.events import Event
from streamseg.engine.features import NEVER, CustomerState
from streamseg.engine.processor import Engine
from streamseg.engine.segmenters import default
from streamseg.engine.segmenters.base import Assignment, Segmenter, Trigger
from streamseg.engine.segmenters.frequency import FrequencySegmenter


class MeanSpend:
    """``above`` or ``below`` the mean total spend of the buyers seen (a population model)."""

    name = "spend"
    reads_segments = False
    reacts_to = None

    def __init__(self, sticky: bool = False) -> None:
        self.spend: dict[str, float] = {}
        self.pending: list[str] = []
        self.sticky = sticky  # hold: keep ``above`` on population moves
        self.assigned = 0

    def mean(self) -> float:
        return sum(self.spend.values()) / len(self.spend) if self.spend else 0.0

    def assign(self, state: CustomerState, now: float) -> Assignment | None:
        self.assigned += 1
        if state.purchases == 0:
            return None
        return Assignment("above" if state.monetary >= self.mean() else "below", "spend")

    def learn(self, state: CustomerState, now: float) -> None:
        if state.purchases:
            self.spend[state.customer_id] = state.monetary
            self.pending = sorted(c for c in self.spend if c != state.customer_id)

    def forget(self, customer_id: str) -> None:
        self.spend.pop(customer_id, None)

    def restore(self, state: CustomerState) -> None:
        self.learn(state, state.last_seen)

    def customers(self) -> list[str]:
        return list(self.spend)

    def due(self, state: CustomerState, after: float) -> float | None:
        return None

    def moved(self) -> list[str]:
        out, self.pending = self.pending, []
        return out

    def hold(self, state: CustomerState, current: str, verdict: Assignment, now: float,
             trigger: Trigger) -> bool:
        return self.sticky and trigger == "population" and current == "above"

    def describe(self, segment: str) -> str:
        return segment


def buy(eid: str, cid: str, day: float, amount: float) -> Event:
    return Event("purchase", "purchase", eid, cid, day * DAY, amount=amount)


def test_every_segmenter_implements_the_protocol() -> None:
    names = [m for m in ("assign", "learn", "forget", "restore", "customers", "due", "moved",
                         "hold", "describe")]
    for seg in [*default(Settings()), MeanSpend()]:
        assert all(callable(getattr(seg, m)) for m in names), seg.name
        _: Segmenter = seg  # mypy checks the protocol here


def test_retain_forgets_through_each_segmenters_own_forget() -> None:
    # after a rebalance the engine keeps the customers of the owned partitions only:
    # every other customer a population model holds is forgotten by that segmenter
    spend, other = MeanSpend(), MeanSpend()
    other.name = "other"
    eng = Engine(Settings(), [spend, other, FrequencySegmenter(Settings())])
    for i, cid in enumerate(("a", "b", "c")):
        eng.apply(None, buy(f"e{i}", cid, i, 10.0 * (i + 1)))
    other.forget("c")  # each model holds whom it holds
    eng.moved()  # "a" and "b" wait for a rescore
    assert set(eng._moved) == {"a", "b"}
    assert eng.retain({"a"}) == ["b", "c"]
    assert spend.customers() == other.customers() == ["a"]
    assert set(eng._moved) == {"a"}  # no rescore left waiting for a customer gone
    assert eng.retain({"a"}) == []


def test_the_scheduler_has_no_per_segmenter_special_cases() -> None:
    source = inspect.getsource(scheduler)
    assert "isinstance" not in source and "getattr" not in source


def test_population_moves_rescore_with_their_own_trigger() -> None:
    seg = MeanSpend()
    eng = Engine(Settings(), [seg])
    a = eng.apply(None, buy("e1", "a", 0, 10.0)).state
    assert a is not None and a.segments["spend"][0] == "above"  # alone: at the mean
    b = eng.apply(None, buy("e2", "b", 1, 30.0)).state  # the mean is now 20
    assert b is not None
    assert eng.moved() == ["a"] and eng.moved() == []  # drained
    out = eng.rescore(a, 1 * DAY)
    assert [(c["from_segment"], c["to_segment"], c["trigger"]) for c in out.changes] == [
        ("above", "below", "population")]
    assert out.segments is not None and out.due_known


def test_rescore_honours_the_segmenters_hold() -> None:
    eng = Engine(Settings(), [MeanSpend(sticky=True)])
    a = eng.apply(None, buy("e1", "a", 0, 10.0)).state
    eng.apply(None, buy("e2", "b", 1, 30.0))
    assert a is not None and eng.moved() == ["a"]
    assert eng.rescore(a, 1 * DAY).changes == []
    assert eng.verdict(a, "spend", 1 * DAY) == ("below", True)
    assert Engine(Settings(hysteresis=False), eng.segmenters).verdict(a, "spend", DAY) == (
        "below", False)


def test_rescore_evaluates_only_the_segmenters_that_moved() -> None:
    quiet, loud = MeanSpend(), MeanSpend(sticky=True)  # loud holds: no change published
    quiet.name = "quiet"
    quiet.learn = lambda state, now: None  # type: ignore[method-assign]  # never moves anyone
    eng = Engine(Settings(), [quiet, loud])
    a = eng.apply(None, buy("e1", "a", 0, 10.0)).state
    eng.apply(None, buy("e2", "b", 1, 30.0))
    assert a is not None and eng.moved() == ["a"]
    before = (quiet.assigned, loud.assigned)
    assert eng.rescore(a, 1 * DAY).changes == []
    assert (quiet.assigned, loud.assigned) == (before[0], before[1] + 1)
    eng.rescore(a, 1 * DAY)  # not named by moved() since: every segmenter, as before
    assert (quiet.assigned, loud.assigned) == (before[0] + 1, before[1] + 2)


def test_a_population_change_lets_the_other_segmenters_read_it() -> None:
    spend, follower = MeanSpend(), MeanSpend()
    follower.name = "follows"  # a rule over the published "spend" segment (like an audience)
    follower.reads_segments = True
    follower.learn = lambda state, now: None  # type: ignore[method-assign]
    follower.assign = lambda state, now: (  # type: ignore[method-assign]
        None if "spend" not in state.segments
        else Assignment("yes" if state.segments["spend"][0] == "above" else "no", "rule"))
    eng = Engine(Settings(), [spend, follower])
    a = eng.apply(None, buy("e1", "a", 0, 10.0)).state
    assert a is not None and a.segments["follows"][0] == "yes"
    eng.apply(None, buy("e2", "b", 1, 30.0))
    assert eng.moved() == ["a"]
    out = eng.rescore(a, 1 * DAY)
    assert [(c["segmenter"], c["to_segment"], c["trigger"]) for c in out.changes] == [
        ("spend", "below", "population"), ("follows", "no", "population")]


def test_a_population_change_skips_segmenters_that_read_no_segments() -> None:
    spend, other = MeanSpend(), MeanSpend()
    other.name = "other"  # its population never moves and it reads no published segment
    other.moved = lambda: []  # type: ignore[method-assign]
    eng = Engine(Settings(), [spend, other])
    a = eng.apply(None, buy("e1", "a", 0, 10.0)).state
    assert a is not None
    eng.apply(None, buy("e2", "b", 1, 30.0))
    assert eng.moved() == ["a"]
    before = other.assigned
    out = eng.rescore(a, 1 * DAY)  # "spend" moves "a"; "other" is not evaluated at all
    assert [(c["segmenter"], c["to_segment"]) for c in out.changes] == [("spend", "below")]
    assert other.assigned == before


class IdleCutoff:
    """``idle`` once a customer has been idle ``limit`` days, a limit the population sets."""

    name = "idle"
    reads_segments = False
    reacts_to = None

    def __init__(self) -> None:
        self.limit = 30.0
        self.pending: list[str] = []

    def assign(self, state: CustomerState, now: float) -> Assignment | None:
        late = now - state.last_seen >= self.limit * DAY
        return Assignment("idle" if late else "recent", "cutoff")

    def learn(self, state: CustomerState, now: float) -> None:
        return None

    def forget(self, customer_id: str) -> None:
        return None

    def due(self, state: CustomerState, after: float) -> float | None:
        t = state.last_seen + self.limit * DAY
        return t if t > after else None

    def moved(self) -> list[str]:
        out, self.pending = self.pending, []
        return out

    def hold(self, state: CustomerState, current: str, verdict: Assignment, now: float,
             trigger: Trigger) -> bool:
        return False

    def describe(self, segment: str) -> str:
        return segment


def test_a_new_model_is_never_applied_before_it_existed() -> None:
    # the cutoff drops from 30 to 5 idle days at day 20: the customer idle since day 0
    # moves at day 20 (population), not at day 5 (a clock move the old model never made)
    seg = IdleCutoff()
    eng = Engine(Settings(), [seg])
    a = eng.apply(None, buy("e1", "a", 0, 10.0)).state
    assert a is not None and a.segments["idle"][0] == "recent"
    assert eng.due(a) == 30 * DAY
    seg.limit, seg.pending = 5.0, ["a"]
    assert eng.moved() == ["a"]
    out = eng.rescore(a, 20 * DAY)
    assert [(c["to_segment"], c["trigger"], c["event_time"]) for c in out.changes] == [
        ("idle", "population", "1970-01-21T00:00:00Z")]
    # the same when another segmenter is due before the rescore (the clock walk runs):
    # that one moves at its own time, the moved one is not walked
    seg, alarm = IdleCutoff(), IdleCutoff()
    alarm.name, alarm.limit = "alarm", 10.0
    eng = Engine(Settings(), [seg, alarm])
    a = eng.apply(None, buy("e1", "a", 0, 10.0)).state
    assert a is not None and eng.due(a) == 10 * DAY
    seg.limit, seg.pending = 5.0, ["a"]
    assert eng.moved() == ["a"]
    out = eng.rescore(a, 20 * DAY)
    assert [(c["segmenter"], c["trigger"], c["event_time"]) for c in out.changes] == [
        ("alarm", "clock", "1970-01-11T00:00:00Z"),
        ("idle", "population", "1970-01-21T00:00:00Z")]


def test_a_rescore_at_another_segmenters_due_time_makes_that_move_too() -> None:
    # "spend" moves "a" at day 30, the very instant "idle" is due: the rescore evaluates
    # "spend" only, so it must walk the due times up to and including day 30 itself
    eng = Engine(Settings(), [MeanSpend(), IdleCutoff()])
    a = eng.apply(None, buy("e1", "a", 0, 10.0)).state
    eng.apply(None, buy("e2", "b", 1, 30.0))
    assert a is not None and eng.due(a) == 30 * DAY and eng.moved() == ["a"]
    out = eng.rescore(a, 30 * DAY)
    assert [(c["segmenter"], c["to_segment"], c["trigger"]) for c in out.changes] == [
        ("idle", "idle", "clock"), ("spend", "below", "population")]
    assert a.segments["idle"][0] == "idle" and out.due is None


def test_a_rescore_that_changes_nothing_plans_the_moved_segmenters_afresh() -> None:
    idle = IdleCutoff()
    eng = Engine(Settings(), [MeanSpend(sticky=True), idle])
    a = eng.apply(None, buy("e1", "a", 0, 10.0)).state
    eng.apply(None, buy("e2", "b", 1, 30.0))
    assert a is not None and eng.moved() == ["a"]
    out = eng.rescore(a, 5 * DAY)  # "spend" holds "above": no change, "idle" still due
    assert out.changes == [] and out.due == 30 * DAY
    idle.limit, idle.pending = 10.0, ["a"]  # the cutoff moves: "idle" is due earlier now
    assert eng.moved() == ["a"]
    out = eng.rescore(a, 6 * DAY)
    assert out.changes == [] and out.due == 10 * DAY == a.due_hint
    assert [c["trigger"] for c in eng.tick(a, 10 * DAY).changes] == ["clock"]


def test_erasure_and_withdrawal_forget_the_customer() -> None:
    seg = MeanSpend()
    eng = Engine(Settings(), [seg])
    eng.apply(None, buy("e1", "a", 0, 10.0))
    eng.apply(None, Event("consent", "erasure_requested", "x", "a", DAY))
    assert seg.spend == {}


def test_a_tick_evaluates_only_the_segmenters_due() -> None:
    spend = MeanSpend()
    cfg = Settings(freq_high_margin_days=7.0, freq_margin_purchases=0.0)
    eng = Engine(cfg, [FrequencySegmenter(cfg), spend])
    state = None
    for i, day in enumerate((0, 5, 10)):
        state = eng.apply(state, buy(f"e{i}", "a", day, 10.0)).state
    assert state is not None
    before = spend.assigned
    assert eng.tick(state, 42 * DAY).changes == []  # interval 42 / 3 = 14: in the band
    out = eng.tick(state, 43 * DAY)  # frequency is due (band end 14 at day 3 * 14); spend never is
    assert [c["to_segment"] for c in out.changes] == ["medium"]
    assert spend.assigned == before


def test_the_due_hint_is_the_planned_due_and_only_ever_early() -> None:
    cfg = Settings()
    eng = Engine(cfg, [FrequencySegmenter(cfg)])
    out = eng.apply(None, buy("e1", "a", 0, 10.0))  # one_time: due when it lapses
    assert out.state is not None and out.due_known
    assert out.state.due_hint == out.due == 180 * DAY + 1.0
    # a state without a hint (older data) catches up before the event, as one with a hint
    plain = CustomerState.from_dict(copy.deepcopy({**out.state.to_dict(), "due_hint": None}))
    late = buy("e2", "a", 200, 10.0)
    hinted = eng.apply(out.state, late).changes
    assert [c["to_segment"] for c in hinted] == ["lapsed", "low"]
    assert eng.apply(plain, late).changes == hinted
    eng_none = Engine(cfg, [MeanSpend()])  # no due time at all
    never = eng_none.apply(None, buy("e3", "b", 0, 5.0))
    assert never.due is None and never.state is not None and never.state.due_hint == NEVER


class StuckDue(MeanSpend):
    """A broken segmenter: its due time never moves past the first one."""

    name = "stuck"

    def due(self, state: CustomerState, after: float) -> float | None:
        return 5 * DAY if state.purchases else None


def test_a_due_time_that_does_not_move_on_is_a_contract_error_not_an_endless_walk() -> None:
    import pytest

    from streamseg.errors import ContractError

    eng = Engine(Settings(), [StuckDue()])
    a = eng.apply(None, buy("e1", "a", 0, 10.0)).state
    assert a is not None
    with pytest.raises(ContractError, match="stuck: due"):
        eng.tick(a, 6 * DAY)


def test_a_state_planned_under_other_thresholds_walks_its_new_due_times() -> None:
    # review 12: STREAMSEG_AT_RISK_DAYS lowered 90 -> 45 between two runs. The stored due
    # hint, planned under 90, let a population rescore skip the walk and re-plan the old
    # time, and an event skip the catch-up: `active -> at_risk` came at the customer's next
    # page view (trigger event) or weeks late. Each path now walks the new due times.
    from streamseg import codec

    old = Engine(Settings())
    s = None
    for i, d in enumerate((0, 10, 20)):
        s = old.apply(s, buy(f"p{i}", "c1", d, 50.0)).state
    assert s is not None
    s = old.apply(s, Event("click", "page_view", "v1", "c1", 50 * DAY, session_id="x")).state
    assert s is not None and s.segments["lifecycle"][0] == "active"
    stored = codec.dumps(s.to_dict())  # as the table keeps it

    def fresh() -> CustomerState:
        return CustomerState.from_dict(codec.loads(stored))

    new = Engine(Settings(at_risk_days=45))
    rfm = next(i for i, g in enumerate(new.segmenters) if g.name == "rfm")
    new._moved["c1"] = {rfm}  # a population model named the customer (as at a restart)
    paths = [new.rescore(fresh(), 70 * DAY), new.tick(fresh(), 70 * DAY),
             new.apply(fresh(), Event("click", "page_view", "v2", "c1", 70 * DAY,
                                      session_id="y"))]
    for out in paths:
        moves = [(c["to_segment"], c["trigger"], c["event_time"]) for c in out.changes
                 if c["segmenter"] == "lifecycle"]
        assert moves == [("at_risk", "clock", "1970-03-07T00:00:01Z")], moves
    # a state evaluated under these settings trusts its hint as before
    again = paths[0].state
    assert again is not None and again.definition == new.definition
    assert new.rescore(again, 71 * DAY).changes == []
