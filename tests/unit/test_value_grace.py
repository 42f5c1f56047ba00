"""Predicted value: a customer is ranked on the expectation with the idle days within
their own rhythm not counted (``STREAMSEG_VALUE_GRACE_GAPS``), so a regular shopper's
tier does not decay between two purchases (review: Instacart flap rate 30.5%)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamseg.config import DAY, Settings
from streamseg.engine import bgnbd, bgnbdfit
from streamseg.engine.segmenters.base import Assignment
from streamseg.engine.segmenters.value import ValueSegmenter
from streamseg.engine.valuemodel import ValueModel, crossing, grace_days, key_of, ranked
from tests.unit.test_value import _buyer

TRUE = bgnbd.Params(r=0.6, alpha=8.0, a=0.7, b=2.8)
H = 90.0


def _segmenter(gap: float | None = 10.0, **kw: float) -> ValueSegmenter:
    seg = ValueSegmenter(Settings(value_min_customers=100, value_warmup_days=30,
                                  **{"value_grace_gaps": 1.5, **kw}))
    # E(x=4, t_x=40, T=40) = 5.52 right after the 5th purchase: above the top10 cut 5.0
    seg.model = ValueModel(1, TRUE, (5.0, 1.5), 0.0, 100, H, (4.5, 1.3), gap)
    return seg


def test_a_regular_buyer_keeps_the_tier_between_purchases_within_the_grace() -> None:
    seg = _segmenter(value_idle_dwell_days=0.0)  # the grace alone (the dwell: below)
    s = _buyer("c", [0.0, 10.0, 20.0, 30.0, 40.0])  # every 10 days: grace 1.5 x 10 = 15
    seg.learn(s, 40 * DAY)
    assert grace_days(4.0, 40.0, 1.5, 10.0) == 15.0
    assert ranked(key_of(s), 1.5, 10.0) == (4.0, 40.0, 15.0)
    e40 = bgnbd.expected_one(TRUE, H, 4.0, 40.0, 40.0)[1]
    for day in (40.0, 45.0, 50.0, 55.0):
        got = seg.assign(s, day * DAY)
        assert got is not None and got.segment == "top10", day
        assert f"ranked on {e40:.3f}" in got.reason or day == 40.0
    # the expectation shown (features, KPIs) is today's: it fell below the hold level
    pred = seg.predict(s, 55 * DAY)
    assert pred is not None and pred[1] < 4.5 < e40
    s.segments["value"] = ["top10", 40 * DAY, 1, 1]
    due = seg.due(s, 40 * DAY)
    # the clock demotes on the day today's expectation would have, plus the grace
    plain = crossing(bgnbd.Scorer(TRUE, H), (4.0, 40.0, 0.0), 40.0, 4.5, 3650)
    assert plain is not None and plain < 55.0
    assert due == (plain + 15.0) * DAY
    down = seg.assign(s, due)
    assert down is not None and down.segment == "next40"
    assert not seg.hold(s, "top10", down, due, "clock")
    assert seg.hold(s, "top10", down, due - DAY, "clock")  # within the hold margin


def test_an_idle_demotion_waits_out_the_dwell_whatever_evaluates_it() -> None:
    """``STREAMSEG_VALUE_IDLE_DWELL_DAYS`` (14): an idle customer is demoted only once the
    demotion has been due for 14 days; the due day says so, and a hold by the dwell gives
    the same due day at any later evaluation (the crossing, now in the past, is searched
    from the dwell back). Fails on the old code (no dwell: demoted at the crossing)."""
    seg0, seg = _segmenter(value_idle_dwell_days=0.0), _segmenter()
    assert seg.idle_dwell == 14.0
    s = _buyer("c", [0.0, 10.0, 20.0, 30.0, 40.0])
    for g in (seg0, seg):
        g.learn(s, 40 * DAY)
    s.segments["value"] = ["top10", 40 * DAY, 1, 1]
    at = seg0.due(s, 40 * DAY)  # the crossing (grace included): demoted there without dwell
    assert at is not None
    down = seg.assign(s, at)
    assert down is not None and down.segment == "next40"
    assert not seg0.hold(s, "top10", down, at, "clock")
    assert seg.due(s, 40 * DAY) == at + 14 * DAY
    for t in (at, at + 7 * DAY, at + 13 * DAY):
        for trigger in ("clock", "population"):
            assert seg.hold(s, "top10", down, t, trigger), (t, trigger)
        assert seg.due(s, t) == at + 14 * DAY  # the same day from any later evaluation
    late = seg.assign(s, at + 14 * DAY)
    assert late is not None and late.segment == "next40"
    assert not seg.hold(s, "top10", late, at + 14 * DAY, "clock")
    # hysteresis off: no dwell (raw verdicts)
    assert ValueSegmenter(Settings(hysteresis=False)).idle_dwell == 0.0


def test_a_due_cached_before_the_label_is_not_reused_for_a_published_tier() -> None:
    """Review (2026-11-27 night): the cached crossing of an unlabelled customer (no dwell)
    was reused once ``top10`` was published when the hold levels equal the cuts (hold
    share 0): a wasted tick at the crossing. The cache key holds the dwell applied."""
    seg = _segmenter(value_hold_share=0.0)
    seg.model = ValueModel(1, TRUE, (5.0, 1.5), 0.0, 100, H, (5.0, 1.5), 10.0)
    s = _buyer("c", [0.0, 10.0, 20.0, 30.0, 40.0])
    seg.learn(s, 40 * DAY)
    first = seg.due(s, 40 * DAY)  # no label: the raw cut's crossing, no dwell
    s.segments["value"] = ["top10", 40 * DAY, 1, 1]
    assert first is not None and seg.due(s, 40 * DAY) == first + 14 * DAY


def test_the_grace_of_a_one_time_buyer_is_the_populations_gap() -> None:
    seg = _segmenter()
    s = _buyer("new", [100.0])
    assert ranked(key_of(s), 1.5, 10.0) == (0.0, 0.0, 115.0)
    first = seg.assign(s, 100 * DAY)
    assert first is not None and first.segment == "next40"  # E(0, 0, 0) = 3.41
    later = seg.assign(s, 115 * DAY)  # today's E(0, 0, 15) = 1.63
    assert later is not None and later.segment == "next40"
    assert "ranked on 3.409" in later.reason
    gone = seg.assign(s, 140 * DAY)  # E(0, 0, 25): below the next40 cut
    assert gone is not None and gone.segment == "rest"


def test_no_grace_when_off_or_with_a_model_that_ranked_without_it() -> None:
    s = _buyer("c", [0.0, 10.0, 20.0, 30.0, 40.0])
    for seg in (_segmenter(value_grace_gaps=0.0), _segmenter(gap=None)):
        seg.learn(s, 40 * DAY)
        got = seg.assign(s, 55 * DAY)
        assert got is not None and got.segment == "next40" and "ranked" not in got.reason
    # a snapshot before the grace has no gap: adopted, it ranks on today's expectation
    old = ValueModel(2, TRUE, (5.0, 1.5), 0.0, 100, H, (4.5, 1.3)).to_dict()
    assert "gap" not in old and "ups" not in old
    seg = ValueSegmenter(Settings(value_min_customers=100, value_warmup_days=30))
    seg.training = False
    assert seg.adopt(old) and seg.model is not None and seg.model.gap is None
    new = ValueModel(3, TRUE, (5.0, 1.5), 0.0, 100, H, (4.5, 1.3), 9.5, (5.5, 1.7))
    assert ValueModel.from_dict(new.to_dict()) == new


def test_the_fit_ranks_its_sample_on_the_grace_and_keeps_the_population_gap() -> None:
    cfg = Settings(value_min_customers=300, value_warmup_days=90, value_refit_days=7,
                   value_grace_gaps=1.5)
    seg = ValueSegmenter(cfg)
    x, t_x, _ = bgnbdfit.simulate(TRUE, 400, 150.0, np.random.default_rng(3))
    people = []
    for i in range(400):
        days = [0.0] + [float(math.floor(t_x[i]))] * int(x[i] > 0)
        s = _buyer(f"c{i}", days)
        s.purchase_days = s.purchases = int(x[i]) + 1
        people.append(s)
        seg.learn(s, 150 * DAY)
    model = seg.model
    assert model is not None and model.gap is not None
    keys = np.array([key_of(s) for s in people[:300]])  # the sample at the fit
    rep = keys[:, 0] > 0
    assert model.gap == pytest.approx(float(np.median(keys[rep, 1] / keys[rep, 0])))
    # the cuts are the 90% / 50% rank shares of the ranked expectation: tiers at the fit
    tiers = [seg.assign(s, 150 * DAY) for s in people[:300]]
    top = sum(1 for a in tiers if a is not None and a.segment == "top10")
    upper = sum(1 for a in tiers if a is not None and a.segment != "rest")
    assert 20 <= top <= 30 and 120 <= upper <= 150
    # the band a new model version's promotion must clear lies above the cuts
    assert model.ups is not None and model.holds is not None
    assert model.ups[0] >= model.cuts[0] >= model.holds[0]


def test_a_new_model_promotes_only_beyond_the_band_a_purchase_at_once() -> None:
    seg = _segmenter()
    seg.model = ValueModel(1, TRUE, (5.0, 1.5), 0.0, 100, H, (4.5, 1.3), 10.0, (6.0, 1.8))
    s = _buyer("c", [0.0, 10.0, 20.0, 30.0, 40.0])  # ranked 5.52: above the cut, below 6.0
    up = seg.assign(s, 41 * DAY)
    assert up is not None and up.segment == "top10"
    assert seg.hold(s, "next40", up, 41 * DAY, "population")  # the model moved, not them
    assert not seg.hold(s, "next40", up, 40 * DAY + 3600, "event")  # a purchase: published
    seg.model = ValueModel(2, TRUE, (5.0, 1.5), 0.0, 100, H, (4.5, 1.3), 10.0, (5.2, 1.8))
    assert not seg.hold(s, "next40", up, 41 * DAY, "population")


def test_the_promotion_band_is_a_rule_on_the_state_not_on_the_trigger() -> None:
    # a new model's promotion held by the band (trigger population) was published by
    # the next clock evaluation of the same state: the email depended on which looked first
    seg = _segmenter()
    seg.model = ValueModel(1, TRUE, (5.0, 1.5), 0.0, 100, H, (4.5, 1.3), 10.0, (6.0, 1.8))
    s = _buyer("c", [0.0, 10.0, 20.0, 30.0, 40.0])  # ranked 5.52: above the cut, below 6.0
    s.segments["value"] = ["next40", 40 * DAY, 1, 1]
    for day in (41.0, 48.0, 55.0):  # within the grace: the ranked expectation stays 5.52
        up = seg.assign(s, day * DAY)
        assert up is not None and up.segment == "top10"
        held = {t: seg.hold(s, "next40", up, day * DAY, t)
                for t in ("population", "clock", "event")}
        assert held == {"population": True, "clock": True, "event": True}, day
    # on the purchase day the purchase earned it, whatever the trigger
    up = seg.assign(s, 40 * DAY + 7200)
    assert up is not None and up.segment == "top10"
    assert not any(seg.hold(s, "next40", up, 40 * DAY + 7200, t)
                   for t in ("population", "clock", "event"))
    # above the band: published at any trigger
    seg.model = ValueModel(2, TRUE, (5.0, 1.5), 0.0, 100, H, (4.5, 1.3), 10.0, (5.2, 1.8))
    assert not any(seg.hold(s, "next40", Assignment("top10", ""), 48 * DAY, t)
                   for t in ("population", "clock", "event"))


def test_no_demotion_within_the_grace_a_late_purchase_waits_for_its_end() -> None:
    seg = _segmenter()
    seg.model = ValueModel(1, TRUE, (5.5, 1.5), 0.0, 100, H, (5.5, 1.3), 10.0)  # no margin
    s = _buyer("c", [0.0, 10.0, 20.0, 30.0, 40.0, 55.0])  # the 6th purchase 15 days on
    seg.learn(s, 55 * DAY)
    # the slower rhythm lowers the rate: ranked on E(5, 55, 55) = 5.48, below the cut
    raw = seg.assign(s, 55 * DAY)
    assert raw is not None and raw.segment == "next40"
    s.segments["value"] = ["top10", 40 * DAY, 1, 1]
    assert seg.hold(s, "top10", raw, 55 * DAY, "event")  # not at their purchase
    assert grace_days(5.0, 55.0, 1.5, 10.0) == 17.0
    assert seg.hold(s, "top10", raw, 72 * DAY, "population")
    assert seg.due(s, 55 * DAY) == 73 * DAY  # the day after the grace
    assert not seg.hold(s, "top10", raw, 73 * DAY, "clock")
    off = _segmenter(value_grace_gaps=0.0)
    off.model = seg.model
    assert not off.hold(s, "top10", raw, 55 * DAY, "event")
