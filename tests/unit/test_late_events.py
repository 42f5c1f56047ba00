"""A late event (older than what its customer's labels already account for) is evaluated
at the event clock: no state that was already over is published (no A -> B -> A burst).

Reproductions of a code review's finding 3 (a buffered page view of day 5 read at day 120
published ``inactive_prospect -> prospect -> inactive_prospect``; a purchase of day 10 read
at day 300 published ``lapsed -> low -> lapsed``). Each test fails on the engine that
evaluated a late event at the customer's latest look (``floor(state)``).
"""

from __future__ import annotations

from typing import Any

import orjson

from streamseg.config import DAY, Settings
from streamseg.engine.events import Event, format_ts
from streamseg.engine.processor import Engine
from streamseg.engine.segmenters import FrequencySegmenter, LifecycleSegmenter
from streamseg.replay import Replayer

T0 = 1_767_268_800.0  # 2026-01-01T12:00:00Z


def click(cid: str, day: float, eid: str) -> dict[str, Any]:
    return {"type": "page_view", "customer_id": cid, "event_id": eid,
            "ts": format_ts(T0 + day * DAY), "channel": "web", "device": "mobile",
            "session_id": f"s-{eid}"}


def buy(cid: str, day: float, eid: str) -> dict[str, Any]:
    return {"type": "purchase", "customer_id": cid, "event_id": eid, "order_id": eid,
            "ts": format_ts(T0 + day * DAY), "amount": 50.0, "currency": "EUR",
            "channel": "web", "device": "mobile"}


def moves(records: list[dict[str, Any]], cid: str, segmenter: str) -> list[tuple[Any, str]]:
    rep = Replayer(Settings())
    out: list[tuple[Any, str]] = []
    for r in records:
        got = rep.feed(orjson.dumps(r))
        assert isinstance(got, list), got
        out += [(c["from_segment"], c["to_segment"]) for c in got
                if c.get("kind") == "change" and c["customer_id"] == cid
                and c["segmenter"] == segmenter]
    return out


def test_buffered_page_view_of_an_inactive_visitor_publishes_nothing() -> None:
    late = [click("v", 0, "v1"), click("d", 120, "d1"), click("v", 5, "v2"), click("d", 121, "d2")]
    assert moves(late, "v", "lifecycle") == [(None, "prospect"), ("prospect", "inactive_prospect")]


def test_old_purchase_of_a_lapsed_buyer_publishes_nothing() -> None:
    late = [buy("c", 0, "p1"), click("d", 300, "d1"), buy("c", 10, "p2"), click("d", 301, "d2")]
    freq = moves(late, "c", "frequency")
    life = moves(late, "c", "lifecycle")
    assert freq == [(None, "one_time"), ("one_time", "lapsed")], freq
    assert life[-1] == ("at_risk", "lapsed") and ("lapsed", "at_risk") not in life, life


def test_a_late_purchase_that_changes_the_present_is_published_once_at_the_clock() -> None:
    # bought on day 0, at_risk published at day 90 (clock at day 100): a purchase of day 95
    # read now makes the customer active again -- once, dated at the clock, not at day 90
    records = [buy("c", 0, "p1"), buy("c", 5, "p2"), click("d", 100, "d1"), buy("c", 95, "p3")]
    rep = Replayer(Settings())
    changes = []
    for r in records:
        got = rep.feed(orjson.dumps(r))
        assert isinstance(got, list)
        changes += [c for c in got if c.get("kind") == "change" and c["customer_id"] == "c"
                    and c["segmenter"] == "lifecycle"]
    last = changes[-1]
    assert (last["from_segment"], last["to_segment"], last["trigger"]) == (
        "at_risk", "active", "event")
    clock = T0 + 100 * DAY - Settings().allowed_lateness_s
    assert last["event_time"] == format_ts(clock)
    times = [c["event_time"] for c in changes]
    assert times == sorted(times)  # never back in time for the customer


def test_no_walk_after_a_late_event_starts_before_the_clock() -> None:
    # lapsed at day 180; a purchase of day 100 read when the clock is at day 300: at day 300
    # the customer is still lapsed (200 days since). A later tick must not walk from day 180
    # with that purchase and publish an at_risk back-dated to day 190 (a transient).
    settings = Settings()
    eng = Engine(settings, [FrequencySegmenter(settings), LifecycleSegmenter(settings)])
    state = eng.apply(None, Event("purchase", "purchase", "p1", "c", T0, amount=50.0)).state
    assert state is not None
    lapsed = eng.tick(state, T0 + 300 * DAY)
    assert [c["to_segment"] for c in lapsed.changes][-1] == "lapsed"
    out = eng.apply(state, Event("purchase", "purchase", "p2", "c", T0 + 100 * DAY, amount=50.0),
                    T0 + 300 * DAY)
    assert out.changes == []
    later = eng.tick(state, T0 + 400 * DAY)
    assert [(c["from_segment"], c["to_segment"]) for c in later.changes] == []


def test_the_worker_evaluates_a_late_event_where_its_ticks_have_got_to() -> None:
    """The real ``Ingest`` (batch, ticks, emit): the same as replay, no transient."""
    from datetime import UTC, datetime

    from unit.ingest_harness import Harness

    cfg = Settings(max_future_skew_s=3650 * DAY, source_idle_s=0.0)
    h = Harness(cfg, wall=lambda: datetime(2030, 1, 1, tzinfo=UTC).timestamp())
    try:
        for stream, record in (("click", click("v", 0, "v1")), ("click", click("d", 120, "d1"))):
            h.send_json(stream, record)
        for partition, value in h.ingest.due_ticks():  # the clock timer: v goes inactive
            h.send("tick", None, value, partition=partition)
        h.send_json("click", click("v", 5, "v2"))  # the app's buffered page view of day 5
        h.send_json("click", click("d", 121, "d2"))
        for partition, value in h.ingest.due_ticks():
            h.send("tick", None, value, partition=partition)
        got = [(c["from_segment"], c["to_segment"]) for c in h.app.changes.values()
               if c["customer_id"] == "v" and c["segmenter"] == "lifecycle"]
    finally:
        h.close()
    assert got == [(None, "prospect"), ("prospect", "inactive_prospect")]


def test_no_change_after_a_grant_is_dated_inside_the_withdrawal() -> None:
    """Subscriber review 14, finding 2: the tick after a grant re-scored the customer at
    the tick clock (the grant less the allowed lateness), before the grant: a value and an
    RFM label dated inside the withdrawal, after the grant notice."""
    eng = Engine(Settings())
    s = eng.apply(None, Event("purchase", "purchase", "e1", "c1", T0, amount=20.0)).state
    assert s is not None
    s = eng.apply(s, Event("consent", "consent_withdrawn", "w1", "c1", T0 + DAY)).state
    assert s is not None
    grant = T0 + 100 * DAY
    on = eng.apply(s, Event("consent", "consent_granted", "g1", "c1", grant))
    assert on.state is not None
    out = eng.rescore(on.state, grant - Settings().allowed_lateness_s)  # the next tick
    assert out.at is not None and out.at >= grant
    assert all(c["event_time"] >= format_ts(grant) for c in out.changes)


def test_a_late_event_while_the_ticks_lag_publishes_no_move_it_contradicts() -> None:
    """Diff review, finding 2: the worker's tick clock (``look``) is often ahead of the
    ticks applied. A walk to it before the late purchase was folded in published
    ``low -> lapsed`` and ``at_risk -> lapsed``, which the purchase undid at once."""
    settings = Settings()
    eng = Engine(settings, [FrequencySegmenter(settings), LifecycleSegmenter(settings)])
    state = eng.apply(None, Event("purchase", "purchase", "p1", "c", T0, amount=50.0)).state
    assert state is not None
    state = eng.apply(state, Event("purchase", "purchase", "p2", "c", T0 + 40 * DAY,
                                   amount=50.0)).state
    assert state is not None
    assert [c["to_segment"] for c in eng.tick(state, T0 + 140 * DAY).changes] == ["at_risk"]
    late = eng.apply(state, Event("purchase", "purchase", "p3", "c", T0 + 120 * DAY,
                                  amount=50.0), T0 + 250 * DAY)
    assert late.changes == []  # at day 250, 130 days after the day-120 purchase: at_risk


def test_a_buyer_back_after_a_grant_is_scored_by_rfm() -> None:
    """Diff review, finding 1: RFM is not evaluated at page views; a customer it had no
    label for (withdrawn while RFM warmed up) is, and a grant queues a re-score."""
    settings = Settings(rfm_min_samples=3, rfm_warmup_days=10)
    records = [buy("c", 0, "c1"), {"type": "consent_withdrawn", "customer_id": "c",
                                   "event_id": "w1", "ts": format_ts(T0 + DAY)}]
    records += [buy(f"o{i}", d, f"o{i}-{d}") for i in range(4) for d in (0, 12)]
    records += [{"type": "consent_granted", "customer_id": "c", "event_id": "g1",
                 "ts": format_ts(T0 + 20 * DAY)}, click("c", 21, "v1")]
    rep = Replayer(settings)
    for r in records:
        assert isinstance(rep.feed(orjson.dumps(r)), list)
    assert rep.states["c"].segments["rfm"][0] == "lost"
