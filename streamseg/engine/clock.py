"""The event-time clock: the highest event time seen, less an allowed lateness.

Time-driven transitions (``lapsed`` with no new event) are evaluated on this
clock, never on the machine's wall clock, so a replay gives the same answer.

Examples
--------
>>> c = EventClock(allowed_lateness_s=60.0)
>>> c.now() is None
True
>>> c.observe(1000.0); c.observe(900.0)
>>> c.now()
940.0
>>> EventClock.from_dict(c.to_dict()) == c
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class EventClock:
    """Monotone watermark over observed event times."""

    allowed_lateness_s: float = 0.0
    max_seen: float | None = None

    def observe(self, ts: float) -> None:
        """Advance the clock with an event time (older times do not move it back)."""
        if self.max_seen is None or ts > self.max_seen:
            self.max_seen = ts

    def now(self) -> float | None:
        """The watermark, or None before any event."""
        if self.max_seen is None:
            return None
        return self.max_seen - self.allowed_lateness_s

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for the edge to persist the clock per partition."""
        return {"allowed_lateness_s": self.allowed_lateness_s, "max_seen": self.max_seen}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventClock:
        """Inverse of :meth:`to_dict`."""
        seen = data.get("max_seen")
        return cls(float(data.get("allowed_lateness_s", 0.0)),
                   None if seen is None else float(seen))

    def restore(self, max_seen: float | None) -> None:
        """Merge a persisted watermark (the clock never moves back)."""
        if max_seen is not None:
            self.observe(max_seen)
