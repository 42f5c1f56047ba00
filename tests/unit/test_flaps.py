"""Flap rate: share of changes reverted within the window; before/after hysteresis."""

from __future__ import annotations

from typing import Any

from streamseg.config import DAY, Settings
from streamseg.engine.events import format_ts
from streamseg.engine.flaps import FlapReport, compare, flap_rate, simulated


def row(cid: str, seg: str, frm: str | None, to: str, day: float) -> dict[str, Any]:
    return {"customer_id": cid, "segmenter": seg, "from_segment": frm, "to_segment": to,
            "event_time": format_ts(day * DAY)}


def test_reverts_within_the_window_per_customer_and_segmenter() -> None:
    rows = [
        row("a", "s", None, "x", 0),  # first assignment: not counted
        row("a", "s", "x", "y", 1),
        row("b", "s", None, "x", 1),
        row("a", "s", "y", "x", 3),  # reverts a's x->y after 2 days: a flap
        row("b", "s", "x", "y", 4),
        row("a", "t", "y", "x", 4),  # another segmenter: independent
        row("a", "s", "x", "y", 5),  # reverting a revert is a new change, not a flap
        row("b", "s", "y", "z", 5),  # moves on: no flap
        row("a", "s", "y", "x", 30),  # reverts after 25 days: outside a 14-day window
    ]
    r = flap_rate(rows, 14 * DAY)
    assert (r.changes, r.reverted, r.rate) == (7, 1, 1 / 7)
    assert r.by_segmenter == {"s": (6, 1), "t": (1, 0)}
    assert flap_rate(rows, 30 * DAY).reverted == 2
    assert flap_rate(rows, DAY).reverted == 0


def test_empty_report() -> None:
    assert flap_rate([], DAY) == FlapReport(0, 0, {})
    assert FlapReport(0, 0).rate == 0.0


def test_hysteresis_defaults_cut_the_flap_rate_on_simulated_data() -> None:
    events = simulated(customers=80, days=120.0, seed=3)
    before, after = compare(events, Settings())
    assert before.changes > 100
    assert after.rate < before.rate
    for seg in ("frequency", "channel", "cluster"):
        assert after.by_segmenter[seg][1] < before.by_segmenter[seg][1], seg
    # and the measurement itself is deterministic
    assert compare(events, Settings()) == (before, after)
