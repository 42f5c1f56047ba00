"""Consent granted again after a withdrawal: the customer is brought up to the grant.

Regression (review10, ``regrant_stuck.jsonl``): the clock moves that fell due
while consent was withdrawn were never evaluated at the grant. The grant notice
(``suppressed: false``) listed the segments the customer had at the withdrawal,
then:

* replay scheduled the customer after the *grant's* event time only: a grant
  after the customer's last due time left no due time, and the customer stayed
  ``high`` / ``new`` for good;
* the worker scheduled it from the state's last look: the next tick published
  every move of the withdrawal, backdated, after the notice.

Now a grant that lifts a withdrawal walks those due times at once, without
publishing them (a withdrawn customer gets no changes, docs/RELIABILITY.md),
so the notice lists the current segments, nothing backdated follows, and the
customer is scheduled at its next due time after the grant. Replay and the
worker (the real ``Ingest`` glue) publish the same records.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from unit.ingest_harness import Harness
from unit.test_retick import run_ticks

from streamseg.config import DAY, Settings
from streamseg.replay import replay_lines

BASE = datetime(2026, 1, 1, 10, tzinfo=UTC)
CFG = Settings(max_future_skew_s=365 * DAY, allowed_lateness_s=0.0, source_idle_s=0.0)


def at(days: float) -> str:
    return (BASE + timedelta(days=days)).isoformat().replace("+00:00", "Z")


def story(grant_day: float) -> list[dict[str, Any]]:
    """r1 buys on days 0, 7, 14, withdraws on day 19 and grants again on ``grant_day``;
    r2's page views move the clock every 10 days up to day 293."""
    events: list[dict[str, Any]] = [
        {"event_id": f"p{i}", "customer_id": "r1", "type": "purchase", "ts": at(d),
         "order_id": f"o{i}", "amount": 30, "currency": "EUR"} for i, d in enumerate((0, 7, 14))]
    events.append({"event_id": "w1", "customer_id": "r1", "type": "consent_withdrawn",
                   "ts": at(19)})
    events.append({"event_id": "g1", "customer_id": "r1", "type": "consent_granted",
                   "ts": at(grant_day)})
    events += [{"event_id": f"c{d}", "customer_id": "r2", "type": "page_view", "ts": at(d)}
               for d in range(23, 294, 10)]
    return sorted(events, key=lambda e: e["ts"])


def replayed(grant_day: float) -> list[dict[str, Any]]:
    lines = [json.dumps(e).encode() for e in story(grant_day)]
    return [r for r in replay_lines(lines, CFG) if r["customer_id"] == "r1"]


def worked(grant_day: float) -> tuple[list[dict[str, Any]], Harness]:
    """The same input through the worker's glue, the clock timer run after every input."""
    h = Harness(CFG)
    try:
        for e in story(grant_day):
            h.send_json("purchase" if e["type"] == "purchase" else
                        "consent" if e["type"].startswith("consent") else "click", e)
            run_ticks(h)
    finally:
        h.close()
    return [v for v in h.app.changes.values() if v["customer_id"] == "r1"], h


def brief(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for r in records:
        if r["kind"] == "change":
            out.append((r["segmenter"], r["to_segment"], r["sequence"], r["event_time"][:10]))
        else:
            out.append(("notice", r["suppressed"], r["event_time"][:10],
                        {k: v["segment"] for k, v in r["segments"].items()}))
    return out


def grant_notice(records: list[dict[str, Any]]) -> int:
    return next(i for i, r in enumerate(records)
                if r["kind"] == "suppression" and not r["suppressed"])


def test_grant_after_the_last_due_time_lists_current_segments_and_nothing_follows() -> None:
    # the last due time is day 194 (lapsed, 180 days after the last purchase); grant on day 247
    records = replayed(247)
    i = grant_notice(records)
    notice = records[i]
    assert {k: v["segment"] for k, v in notice["segments"].items()} == {
        "frequency": "lapsed", "lifecycle": "lapsed"}
    # the sequences count the moves walked during the withdrawal (they were not published)
    assert {k: v["sequence"] for k, v in notice["segments"].items()} == {
        "frequency": 5, "lifecycle": 4}
    assert records[i + 1:] == []  # nothing stale, nothing backdated after the notice
    assert all(r["event_time"] <= at(19) for r in records[:i])  # none during the withdrawal


def test_grant_before_the_last_due_time_keeps_the_customer_scheduled() -> None:
    records = replayed(120)
    i = grant_notice(records)
    assert {k: v["segment"] for k, v in records[i]["segments"].items()} == {
        "frequency": "low", "lifecycle": "at_risk"}
    after = brief(records[i + 1:])
    # only the moves due after the grant follow it, at their own (later) event times
    assert after == [("frequency", "lapsed", 5, "2026-07-14"),
                     ("lifecycle", "lapsed", 4, "2026-07-14")]


def test_worker_publishes_what_replay_publishes_and_moves_the_gauges() -> None:
    for grant_day in (120, 247):
        published, h = worked(grant_day)
        assert brief(published) == brief(replayed(grant_day)), grant_day
        i = grant_notice(published)
        assert {k: v["segment"] for k, v in published[i]["segments"].items()} == {
            "frequency": "lapsed" if grant_day > 194 else "low",
            "lifecycle": "lapsed" if grant_day > 194 else "at_risk"}
        assert all(r["event_time"] > at(grant_day) for r in published[i + 1:])
        # customer-segments: the record published with the grant notice is current too
        record = next(v for v in h.app.segments.values()
                      if v["customer_id"] == "r1" and v["event_time"] == at(grant_day))
        assert not record["suppressed"] and record["segments"] == published[i]["segments"]
        # the segment gauges follow the folded moves (r1 and r2, who is a prospect)
        size = {seg: h.registry.get_sample_value(
            "streamseg_segment_customers", {"segmenter": "lifecycle", "segment": seg})
            for seg in ("new", "active", "at_risk", "lapsed")}
        assert size == {"new": 0.0, "active": 0.0, "at_risk": 0.0, "lapsed": 1.0}, grant_day
        state = h.state("r1")
        assert state is not None and not state.withdrawn
        assert {k: v[0] for k, v in state.segments.items()} == {
            "frequency": "lapsed", "lifecycle": "lapsed"}
