"""Online features: decay, sessions, purchases, duplicate filter, serialisation."""

from __future__ import annotations

import pytest

from streamseg.config import DAY, Settings
from streamseg.engine.dedup import remember, seen
from streamseg.engine.events import Event
from streamseg.engine.features import (
    CHANNELS,
    DEVICES,
    SESSIONS_KEPT,
    CustomerState,
    decay_to,
    mean_gap_days,
    update,
)
from streamseg.engine.summary import summary

CFG = Settings(half_life_days=10.0, session_gap_minutes=30.0)


def click(eid: str, ts: float, etype: str = "page_view", **kw: object) -> Event:
    return Event("click", etype, eid, "c1", ts, **kw)  # type: ignore[arg-type]


def buy(eid: str, ts: float, amount: float) -> Event:
    return Event("purchase", "purchase", eid, "c1", ts, amount=amount, device="mobile")


def test_decay_halves_after_one_half_life() -> None:
    s = CustomerState.new("c1", 0.0)
    update(s, click("e1", 0.0), CFG)
    decay_to(s, 10 * DAY, CFG.half_life_days)
    assert s.d_events == pytest.approx(0.5, abs=1e-12)
    assert s.d_page_views == pytest.approx(0.5, abs=1e-12)
    assert s.decay_ts == 10 * DAY


def test_late_event_is_added_with_its_decayed_weight() -> None:
    s = CustomerState.new("c1", 0.0)
    update(s, click("e1", 20 * DAY), CFG)
    update(s, click("e2", 10 * DAY), CFG)  # 10 days late -> weight 0.5
    assert s.d_events == pytest.approx(1.5, abs=1e-12)
    assert s.last_seen == 20 * DAY
    assert s.decay_ts == 20 * DAY


def test_sessions_by_id_and_by_inactivity_gap() -> None:
    s = CustomerState.new("c1", 0.0)
    update(s, click("a", 0.0, session_id="s1"), CFG)
    update(s, click("b", 60.0, session_id="s1"), CFG)
    update(s, click("c", 120.0, session_id="s2"), CFG)
    assert s.sessions == 2
    t = CustomerState.new("c2", 0.0)
    for i, ts in enumerate([0.0, 600.0, 600.0 + 31 * 60, 600.0 + 40 * 60]):
        update(t, click(f"e{i}", ts), CFG)
    assert t.sessions == 2


def _sessions(events: list[Event]) -> tuple[int, float, str | None]:
    s = CustomerState.new("c1", 0.0)
    for e in events:
        update(s, e, CFG)
    return s.sessions, round(s.d_sessions, 12), s.last_session


def test_a_late_event_of_an_earlier_session_opens_no_session() -> None:
    """Review finding 4 (s17): a buffered view of session s1, or s1's purchase read from the
    purchases topic, arriving after s2's first clicks counted two more sessions (4, not 2)."""
    h = 3600.0
    s1 = [click("a", 0.0, "session_start", session_id="s1"), click("b", 60.0, session_id="s1")]
    s2 = [click("c", DAY, "session_start", session_id="s2"), click("d", DAY + 60, session_id="s2")]
    more = [click(f"m{i}", DAY + 120 + i, session_id="s2") for i in range(3)]
    view = click("late", 120.0, session_id="s1")
    paid = Event("purchase", "purchase", "p1", "c1", 0.5 * h, amount=9.0, session_id="s1")
    for late in (view, paid):
        in_order = _sessions(sorted([*s1, late, *s2, *more], key=lambda e: e.ts))
        assert in_order == (2, in_order[1], "s2")
        assert _sessions([*s1, *s2, late, *more]) == in_order
    # two sessions open at once (two tabs), their events interleaved in time: still two
    tabs = [click(f"t{i}", i * 60.0, session_id=("x", "y")[i % 2]) for i in range(6)]
    assert _sessions(tabs)[0] == 2
    # the kept ids are bounded: an id older than SESSIONS_KEPT sessions before counts again
    many = [click(f"n{i}", i * h, session_id=f"n{i}") for i in range(SESSIONS_KEPT + 2)]
    assert _sessions([*many, click("old1", 0.5 * h, session_id="n1")])[0] == SESSIONS_KEPT + 2
    assert _sessions([*many, click("old0", 0.5 * h, session_id="n0")])[0] == SESSIONS_KEPT + 3


def test_a_state_saved_before_earlier_sessions_were_kept_continues() -> None:
    """A changelog value with only ``last_session``: its session goes on, a new id opens one
    and the old current session is kept (a late event of it opens none)."""
    old = CustomerState.new("c1", 0.0).to_dict()
    old.update(events=5, sessions=2, last_session="s2", converted_session=2)
    del old["earlier_sessions"]
    s = CustomerState.from_dict(old)
    update(s, click("e1", 60.0, session_id="s2"), CFG)
    update(s, click("e2", 120.0, session_id="s3"), CFG)
    update(s, click("e3", 90.0, session_id="s2"), CFG)
    assert (s.sessions, s.last_session, s.earlier_sessions) == (3, "s3", [["s2", True]])


def test_purchase_gaps_monetary_and_reactivation() -> None:
    s = CustomerState.new("c1", 0.0)
    update(s, buy("p1", 0.0, 10.0), CFG)
    update(s, buy("p2", 10 * DAY, 30.0), CFG)
    update(s, buy("p3", 20 * DAY, 20.0), CFG)
    assert (s.purchases, s.monetary, s.gap_days) == (3, 60.0, 10.0)
    assert s.reactivated_at is None
    update(s, buy("p4", 120 * DAY, 5.0), CFG)  # 100-day silence > at_risk_days (90)
    assert (s.reactivated_at, s.reactivated_from) == (120 * DAY, 20 * DAY)
    assert s.gap_days == mean_gap_days(s) == 40.0  # exact: (120 - 0) / 3
    assert (s.first_purchase, s.last_purchase) == (0.0, 120 * DAY)


def test_a_late_purchase_inside_the_silence_cancels_the_reactivation() -> None:
    s = CustomerState.new("c1", 0.0)
    for i, day in enumerate((0, 10, 120)):
        update(s, buy(f"p{i}", day * DAY, 1.0), CFG)
    assert s.reactivated_at == 120 * DAY
    update(s, buy("late1", 100 * DAY, 1.0), CFG)  # gaps now 90 and 20: none > 90
    assert (s.reactivated_at, s.reactivated_from) == (None, None)
    t = CustomerState.new("c2", 0.0)
    for i, day in enumerate((0, 200)):
        update(t, buy(f"p{i}", day * DAY, 1.0), CFG)
    update(t, buy("late2", 150 * DAY, 1.0), CFG)  # gaps 150 and 50: the late one reactivated
    assert (t.reactivated_at, t.reactivated_from) == (150 * DAY, 0.0)
    update(t, buy("late3", 20 * DAY, 1.0), CFG)  # gaps 20, 130, 50: still the day-150 one
    assert (t.reactivated_at, t.reactivated_from) == (150 * DAY, 20 * DAY)
    u = CustomerState.new("c3", 0.0)
    update(u, buy("p0", 100 * DAY, 1.0), CFG)
    update(u, buy("early", 0.0, 1.0), CFG)  # before the first purchase, 100 days earlier
    assert (u.reactivated_at, u.reactivated_from) == (100 * DAY, 0.0)


def test_cart_conversion_and_mix_in_summary() -> None:
    s = CustomerState.new("c1", 0.0)
    update(s, click("a1", 0.0, "add_to_cart", device="desktop", channel="email"), CFG)
    update(s, click("a2", 0.0, "add_to_cart", device="desktop", channel="email"), CFG)
    update(s, buy("p1", 0.0, 40.0), CFG)
    f = summary(s, 0.0, CFG.half_life_days)
    assert f["cart_conversion_ratio"] == 0.5
    assert f["mobile_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert f["top_channel"] == "email"
    assert f["avg_order_value_base"] == 40.0
    assert s.d_devices[DEVICES.index("desktop")] == 2.0
    assert s.d_channels[CHANNELS.index("email")] == 2.0


def test_duplicate_filter_is_bounded() -> None:
    s = CustomerState.new("c1", 0.0)
    for i in range(5):
        remember(s, "click", f"e{i}", window=3)
    assert len(s.recent_ids) == 3
    assert seen(s, "click", "e4") and seen(s, "click", "e2")
    assert not seen(s, "click", "e1")
    assert not seen(s, "purchase", "e4")  # ids are unique per input stream


def test_state_round_trips_through_dict() -> None:
    s = CustomerState.new("c1", 5.0)
    update(s, buy("p1", 5.0, 12.5), CFG)
    s.segments["frequency"] = ["low", 5.0, 1, None]
    data = s.to_dict()
    data["field_from_the_future"] = 1
    assert CustomerState.from_dict(data) == s


def test_to_dict_is_asdict_byte_for_byte_on_simulated_states() -> None:
    # every shape a real state takes: buyers and browsers, segments, pending
    # changes, withdrawn markers; the table bytes must not change with to_dict
    from dataclasses import asdict

    from streamseg import codec
    from streamseg.replay import Replayer, replay_lines
    from streamseg.simulate import SimConfig, Simulation

    cfg = Settings(min_dwell_s=DAY)
    rep = Replayer(cfg)
    sim = Simulation(SimConfig(customers=40, days=60, seed=3))
    lines = [codec.dumps(ev) for ev in sim.events()]
    assert len(list(replay_lines(lines, cfg, replayer=rep))) > 100
    states = list(rep.states.values())
    assert len(states) == 38 and any(s.pending for s in states)
    assert any(s.last_purchase is None for s in states)
    assert any(s.gap_days is not None for s in states)
    for s in states:
        raw = codec.dumps(s.to_dict())
        assert raw == codec.dumps(asdict(s))
        assert CustomerState.from_dict(codec.loads(raw)) == s


def test_a_late_purchase_on_a_recent_buying_day_is_not_a_new_day() -> None:
    """Day 0 12:00, day 15 23:30, day 16 00:10, then a day-15 basket 40 minutes late:
    3 buying days (the batch reference's nunique), not 4."""
    s = CustomerState.new("c1", 0.0)
    for i, t in enumerate((12 * 3600.0, 15 * DAY + 23.5 * 3600, 16 * DAY + 600.0,
                           15 * DAY + 23 * 3600 + 50 * 60)):
        update(s, buy(f"e{i}", t, 1.0), CFG)
    assert (s.purchases, s.purchase_days, s.recent_days) == (4, 3, [0, 15, 16])


def test_a_purchase_more_than_eight_buying_days_late_counts_as_new() -> None:
    """The documented approximation: only the latest 8 buying days (and the first) are
    known, so a purchase on an older day already counted is counted again."""
    s = CustomerState.new("c1", 0.0)
    for d in range(12):
        update(s, buy(f"e{d}", d * DAY + 3600.0, 1.0), CFG)
    assert (s.purchase_days, s.recent_days) == (12, list(range(4, 12)))
    update(s, buy("late-first-day", 7200.0, 1.0), CFG)  # day 0: the first buying day
    update(s, buy("late-day-5", 5 * DAY + 7200.0, 1.0), CFG)  # kept: not new
    assert s.purchase_days == 12
    update(s, buy("late-day-2", 2 * DAY + 7200.0, 1.0), CFG)  # forgotten: counted again
    assert s.purchase_days == 13


def test_a_state_saved_before_buying_days_were_kept_continues_from_its_orders() -> None:
    """A changelog value without ``purchase_days`` / ``recent_days`` (weekly buyer, 10
    orders): the next purchase counts on from one day per order, it does not restart."""
    old = CustomerState.new("c1", 0.0).to_dict()
    old.update(events=10, purchases=10, monetary=10.0, first_purchase=0.0,
               last_purchase=63 * DAY)
    del old["purchase_days"], old["recent_days"]
    s = CustomerState.from_dict(old)
    update(s, buy("e11", 70 * DAY, 1.0), CFG)
    assert (s.purchase_days, s.recent_days) == (11, [0, 63, 70])
    # written after buying days existed but before recent_days: seeded from first and last
    newer = CustomerState.from_dict({**old, "purchase_days": 10})
    update(newer, buy("late", 63 * DAY + 60.0, 1.0), CFG)  # on the last buying day
    assert newer.purchase_days == 10


def test_buying_days_start_at_the_configured_utc_hour() -> None:
    """An evening's baskets either side of UTC midnight: two days at the default start,
    one with ``buying_day_start_h=9`` (4 am in New York)."""
    times = (5 * DAY - 1800.0, 5 * DAY + 1800.0)  # 23:30 and 00:30 UTC
    for start, days in ((0.0, 2), (9.0, 1)):
        s = CustomerState.new("c1", 0.0)
        cfg = Settings(buying_day_start_h=start)
        for i, t in enumerate(times):
            update(s, buy(f"e{i}", t, 1.0), cfg)
        assert s.purchase_days == days
