"""Segmenter rules that no other unit test pinned down (review 16: targeted mutation testing).

Each test fails on one hand-made mutant of a segmenter (named in its docstring) and passes
on the segmenters as they are.
"""

from __future__ import annotations

from typing import Any

from streamseg.config import DAY, Settings
from streamseg.engine.events import Event
from streamseg.engine.processor import Engine
from streamseg.engine.segmenters import FrequencySegmenter, LifecycleSegmenter, RFMSegmenter


def moves(changes: list[dict[str, Any]]) -> list[tuple[str, Any, str, str, str]]:
    return [(c["segmenter"], c["from_segment"], c["to_segment"], c["trigger"], c["event_time"])
            for c in changes]


def buy(eid: str, cid: str, day: float, amount: float = 20.0) -> Event:
    return Event("purchase", "purchase", eid, cid, day * DAY, amount=amount)


def click(eid: str, cid: str, day: float) -> Event:
    return Event("click", "page_view", eid, cid, day * DAY)


def test_the_at_risk_margin_holds_a_demotion_from_new_too() -> None:
    """``lifecycle_margin_days`` holds ``-> at_risk`` from every buying stage (``new``,
    ``active``, ``reactivated``), not from ``active`` only. A late click read at day 97
    (purchase at day 5, margin 10 days) evaluates the published ``new`` against ``at_risk``
    at the clock: it is held until day 105 like any buyer's, not published at day 97."""
    cfg = Settings(lifecycle_margin_days=10)
    eng = Engine(cfg, [LifecycleSegmenter(cfg)])
    s = eng.apply(None, buy("p1", "c", 5.0), clock=5 * DAY).state
    out = eng.apply(s, click("v1", "c", 1.0), clock=97 * DAY)
    assert out.changes == []
    assert moves(eng.tick(s, 120 * DAY).changes) == [
        ("lifecycle", "new", "at_risk", "clock", "1970-04-16T00:00:01Z")]  # day 105 + 1 s


def test_the_at_risk_margin_holds_up_to_and_including_its_end() -> None:
    """A demotion to ``at_risk`` is held while the silence is at most ``at_risk_days +
    lifecycle_margin_days`` (it must *exceed* it): a click at exactly day 100 (90 + 10) is
    no reason to demote; the release is due one second later."""
    cfg = Settings(lifecycle_margin_days=10)
    eng = Engine(cfg, [LifecycleSegmenter(cfg)])
    s = eng.apply(None, buy("p1", "c", 0.0)).state
    out = eng.apply(s, click("v1", "c", 100.0))
    assert moves(out.changes) == [("lifecycle", "new", "active", "clock", "1970-01-31T00:00:01Z")]
    assert out.due == 100 * DAY + 1
    assert moves(eng.tick(s, 101 * DAY).changes) == [
        ("lifecycle", "active", "at_risk", "clock", "1970-04-11T00:00:01Z")]


def test_a_follower_that_becomes_the_trainer_rescores_every_customer() -> None:
    """A worker that scored with an adopted snapshot and becomes the trainer (``training``
    set True, its own population warm) switches to its own cut values: every customer it
    holds is named by ``moved`` once, since each score may differ. Without that, labels
    given under the snapshot stayed until each customer's next purchase."""
    cfg = Settings(rfm_min_samples=2, rfm_warmup_days=0, rfm_hold_margin=0.0)
    trainer = Engine(cfg, [RFMSegmenter(cfg)])  # another worker, the trainer
    eng = Engine(cfg, [RFMSegmenter(cfg)])
    rfm = eng.segmenter("rfm")
    assert isinstance(rfm, RFMSegmenter)
    rfm.training = False
    for i in range(5):
        trainer.apply(None, buy(f"t{i}", f"t{i}", i, 10.0 * (i + 1)))
    for cid in ("a", "b", "c"):
        eng.apply(None, buy(f"p-{cid}", cid, 1.0))
    snap = trainer.segmenter("rfm").snapshot()  # type: ignore[union-attr]
    assert snap is not None and rfm.adopt(snap)
    eng.moved()  # drained: scored under the snapshot
    rfm.training = True  # this worker owns the model now (its population is warm)
    assert sorted(eng.moved()) == ["a", "b", "c"]


def test_the_wider_cluster_margin_ends_exactly_flap_window_after_a_change() -> None:
    """The cluster hold margin is ``DWELL_FACTOR`` times wider for ``flap_window_s`` after
    the customer's latest cluster change, and normal from then on: at exactly
    ``since + flap_window_s`` (a click at that instant) it is the normal margin again, as
    at the due time ``_due_from`` plans for the end of the wider margin."""
    from streamseg.engine.segmenters.clusterhold import DWELL_FACTOR
    from streamseg.engine.segmenters.clusters import ClusterSegmenter

    seg = ClusterSegmenter(Settings())
    since = 10 * DAY
    window = seg.dwell
    assert window > 0
    assert seg.margin_at(since, since + window - 1) == seg.margin * DWELL_FACTOR
    assert seg.margin_at(since, since + window) == seg.margin
    assert seg.margin_at(None, since) == seg.margin


def test_the_frequency_band_holds_up_to_and_including_its_end() -> None:
    """A published ``high`` is kept while the interval is *within* its band (at most
    ``freq_high_max_days`` plus the band): five buying days over 24 days, band end
    7 + min(3, 2 * 7 / 5) = 9.8 days; at day 49 the interval is exactly 9.8 (held), one
    second later it is beyond (released, the due time the segmenter plans)."""
    from streamseg.engine.features import CustomerState

    seg = FrequencySegmenter(Settings())
    s = CustomerState.new("c", 0.0)
    s.events, s.purchases, s.purchase_days = 5, 5, 5
    s.first_purchase, s.last_purchase = 0.0, 24 * DAY
    s.segments["frequency"] = ["high", 24 * DAY, 2, None]
    assert seg.band_end(s, "high") == seg.interval(s, 49 * DAY) == 9.8
    assert seg.hold(s, "high", seg.assign(s, 49 * DAY), 49 * DAY, "clock")
    assert seg.due(s, 24 * DAY) == 49 * DAY + 1
    assert not seg.hold(s, "high", seg.assign(s, 49 * DAY + 1), 49 * DAY + 1, "clock")
