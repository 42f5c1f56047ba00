"""RFM segmenter: quantile cut points, scores, the named grid, warm-up and clock due times."""

from __future__ import annotations

from streamseg.config import DAY, Settings
from streamseg.engine.events import Event
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine
from streamseg.engine.segmenters.rfm import NAMES, RFMSegmenter, segment_of


def trained(min_samples: int = 20) -> RFMSegmenter:
    """Cut points 20/40/60/80 days, purchases and 200/400/600/800 money."""
    seg = RFMSegmenter(Settings(rfm_min_samples=min_samples))
    s = CustomerState.new("pop", 0.0)
    for i in range(1, 101):
        s.purchases, s.monetary, s.gap_days, s.last_purchase = i, 10.0 * i, float(i), float(i)
        seg.learn(s, float(i))
    return seg


def customer(purchases: int, monetary: float, last_purchase: float) -> CustomerState:
    s = CustomerState.new("c", 0.0)
    s.purchases, s.monetary, s.last_purchase = purchases, monetary, last_purchase
    return s


def test_grid_names_every_segment() -> None:
    grid = [[segment_of(r, fm) for fm in range(1, 6)] for r in range(1, 6)]
    assert grid == [
        ["lost", "hibernating", "at_risk", "at_risk", "cannot_lose"],
        ["hibernating", "hibernating", "at_risk", "at_risk", "cannot_lose"],
        ["about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"],
        ["promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"],
        ["new", "potential_loyalist", "potential_loyalist", "champions", "champions"],
    ]
    assert {name for row in grid for name in row} == set(NAMES)
    assert len(NAMES) == 11


def test_cut_points_and_scores() -> None:
    seg = trained()
    assert seg.cuts() == (
        [20.0, 40.0, 60.0, 80.0], [20.0, 40.0, 60.0, 80.0], [200.0, 400.0, 600.0, 800.0]
    )
    assert seg.scores(customer(1, 50.0, 0.0), 0.0) == (5, 1, 1)
    assert seg.scores(customer(20, 200.0, 0.0), 20 * DAY) == (5, 1, 1)  # at the cut: not above
    assert seg.scores(customer(21, 201.0, 0.0), 20 * DAY + 1) == (4, 2, 2)
    assert seg.scores(customer(61, 700.0, 0.0), 85 * DAY) == (1, 4, 4)


def test_assignments_follow_the_grid_with_fm_rounded_down() -> None:
    seg = trained()
    cases = [
        (customer(90, 900.0, 0.0), 1 * DAY, "champions", "R5 F5 M5"),
        (customer(90, 100.0, 0.0), 1 * DAY, "potential_loyalist", "R5 F5 M1"),  # (5+1)//2 = 3
        (customer(1, 10.0, 0.0), 1 * DAY, "new", "R5 F1 M1"),
        (customer(1, 10.0, 0.0), 30 * DAY, "promising", "R4 F1 M1"),
        (customer(50, 500.0, 0.0), 50 * DAY, "need_attention", "R3 F3 M3"),
        (customer(90, 900.0, 0.0), 90 * DAY, "cannot_lose", "R1 F5 M5"),
        (customer(1, 10.0, 0.0), 90 * DAY, "lost", "R1 F1 M1"),
    ]
    got = [(seg.assign(s, now).segment, seg.assign(s, now).reason)  # type: ignore[union-attr]
           for s, now, _, _ in cases]
    assert got == [(name, why) for _, _, name, why in cases]


def test_abstains_before_warm_up_and_ignores_non_purchases() -> None:
    seg = RFMSegmenter(Settings(rfm_min_samples=3))
    s = customer(2, 20.0, 5.0)
    s.gap_days = 4.0
    seg.learn(s, 6.0)  # not a purchase at this time: ignored
    assert seg.samples == 0
    for t in (5.0, 5.0):
        seg.learn(s, t)
    assert seg.samples == 2 and seg.assign(s, 5.0) is None
    seg.learn(s, 5.0)
    assert seg.ready() and seg.assign(s, 5.0) is not None
    assert seg.assign(CustomerState.new("never", 0.0), 5.0) is None


def test_due_is_the_next_recency_cut() -> None:
    seg = trained()
    s = customer(90, 900.0, 0.0)
    assert [seg.due(s, t) for t in (0.0, 20 * DAY + 1, 79 * DAY, 81 * DAY)] == [
        20 * DAY + 1, 40 * DAY + 1, 80 * DAY + 1, None
    ]


def test_engine_moves_rfm_on_the_clock() -> None:
    cfg = Settings(rfm_min_samples=4, min_dwell_s=0.0)
    eng = Engine(cfg)
    state = None
    changes = []
    for i, day in enumerate((0, 10, 30, 35, 60)):
        out = eng.apply(state, Event("purchase", "purchase", f"e{i}", "c1", day * DAY,
                                     amount=10.0 * (i + 1)))
        state = out.state
        changes += [c for c in out.changes if c["segmenter"] == "rfm"]
    assert state is not None
    changes += [c for c in eng.tick(state, 400 * DAY).changes if c["segmenter"] == "rfm"]
    assert [(c["to_segment"], c["reason"], c["trigger"], c["event_time"]) for c in changes] == [
        ("champions", "R5 F4 M4", "event", "1970-02-05T00:00:00Z"),  # warm after 4 purchases
        ("loyal", "R4 F4 M4", "clock", "1970-02-15T00:00:01Z"),  # day 35 + 10-day cut + 1 s
        ("at_risk", "R2 F4 M4", "clock", "1970-02-16T16:00:01Z"),
        ("champions", "R5 F4 M4", "event", "1970-03-02T00:00:00Z"),
        ("loyal", "R4 F4 M4", "clock", "1970-03-12T00:00:01Z"),
        ("at_risk", "R1 F4 M4", "clock", "1970-03-17T00:00:01Z"),
    ]
    # recency cuts over the exact mean gaps (were moving averages before issue 8)
    assert eng.segmenter("rfm").cuts()[0] == [10.0, 11.666666666666666, 15.0, 15.0]  # type: ignore[union-attr]


def test_snapshot_and_adopt_share_the_cut_points() -> None:
    seg = trained()
    snap = seg.snapshot()
    assert snap == {
        "segmenter": "rfm", "version": 100, "gaps": 100,
        "cuts": {"recency_days": [20.0, 40.0, 60.0, 80.0], "frequency": [20.0, 40.0, 60.0, 80.0],
                 "monetary": [200.0, 400.0, 600.0, 800.0]},
    }
    assert RFMSegmenter(Settings()).snapshot() is None
    follower = RFMSegmenter(Settings())
    follower.training = False
    assert follower.adopt(snap) and not follower.adopt(snap)
    s = customer(61, 700.0, 0.0)
    assert follower.assign(s, 85 * DAY) == seg.assign(s, 85 * DAY)
    assert follower.assign(s, 85 * DAY).model_version == 100  # type: ignore[union-attr]
    follower.learn(customer(5, 1.0, 3.0), 3.0)  # not training: ignored
    assert follower.version == 100
    # a trainer restored from the snapshot scores with it until it has its own warm-up
    trainer = RFMSegmenter(Settings(rfm_min_samples=3))
    trainer.adopt(snap)
    for i in range(3):
        c = customer(1, 5.0, float(i))
        c.gap_days = 1.0
        trainer.learn(c, float(i))
        assert trainer.version == 101 + i
        assert trainer.cuts() == (([1.0] * 4, [1.0] * 4, [5.0] * 4) if i == 2 else
                                  seg.cuts())
