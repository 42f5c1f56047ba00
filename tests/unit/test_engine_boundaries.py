"""Engine rules that no other unit test pinned down (review 16: targeted mutation testing).

Each test fails on one hand-made mutant of ``streamseg/engine/processor.py`` (named in
its docstring; the tick path has since moved to ``streamseg/engine/reevaluation.py``)
and passes on the engine as it is.
"""

from __future__ import annotations

from typing import Any

from streamseg.config import DAY, Settings
from streamseg.engine.events import Event
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine
from streamseg.engine.segmenters import FrequencySegmenter, LifecycleSegmenter, RFMSegmenter
from streamseg.engine.segmenters.base import Assignment, NoPopulation, Trigger


def moves(changes: list[dict[str, Any]]) -> list[tuple[str, Any, str, str, str]]:
    return [(c["segmenter"], c["from_segment"], c["to_segment"], c["trigger"], c["event_time"])
            for c in changes]


def buy(eid: str, cid: str, day: float) -> Event:
    return Event("purchase", "purchase", eid, cid, day * DAY, amount=20.0)


def click(eid: str, cid: str, day: float) -> Event:
    return Event("click", "page_view", eid, cid, day * DAY)


def test_an_event_at_the_latest_evaluation_is_not_late() -> None:
    """A second event at the very instant of the customer's latest evaluation is not late
    (late means strictly older): it is evaluated at its own time, and the time-driven moves
    up to the clock are then walked one by one, each at its own due time. Read as late
    (``event.ts <= floor(state)``) it was evaluated at the clock with no walk: the buyer's
    ``new -> active`` at day 30 was never published (``new -> at_risk`` at once)."""
    cfg = Settings()
    eng = Engine(cfg, [FrequencySegmenter(cfg), LifecycleSegmenter(cfg)])
    s = eng.apply(None, buy("p1", "c", 0.0), clock=0.0).state
    out = eng.apply(s, click("v1", "c", 0.0), clock=100 * DAY)
    assert out.changes == []
    later = eng.tick(out.state, 100 * DAY)
    assert moves(later.changes) == [
        ("lifecycle", "new", "active", "clock", "1970-01-31T00:00:01Z"),
        ("lifecycle", "active", "at_risk", "clock", "1970-04-01T00:00:01Z"),
    ]


def rfm_bands() -> RFMSegmenter:
    # bands 14, 30, 90, 180 days; one buyer warms the model at once (F1 M1: new, promising,
    # about_to_sleep, hibernating, lost as R goes 5..1)
    return RFMSegmenter(Settings(rfm_recency="bands", rfm_min_samples=1, rfm_warmup_days=0))


def test_a_late_click_evaluates_every_segmenter_at_the_clock() -> None:
    """A late click is evaluated at the clock by *every* segmenter, also those that react
    to purchases only (RFM): the walk never goes back before the clock. Evaluating only the
    click's reacting segmenters left RFM at ``new`` (R5) 45 days after the purchase, and the
    R3 ``about_to_sleep`` due at day 35 was never published (the next walk starts at day 50:
    ``new -> hibernating`` at day 95)."""
    cfg = Settings()
    eng = Engine(cfg, [LifecycleSegmenter(cfg), rfm_bands()])
    s = eng.apply(None, buy("p1", "c", 5.0), clock=5 * DAY).state
    assert s.segments["rfm"][0] == "new"
    out = eng.apply(s, click("v1", "c", 1.0), clock=50 * DAY)  # late: 1 < 5 < 50
    assert moves(out.changes) == [
        ("lifecycle", "new", "active", "event", "1970-02-20T00:00:00Z"),
        ("rfm", "new", "about_to_sleep", "event", "1970-02-20T00:00:00Z"),
    ]


def test_a_click_labels_a_purchase_only_segmenter_that_has_no_label_yet() -> None:
    """At a click, a segmenter that reacts to purchases only is still evaluated when it has
    no label for the customer yet (it abstained at the purchase: warm-up). Without that
    rule RFM stayed silent for a warm model's buyer until a population re-score."""
    cfg = Settings(rfm_min_samples=2, rfm_warmup_days=0)
    eng = Engine(cfg, [FrequencySegmenter(cfg), RFMSegmenter(cfg)])
    a = eng.apply(None, buy("p1", "a", 0.0)).state
    assert "rfm" not in a.segments  # one buyer: RFM abstains
    eng.apply(None, buy("p2", "b", 1.0))  # two buyers: warm
    out = eng.apply(a, click("v1", "a", 2.0))
    assert [(c["segmenter"], c["from_segment"], c["trigger"]) for c in out.changes] == [
        ("rfm", None, "event")]


def test_an_old_profile_record_is_evaluated_at_the_latest_look_not_back_in_time() -> None:
    """A profile record older than the customer's latest evaluation is evaluated at that
    evaluation (``max(floor(state), event.ts)``), never at its own older time: evaluated at
    day 50, a buyer the clock had moved to ``at_risk`` at day 90 was told ``at_risk ->
    active`` dated day 50, before the change it contradicts."""
    cfg = Settings()
    eng = Engine(cfg, [FrequencySegmenter(cfg), LifecycleSegmenter(cfg)])
    s = eng.apply(None, buy("p1", "c", 0.0)).state
    s = eng.tick(s, 100 * DAY).state
    assert s.segments["lifecycle"][0] == "at_risk"
    prof = Event("profile", "profile", "r1", "c", 50 * DAY, attributes={"country": "DE"})
    out = eng.apply(s, prof)
    assert out.state.attributes == {"country": "DE"}
    assert out.changes == []
    assert out.state.segments["lifecycle"][0] == "at_risk"


def test_a_confirmed_label_carries_the_model_version_it_was_last_confirmed_under() -> None:
    """When a re-score under a newer population model confirms a customer's published
    label, the label's ``model_version`` (``customer-segments``, the lookup API) becomes
    that model's: without the refresh it kept naming the model it was first given under."""
    cfg = Settings(rfm_min_samples=2, rfm_warmup_days=0)
    eng = Engine(cfg, [RFMSegmenter(cfg)])
    rfm = eng.segmenter("rfm")
    a = eng.apply(None, buy("p1", "a", 0.0)).state
    eng.apply(None, buy("p2", "b", 1.0))  # warm
    a = eng.rescore(a, 2 * DAY).state
    label, _since, _seq, first = a.segments["rfm"]
    assert first == rfm.version
    eng.apply(None, buy("p3", "c", 2.0))  # the population changes: a newer model
    assert rfm.version != first
    out = eng.rescore(a, 3 * DAY)
    assert out.changes == [] and a.segments["rfm"][0] == label
    assert a.segments["rfm"][3] == rfm.version
    assert eng.segment_views(a)["rfm"]["model_version"] == rfm.version


def test_a_dwell_candidate_counts_as_an_evaluation_no_event_goes_back_before_it() -> None:
    """With the global dwell, a clock move waiting out ``min_dwell_s`` is an evaluation at its
    due time (``floor`` counts ``pending``): an older event read afterwards is evaluated
    there, not at its own time. Ignoring the candidate, a click of day 60 was evaluated at
    day 60 (``active``) and silently dropped the ``at_risk`` candidate of day 90."""
    cfg = Settings(min_dwell_s=5 * DAY)
    eng = Engine(cfg, [FrequencySegmenter(cfg), LifecycleSegmenter(cfg)])
    s = eng.apply(None, buy("p1", "c", 0.0)).state
    t = eng.tick(s, 95 * DAY)  # at_risk (day 90) waits out the dwell until day 95
    assert moves(t.changes) == [("lifecycle", "new", "active", "clock", "1970-02-05T00:00:01Z")]
    assert s.pending == {"lifecycle": ["at_risk", 90 * DAY + 1]}
    out = eng.apply(s, click("v1", "c", 60.0))
    assert moves(out.changes) == [
        ("lifecycle", "active", "at_risk", "event", "1970-04-01T00:00:01Z")]



def test_a_tick_after_a_settings_change_walks_from_the_latest_evaluation_not_after() -> None:
    """A tick of a state evaluated under other settings ignores ``after`` (the previous
    tick's time, planned under the old thresholds) and walks from ``floor(state)``: a buyer
    already past the new ``at_risk_days`` (40) at day 60 gets ``active -> at_risk`` dated day
    40. Walking only the due times after the previous tick (day 50), the new threshold was
    skipped and the customer went from ``active`` straight to ``lapsed`` at day 180."""
    old = Settings()
    eng = Engine(old, [LifecycleSegmenter(old)])
    s = eng.apply(None, buy("p1", "c", 0.0)).state
    t = eng.tick(s, 50 * DAY)
    assert moves(t.changes) == [("lifecycle", "new", "active", "clock", "1970-01-31T00:00:01Z")]
    new = Settings(at_risk_days=40)
    later = Engine(new, [LifecycleSegmenter(new)])
    out = later.tick(s, 60 * DAY, after=t.at)
    assert moves(out.changes) == [
        ("lifecycle", "active", "at_risk", "clock", "1970-02-10T00:00:01Z")]


class Toggle(NoPopulation):
    """A segmenter whose verdict and hold the test sets (population-driven moves)."""

    name = "toggle"

    def __init__(self) -> None:
        self.verdict, self.held = "a", False

    def assign(self, state: CustomerState, now: float) -> Assignment | None:
        return Assignment(self.verdict, "set by the test")

    def due(self, state: CustomerState, after: float) -> float | None:
        return None

    def hold(self, state: CustomerState, current: str, verdict: Assignment, now: float,
             trigger: Trigger) -> bool:
        return self.held

    def describe(self, segment: str) -> str:
        return segment

    def segments(self) -> tuple[str, ...]:
        return ("a", "b")


def test_a_held_verdict_restarts_the_global_dwell() -> None:
    """``min_dwell_s``: a different verdict must persist that long before it is published.
    When the segmenter's own ``hold`` keeps the published label meanwhile, the candidate is
    dropped, so the dwell starts again after the hold. Kept, the candidate of day 1 was
    published at day 12 although the verdict had differed unheld only since day 12."""
    seg = Toggle()
    eng = Engine(Settings(min_dwell_s=10 * DAY), [seg])
    s = eng.apply(None, click("v1", "c", 0.0)).state
    assert s.segments["toggle"][0] == "a"
    seg.verdict = "b"
    assert eng.rescore(s, 1 * DAY).changes == []
    assert s.pending == {"toggle": ["b", 1 * DAY]}
    seg.held = True
    assert eng.rescore(s, 2 * DAY).changes == []
    assert s.pending == {}
    seg.held = False
    assert eng.rescore(s, 12 * DAY).changes == []
    assert s.pending == {"toggle": ["b", 12 * DAY]}
    out = eng.rescore(s, 22 * DAY)
    assert moves(out.changes) == [("toggle", "a", "b", "clock", "1970-01-23T00:00:00Z")]
