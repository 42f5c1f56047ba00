"""When must an idle customer be looked at again? Due times on the event-time clock.

A rule verdict can change without a new event only when recency crosses a
threshold (``last_purchase + at_risk_days``, ``+ lapsed_days``, a tier
boundary, an RFM recency cut...) or when a pending change has dwelt long
enough. :func:`next_due` gives the earliest such event time after ``after``;
:class:`Schedule` is a heap of ``(due, customer_id)`` that the worker's timer
drains up to the event-time clock. Everything is pure and deterministic.

Examples
--------
>>> from streamseg.config import Settings
>>> from streamseg.engine.segmenters import FrequencySegmenter, LifecycleSegmenter
>>> cfg = Settings()
>>> segs = [FrequencySegmenter(cfg), LifecycleSegmenter(cfg)]
>>> s = CustomerState.new("c1", 0.0)
>>> s.purchases, s.first_purchase, s.last_purchase = 1, 0.0, 0.0
>>> [(next_due(segs, s, t, 0.0) - STEP_S) / DAY for t in (0.0, 8 * DAY, 31 * DAY)]
[7.0, 28.0, 90.0]
>>> q = Schedule()
>>> q.push("b", 20.0); q.push("a", 10.0); q.push("c", 30.0); q.push("b", 5.0)
>>> q.pop_due(20.0), len(q)
(['b', 'a'], 1)
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence

from streamseg.config import DAY
from streamseg.engine.features import CustomerState
from streamseg.engine.segmenters.base import Segmenter
from streamseg.engine.segmenters.frequency import FrequencySegmenter
from streamseg.engine.segmenters.lifecycle import LifecycleSegmenter

STEP_S = 1.0  # thresholds are strict (``>``): look one second past them


def candidates(seg: Segmenter, state: CustomerState) -> Iterable[float]:
    """Event times at which ``seg``'s verdict for an idle ``state`` may change."""
    due = getattr(seg, "due", None)
    if due is not None:
        return []
    lp = state.last_purchase
    if isinstance(seg, FrequencySegmenter):
        if lp is None:
            return []
        return [lp + days * DAY + STEP_S for days in (seg.high, seg.medium, seg.lapsed)]
    if isinstance(seg, LifecycleSegmenter):
        if lp is None:
            return [state.first_seen + seg.new_s + STEP_S, state.last_seen + seg.lapsed_s + STEP_S]
        out = [lp + seg.at_risk_s + STEP_S, lp + seg.lapsed_s + STEP_S]
        first = state.first_purchase if state.first_purchase is not None else state.first_seen
        out.append(first + seg.new_s + STEP_S)
        if state.reactivated_at is not None:
            out.append(state.reactivated_at + seg.reactivated_s + STEP_S)
        return out
    return []


DueFn = Callable[[CustomerState, float], "float | None"]


def _frequency_due(seg: FrequencySegmenter) -> DueFn:
    offsets = [days * DAY for days in (seg.high, seg.medium, seg.lapsed)]

    def due(state: CustomerState, after: float) -> float | None:
        lp = state.last_purchase
        if lp is None:
            return None
        best: float | None = None
        for off in offsets:
            t = lp + off + STEP_S  # the sums of :func:`candidates`, term for term
            if t > after and (best is None or t < best):
                best = t
        return best

    return due


def _lifecycle_due(seg: LifecycleSegmenter) -> DueFn:
    def due(state: CustomerState, after: float) -> float | None:
        best: float | None = None
        for t in candidates(seg, state):
            if t > after and (best is None or t < best):
                best = t
        return best

    return due


def plan(segs: Sequence[Segmenter]) -> tuple[DueFn, ...]:
    """Per segmenter, a function giving its earliest candidate time after ``after``.

    Built once per engine: :func:`due_after` with it is :func:`next_due`
    without the per-call dispatch. Segmenters with no time-driven verdict
    (no ``due`` method and not a rule over recency) are left out.
    """
    out: list[DueFn] = []
    for seg in segs:
        own = getattr(seg, "due", None)
        if own is not None:
            out.append(own)
        elif isinstance(seg, FrequencySegmenter):
            out.append(_frequency_due(seg))
        elif isinstance(seg, LifecycleSegmenter):
            out.append(_lifecycle_due(seg))
    return tuple(out)


def due_after(
    fns: tuple[DueFn, ...], state: CustomerState, after: float, min_dwell_s: float
) -> float | None:
    """:func:`next_due` over a :func:`plan`."""
    best: float | None = None
    for fn in fns:
        t = fn(state, after)
        if t is not None:
            t = float(t)
            if t > after and (best is None or t < best):
                best = t
    if min_dwell_s > 0.0:
        for _segment, since in state.pending.values():
            t = float(since) + min_dwell_s
            if t > after and (best is None or t < best):
                best = t
    return best


def next_due(
    segs: Sequence[Segmenter], state: CustomerState, after: float, min_dwell_s: float
) -> float | None:
    """The earliest event time strictly after ``after`` worth re-evaluating ``state`` at."""
    return due_after(plan(segs), state, after, min_dwell_s)


def floor(state: CustomerState) -> float:
    """The latest event time ``state`` was already evaluated at (last event or change)."""
    best = state.last_seen
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
