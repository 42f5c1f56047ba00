"""Change detection: first assignment, sequences, ids, the optional global dwell.

(The distance margin moved from the detector into ``ClusterSegmenter.hold``:
each segmenter owns its damping, see test_hysteresis.py.)"""

from __future__ import annotations

from streamseg.engine.changes import ChangeDetector, change_id
from streamseg.engine.features import CustomerState
from streamseg.engine.segmenters.base import Assignment


def test_sequence_and_previous_segment() -> None:
    s = CustomerState.new("c", 0.0)
    d = ChangeDetector()
    assert d.confirm(s, "lifecycle", Assignment("new", "r"), 1.0) == (None, 1)
    assert d.confirm(s, "lifecycle", Assignment("new", "r"), 2.0) is None
    assert d.confirm(s, "lifecycle", Assignment("active", "r"), 3.0) == ("new", 2)
    assert d.confirm(s, "lifecycle", Assignment("new", "r"), 4.0) == ("active", 3)
    assert s.segments["lifecycle"] == ["new", 4.0, 3, None]


def test_change_id_is_deterministic_and_distinct() -> None:
    ids = {change_id(c, seg, n) for c in ("a", "b") for seg in ("x", "y") for n in (1, 2)}
    assert len(ids) == 8
    assert change_id("a", "x", 1) == change_id("a", "x", 1)
    assert len(change_id("a", "x", 1)) == 32


def test_min_dwell_confirms_only_after_persisting() -> None:
    s = CustomerState.new("c", 0.0)
    d = ChangeDetector(min_dwell_s=10.0)
    assert d.confirm(s, "f", Assignment("low", "r"), 0.0) == (None, 1)  # first: immediate
    assert d.confirm(s, "f", Assignment("high", "r"), 5.0) is None
    assert s.pending["f"] == ["high", 5.0]
    assert d.confirm(s, "f", Assignment("high", "r"), 14.0) is None
    assert d.confirm(s, "f", Assignment("high", "r"), 15.0) == ("low", 2)
    assert "f" not in s.pending


def test_dwell_candidate_reset_when_verdict_returns() -> None:
    s = CustomerState.new("c", 0.0)
    d = ChangeDetector(min_dwell_s=10.0)
    d.confirm(s, "f", Assignment("low", "r"), 0.0)
    d.confirm(s, "f", Assignment("high", "r"), 1.0)
    assert d.confirm(s, "f", Assignment("low", "r"), 2.0) is None
    assert "f" not in s.pending
    assert d.confirm(s, "f", Assignment("high", "r"), 12.0) is None  # the clock restarts
    assert d.confirm(s, "f", Assignment("medium", "r"), 30.0) is None  # another candidate
    assert s.pending["f"] == ["medium", 30.0]


def test_global_dwell_never_delays_a_move_at_the_customers_own_event() -> None:
    s = CustomerState.new("c", 0.0)
    d = ChangeDetector(min_dwell_s=10.0)
    d.confirm(s, "f", Assignment("low", "r"), 0.0)
    assert d.confirm(s, "f", Assignment("high", "r"), 1.0, damp=False) == ("low", 2)
    assert s.pending == {}
