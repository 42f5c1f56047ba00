"""Due times of idle customers and the (due, customer) heap."""

from __future__ import annotations

from streamseg.config import DAY, Settings
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine
from streamseg.engine.scheduler import STEP_S, Schedule, floor, next_due
from streamseg.engine.segmenters import FrequencySegmenter, LifecycleSegmenter

# bands 14 / 42 days (in days only: the purchase-count limit off)
CFG = Settings(freq_high_margin_days=7.0, freq_medium_margin_days=14.0, freq_margin_purchases=0.0)
RULES = [FrequencySegmenter(CFG), LifecycleSegmenter(CFG)]


def days(t: float | None) -> float | None:
    return None if t is None else (t - STEP_S) / DAY


def buyer(first: float, last: float, reactivated: float | None = None) -> CustomerState:
    s = CustomerState.new("c", first * DAY)
    s.purchases, s.first_purchase, s.last_purchase = 2, first * DAY, last * DAY
    s.last_seen, s.reactivated_at = last * DAY, (
        None if reactivated is None else reactivated * DAY
    )
    return s


def walk(s: CustomerState, dwell: float = 0.0) -> list[float | None]:
    """Every due time from the customer's last event on, in days."""
    out: list[float | None] = []
    t = s.last_seen
    while (nxt := next_due(RULES, s, t, dwell)) is not None:
        out.append(days(nxt))
        t = nxt
    return out


def test_due_times_of_a_buyer() -> None:
    # 2 purchases, days 0 and 10: interval max(10, day / 2). Only tier marks >= 10
    # matter, crossed at day 2 * mark: high band end 14 -> 28, medium bound 28 -> 56,
    # medium band end 42 -> 84; lapsed at 10 + 180; lifecycle new ends at 0 + 30,
    # at_risk / lapsed at 10 + 90 / 10 + 180
    assert walk(buyer(0.0, 10.0)) == [28.0, 30.0, 56.0, 84.0, 100.0, 190.0]


def test_due_times_of_a_reactivated_buyer() -> None:
    # mean gap 200: no tier mark matters, only lapsed; reactivated ends at +30
    assert walk(buyer(0.0, 200.0, reactivated=200.0)) == [230.0, 290.0, 380.0]


def test_due_times_of_a_browser() -> None:
    s = CustomerState.new("c", 0.0)
    s.last_seen, s.events = 3 * DAY, 2
    assert walk(s) == [93.0]  # prospect -> inactive_prospect
    s.events = 0  # known from a profile record only: no activity, never due
    assert walk(s) == []


def test_pending_change_is_due_after_the_dwell() -> None:
    s = buyer(0.0, 10.0)
    s.pending["frequency"] = ["medium", 17 * DAY + 1]
    assert walk(s, dwell=3 * DAY)[:3] == [20.0, 28.0, 30.0]


def test_due_includes_the_end_of_a_band() -> None:
    cfg = Settings(freq_high_margin_days=3.0, freq_medium_margin_days=7.0,
                   freq_margin_purchases=0.0, lifecycle_margin_days=5.0)
    s = buyer(0.0, 12.0)
    s.purchases = 4  # mean gap 4: a mark m is crossed at day 4 * m
    segs = [FrequencySegmenter(cfg), LifecycleSegmenter(cfg)]
    at = (12, 28.5, 30.5, 101, 102.5, 107.5, 112.5, 140.5)
    assert [days(next_due(segs, s, t * DAY)) for t in at] == [
        28.0,  # high bound 7
        30.0,  # lifecycle: new ends
        40.0,  # high band end 7 + 3
        102.0,  # lifecycle: at_risk (12 + 90)
        107.0,  # lifecycle: at_risk band end
        112.0,  # medium bound 28
        140.0,  # medium band end 28 + 7
        192.0,  # lapsed (12 + 180)
    ]


def test_floor_is_the_latest_evaluation() -> None:
    s = buyer(0.0, 10.0)
    s.segments["lifecycle"] = ["at_risk", 100 * DAY + 1, 3, None]
    assert floor(s) == 100 * DAY + 1
    assert days(Engine(CFG).due(s)) == 190.0
    assert Engine(CFG).due(s, 195 * DAY) is None
    s.withdrawn = True
    assert Engine(CFG).due(s) is None


def test_schedule_pops_due_customers_in_order_and_latest_push_wins() -> None:
    q = Schedule()
    for cid, due in [("b", 5.0), ("a", 5.0), ("c", 9.0), ("d", 1.0), ("c", 2.0), ("d", None)]:
        q.push(cid, due)
    assert len(q) == 3
    assert q.pop_due(4.0) == ["c"]
    assert q.pop_due(4.0) == []
    assert q.pop_due(5.0) == ["a", "b"]
    assert len(q) == 0 and q.pop_due(100.0) == []


def test_superseded_entries_do_not_pile_up() -> None:
    q = Schedule()
    for i in range(10_000):
        q.push(f"c{i % 10}", float(i))
    assert len(q) == 10 and len(q._heap) <= 2 * 10 + 1024
    assert q.pop_due(9_994.0) == ["c0", "c1", "c2", "c3", "c4"]
    assert q.pop_due(1e9) == ["c5", "c6", "c7", "c8", "c9"]
