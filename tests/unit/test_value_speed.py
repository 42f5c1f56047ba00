"""The value segmenter's cheaper per-version work gives the answers of the plain computation:
the folded likelihood, the remembering scorer, the vectorised pass over the local customers
(moved set, crossing-day guesses) and the due day searched from the guess."""

from __future__ import annotations

import math

import numpy as np

from streamseg.config import DAY, Settings
from streamseg.engine import bgnbd, bgnbdfit
from streamseg.engine.features import CustomerState
from streamseg.engine.segmenters.value import MAX_DAYS, ValueSegmenter
from streamseg.engine.valuemodel import TIERS, ValueModel, crossing, crossings, key_of, tier_of


def _params(rng: np.random.Generator) -> bgnbd.Params:
    return bgnbd.Params(*(float(v) for v in rng.uniform([0.2, 2.0, 0.1, 0.5],
                                                       [3.0, 60.0, 2.0, 9.0])))


def test_the_folded_likelihood_is_bit_for_bit_the_plain_one() -> None:
    rng = np.random.default_rng(4)
    for _ in range(30):
        x, t_x, T = bgnbdfit.simulate(_params(rng), 400, 200.0, rng)
        T = T + rng.integers(0, 40, len(T))
        x, t_x, T = np.floor(x), np.floor(t_x), np.floor(T)
        p = _params(rng)
        folded = bgnbdfit._Folded(x, t_x, T).loglik(p)
        assert np.array_equal(folded, bgnbdfit.loglik(p, x, t_x, T))


def test_the_scorer_is_bit_for_bit_expected_one_and_remembers_per_x_and_age() -> None:
    rng = np.random.default_rng(9)
    p = _params(rng)
    scorer = bgnbd.Scorer(p, 90.0, limit=50)
    for _ in range(400):
        x = float(rng.integers(0, 6))
        t_x = float(rng.integers(0, 100)) if x else 0.0
        T = t_x + float(rng.integers(0, 20))
        assert scorer(x, t_x, T) == bgnbd.expected_one(p, 90.0, x, t_x, T)
        assert len(scorer.memo) <= 50  # bounded: forgotten all at once when full
    few = bgnbd.Scorer(p, 90.0)
    for t_x in range(30):  # one x, one age, many recencies: one remembered term
        few(3.0, float(t_x), 40.0)
    assert list(few.memo) == [(3.0, 40.0)]


def _segmenter(rng: np.random.Generator, n: int) -> tuple[ValueSegmenter, list[CustomerState]]:
    """A segmenter with ``n`` local customers in random published tiers and due days."""
    seg = ValueSegmenter(Settings(value_hold_share=0.1))
    seg.training = False  # no fit of its own: the tests give the versions
    people = []
    for i in range(n):
        first = float(rng.integers(0, 60))
        x = int(rng.integers(0, 8))
        last = first + (float(rng.integers(0, 100)) if x else 0.0)
        s = CustomerState.new(f"c{i}", first * DAY)
        s.purchases = s.purchase_days = x + 1
        s.first_purchase, s.last_purchase = first * DAY, last * DAY
        label = rng.choice(["top10", "next40", "rest", "none"])
        if label != "none":
            s.segments["value"] = [str(label), 1, first * DAY, 1]
        seg.learn(s, last * DAY)
        entry = seg.local[s.customer_id]
        entry[1] = None if label == "none" else str(label)
        entry[2] = None if rng.random() < 0.2 else float(rng.integers(150, 400))
        people.append(s)
    return seg, people


def _moved_plainly(seg: ValueSegmenter, model: ValueModel, now: float) -> list[str]:
    """The per-customer loop the vectorised pass replaced (the reference)."""
    out = []
    for cid, entry in seg.local.items():
        x, t_x, first = entry[0]
        day = now // DAY
        score = bgnbd.expected_one(model.params, seg.horizon, x, t_x, max(day - first, t_x))[1]
        # the due day is the crossing plus the idle dwell: probe the day before the crossing
        probe = day + MAX_DAYS if entry[2] is None else entry[2] - seg.idle_dwell - 1
        end = bgnbd.expected_one(model.params, seg.horizon, x, t_x, max(probe - first, t_x))[1]
        label, raw = entry[1], tier_of(score, model.cuts)
        level = None if label not in TIERS[:2] else model.level(TIERS.index(label))
        keeps = (label in TIERS and TIERS.index(raw) > TIERS.index(label)
                 and level is not None and score > level)
        if label is None or (raw != label and not keeps) or (
                level is not None and end <= level):
            out.append(cid)
    return out


def test_the_vectorised_pass_moves_the_customers_the_plain_loop_moves_in_order() -> None:
    rng = np.random.default_rng(21)
    for trial in range(6):
        seg, _ = _segmenter(rng, 300)
        now = float(rng.integers(120, 200)) * DAY
        model = ValueModel(trial + 1, _params(rng), (0.0, 0.0), now, 300, seg.horizon)
        scores = sorted(bgnbd.expected(model.params, seg.horizon, *np.array(
            [(e[0][0], e[0][1], max(now // DAY - e[0][2], e[0][1])) for e in seg.local.values()]
        ).T).tolist())
        model = ValueModel(trial + 1, model.params, (scores[269], scores[149]), now, 300,
                           seg.horizon, (scores[254], scores[134]))  # margin 0.05
        want = _moved_plainly(seg, model, now)
        seg._use(model, now)
        got = seg.moved()
        assert got == want
        assert 0 < len(got) < 300  # both outcomes occur (else this shows little)


class _Counting(bgnbd.Scorer):
    """A scorer that counts its evaluations."""

    __slots__ = ("calls",)

    def __init__(self, params: bgnbd.Params, t: float) -> None:
        super().__init__(params, t)
        self.calls = 0

    def __call__(self, x: float, t_x: float, T: float) -> tuple[float, float]:
        self.calls += 1
        return super().__call__(x, t_x, T)


def test_a_new_version_finds_each_due_day_from_its_guess_in_two_evaluations() -> None:
    rng = np.random.default_rng(5)
    seg, people = _segmenter(rng, 200)
    now = 150.0 * DAY
    p = _params(rng)
    model = ValueModel(2, p, (1.0, 0.3), now, 200, seg.horizon, (0.9, 0.27))
    seg._use(model, now)
    seg.moved()
    searched = 0
    for s in people:
        entry = seg.local[s.customer_id]
        guess = entry[4]
        if guess is None:
            continue
        scorer = seg._score()
        assert scorer is not None
        counting = _Counting(p, seg.horizon)
        seg._scorer = counting
        got = seg.due(s, now)
        seg._scorer = scorer
        calls = counting.calls
        label = s.segments["value"][0] if "value" in s.segments else None
        if label is None:
            continue
        level = model.level(TIERS.index(str(label)))
        dwell = seg.idle_dwell if label in TIERS[:2] else 0.0  # a demotion waits it out
        fresh = crossing(bgnbd.Scorer(p, seg.horizon), key_of(s), now // DAY - dwell, level,
                         MAX_DAYS)
        assert got == (None if fresh is None else (fresh + dwell) * DAY)  # the exact day
        if fresh is not None and fresh == guess:
            assert calls <= 2
            searched += 1
    assert searched > 20


def test_the_array_crossings_equal_the_exact_search() -> None:
    rng = np.random.default_rng(13)
    for _ in range(20):
        p = _params(rng)
        n = 50
        x = rng.integers(0, 10, n).astype(float)
        t_x = np.where(x > 0, rng.integers(0, 150, n), 0).astype(float)
        first = rng.integers(0, 30, n).astype(float)
        level = rng.uniform(0.02, 2.0, n)
        from_day = 200.0
        got = crossings(p, 90.0, x, t_x, first, from_day, level, 400)
        scorer = bgnbd.Scorer(p, 90.0)
        for i in range(n):
            want = crossing(scorer, (x[i], t_x[i], first[i]), from_day, level[i], 400)
            assert (math.isnan(got[i]) and want is None) or got[i] == want


def test_a_verdict_evaluates_once_when_the_ranked_age_is_todays() -> None:
    seg = ValueSegmenter(Settings(value_grace_gaps=1.5))
    params = bgnbd.Params(0.6, 8.0, 0.7, 2.8)
    seg.model = ValueModel(1, params, (5.0, 1.5), 0.0, 100, 90.0, (4.5, 1.3), 10.0)
    seg._scorer = scorer = _Counting(params, 90.0)
    s = CustomerState.new("c", 0.0)
    s.purchases = s.purchase_days = 5
    s.first_purchase, s.last_purchase = 0.0, 40 * DAY + 60
    # on the purchase day both ages are t_x; within the grace (15 days) and past it they differ
    for day, calls in ((40.0, 1), (45.0, 2), (70.0, 2)):
        scorer.calls = 0
        got = seg.assign(s, day * DAY)
        assert scorer.calls == calls, day
        pred, rank = seg.predict(s, day * DAY), seg._predict(s, day * DAY)
        assert got is not None and pred is not None and rank is not None
        assert got.segment == tier_of(rank[1], seg.model.cuts)
        assert f"{pred[1]:.3f}" in got.reason and (rank == pred) == (calls == 1)
