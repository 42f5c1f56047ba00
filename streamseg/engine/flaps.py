"""Flap rate: the share of segment changes reverted within a window.

A change ``A -> B`` of one customer and segmenter *flaps* when the next change
of that customer and segmenter is ``B -> A`` within ``window_s`` seconds of
event time. First assignments (``from_segment`` null) are not changes here.

:func:`measure` runs the engine (no Kafka) over simulated events and reports
the flap rate; :func:`compare` gives the before/after figures of the
hysteresis defaults (``python -m streamseg.engine.flaps`` prints them).

Examples
--------
>>> rows = [
...     {"customer_id": "a", "segmenter": "s", "from_segment": None, "to_segment": "x",
...      "event_time": "2026-01-01T00:00:00Z"},
...     {"customer_id": "a", "segmenter": "s", "from_segment": "x", "to_segment": "y",
...      "event_time": "2026-01-02T00:00:00Z"},
...     {"customer_id": "a", "segmenter": "s", "from_segment": "y", "to_segment": "x",
...      "event_time": "2026-01-03T00:00:00Z"},
...     {"customer_id": "a", "segmenter": "s", "from_segment": "x", "to_segment": "z",
...      "event_time": "2026-03-01T00:00:00Z"},
... ]
>>> r = flap_rate(rows, window_s=7 * 86400)
>>> r.changes, r.reverted, round(r.rate, 4)
(3, 1, 0.3333)
>>> flap_rate(rows, window_s=3600).reverted
0
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streamseg.config import Settings
from streamseg.engine.events import Event, kind_of, parse_ts
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine
from streamseg.engine.validate import Valid, Validator


@dataclass(frozen=True, slots=True)
class FlapReport:
    """Changes counted, how many were reverted within the window, and their share."""

    changes: int
    reverted: int
    by_segmenter: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.reverted / self.changes if self.changes else 0.0


def flap_rate(changes: Iterable[Mapping[str, Any]], window_s: float) -> FlapReport:
    """Count reverted changes among segment-change records (in publication order)."""
    last: dict[tuple[str, str], tuple[str, str, float]] = {}
    counts: dict[str, list[int]] = {}
    for c in changes:
        if c["from_segment"] is None:
            continue
        key = (str(c["customer_id"]), str(c["segmenter"]))
        ts = parse_ts(str(c["event_time"]))
        per = counts.setdefault(key[1], [0, 0])
        per[0] += 1
        prev = last.get(key)
        if (
            prev is not None
            and prev[0] == c["to_segment"]
            and prev[1] == c["from_segment"]
            and ts - prev[2] <= window_s
        ):
            per[1] += 1
            last.pop(key)  # a revert is not itself reverted by the next change
        else:
            last[key] = (str(c["from_segment"]), str(c["to_segment"]), ts)
    by = {k: (v[0], v[1]) for k, v in sorted(counts.items())}
    return FlapReport(
        sum(v[0] for v in by.values()), sum(v[1] for v in by.values()), by
    )


def run(events: Iterable[Event], settings: Settings) -> list[dict[str, Any]]:
    """Every change the engine publishes for ``events`` (in order), then a final clock tick."""
    engine = Engine(settings)
    states: dict[str, CustomerState] = {}
    out: list[dict[str, Any]] = []
    end = 0.0
    for ev in events:
        res = engine.apply(states.get(ev.customer_id), ev)
        if res.state is None:
            states.pop(ev.customer_id, None)
        else:
            states[ev.customer_id] = res.state
        out += res.changes
        end = max(end, ev.ts)
    for cid in sorted(states):
        out += engine.tick(states[cid], end).changes
    return out


def simulated(customers: int = 300, days: float = 180.0, seed: int = 7) -> list[Event]:
    """Valid events of a seeded :mod:`streamseg.simulate` run."""
    from streamseg.simulate import SimConfig, Simulation

    validator = Validator(Settings(max_future_skew_s=10 * 365 * 86400.0))
    events = []
    for rec in Simulation(SimConfig(customers=customers, days=days, seed=seed)).events():
        res = validator.check_record(kind_of(rec), None, rec)
        if isinstance(res, Valid):
            events.append(res.event)
    return events


def measure(events: list[Event], settings: Settings) -> FlapReport:
    """Flap rate of the engine's changes for ``events`` under ``settings``."""
    return flap_rate(run(events, settings), settings.flap_window_s)


def compare(
    events: list[Event], after: Settings | None = None
) -> tuple[FlapReport, FlapReport]:
    """(before, after): no hysteresis (raw verdicts) versus ``after`` (default settings)."""
    after = after or Settings()
    before = dataclasses.replace(after, hysteresis=False)
    return measure(events, before), measure(events, after)


def main() -> int:
    """Print the before/after flap rates on the default simulation (no Kafka)."""
    events = simulated()
    before, after = compare(events)
    for label, rep in (("before", before), ("after", after)):
        print(f"{label}: changes={rep.changes} reverted={rep.reverted} rate={rep.rate:.4f}")
        for seg, (n, r) in rep.by_segmenter.items():
            print(f"  {seg}: changes={n} reverted={r} rate={(r / n if n else 0.0):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
