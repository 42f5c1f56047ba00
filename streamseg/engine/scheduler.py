"""When must an idle customer be looked at again? Due times on the event-time clock.

Each segmenter knows when its own verdict for an idle customer may change
(:meth:`~streamseg.engine.segmenters.base.Segmenter.due`: a recency threshold,
the end of a held demotion, an RFM recency cut...). :func:`next_due` is the
earliest of them (and of the optional global dwell); :class:`Schedule` is a
heap of ``(due, customer_id)`` that the worker's timer drains up to the
event-time clock. Everything is pure and deterministic; there are no
per-segmenter special cases here.

Examples
--------
>>> from streamseg.config import Settings
>>> from streamseg.engine.segmenters import FrequencySegmenter, LifecycleSegmenter
>>> cfg = Settings()
>>> segs = [FrequencySegmenter(cfg), LifecycleSegmenter(cfg)]
>>> s = CustomerState.new("c1", 0.0)
>>> s.purchases, s.first_purchase, s.last_purchase = 1, 0.0, 0.0
>>> [(next_due(segs, s, t, 0.0) - STEP_S) / DAY for t in (0.0, 31 * DAY, 91 * DAY)]
[30.0, 90.0, 180.0]
>>> q = Schedule()
>>> q.push("b", 20.0); q.push("a", 10.0); q.push("c", 30.0); q.push("b", 5.0)
>>> q.pop_due(20.0), len(q)
(['b', 'a'], 1)
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from streamseg.config import DAY  # noqa: F401 - the doctests
from streamseg.engine.features import CustomerState
from streamseg.engine.segmenters.base import STEP_S, Segmenter

__all__ = ["STEP_S", "Schedule", "floor", "next_due"]


def next_due(
    segs: Sequence[Segmenter], state: CustomerState, after: float, min_dwell_s: float = 0.0
) -> float | None:
    """The earliest event time strictly after ``after`` worth re-evaluating ``state`` at."""
    best: float | None = None
    for seg in segs:
        t = seg.due(state, after)
        if t is not None and t > after and (best is None or t < best):
            best = t
    if min_dwell_s > 0.0:
        for _segment, since in state.pending.values():
            t = float(since) + min_dwell_s
            if t > after and (best is None or t < best):
                best = t
    return best


def floor(state: CustomerState) -> float:
    """The latest event time ``state`` was already evaluated at (last event or change,
    or the event clock a late event was evaluated at)."""
    best = state.last_seen
    if state.looked is not None and state.looked > best:
        best = state.looked
    for v in state.segments.values():
        t = float(v[1])
        if t > best:
            best = t
    for v in state.pending.values():
        t = float(v[1])
        if t > best:
            best = t
    return best


class Schedule:
    """A heap of ``(due, customer_id)``; a customer's latest push wins."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}

    def push(self, customer_id: str, due: float | None) -> None:
        """(Re)schedule ``customer_id`` at ``due``; None cancels."""
        if due is None:
            self._due.pop(customer_id, None)
            return
        self._due[customer_id] = due
        heapq.heappush(self._heap, (due, customer_id))
        if len(self._heap) > 2 * len(self._due) + 1024:  # drop superseded entries
            self._heap = [(d, c) for c, d in self._due.items()]
            heapq.heapify(self._heap)

    def pop_due(self, now: float) -> list[str]:
        """Customers due at or before ``now``, earliest first (ties by id); they leave the heap."""
        out: list[str] = []
        while self._heap and self._heap[0][0] <= now:
            due, cid = heapq.heappop(self._heap)
            if self._due.get(cid) == due:
                del self._due[cid]
                out.append(cid)
        return out

    def __len__(self) -> int:
        return len(self._due)
