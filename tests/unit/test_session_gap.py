"""Feature rules that no other unit test pinned down (review 16: targeted mutation testing).

Fails on the mutant of ``streamseg/engine/features.py`` that opens a session at a gap of
exactly ``session_gap_minutes``, and passes on the features as they are.
"""

from __future__ import annotations

from streamseg.config import Settings
from streamseg.engine.events import Event
from streamseg.engine.features import CustomerState, update


def test_a_session_without_an_id_ends_only_after_a_gap_longer_than_session_gap() -> None:
    """Events without a session id belong to one session while the gap is at most
    ``session_gap_minutes``: a click exactly 30 minutes after the last one continues it
    (sessions count toward the cluster features, its minimum of sessions and the KPIs)."""
    cfg = Settings(session_gap_minutes=30)
    s = CustomerState.new("c", 0.0)
    update(s, Event("click", "page_view", "e1", "c", 0.0), cfg)
    update(s, Event("click", "page_view", "e2", "c", 1800.0), cfg)  # exactly 30 min
    assert s.sessions == 1
    update(s, Event("click", "page_view", "e3", "c", 3601.0), cfg)  # 30 min + 1 s
    assert s.sessions == 2
