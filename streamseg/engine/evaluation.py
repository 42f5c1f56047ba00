"""Evaluating segmenters for one customer at one event time, and walking due times.

:func:`evaluate` asks segmenters for their verdict, applies their ``hold`` and
the change detector, and builds the change records; :func:`catch_up` walks a
customer's due times up to a time (trigger ``clock``), evaluating at each one
only the segmenters due then. :class:`~streamseg.engine.processor.Engine`
calls these; nothing here knows about Kafka.

Examples
--------
>>> from streamseg.config import DAY, Settings
>>> from streamseg.engine.events import Event
>>> from streamseg.engine.processor import Engine
>>> eng = Engine(Settings())
>>> s = eng.apply(None, Event("purchase", "purchase", "e1", "c1", 0.0, amount=20.0)).state
>>> [round(d / DAY) for d in dues(eng, s, 0.0) if d is not None]
[180, 30]
>>> out = catch_up(eng, s, 40 * DAY, inclusive=True)
>>> [(c["segmenter"], c["to_segment"]) for c in out.changes], round(out.due / DAY)
([('lifecycle', 'active')], 90)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamseg.engine.changes import change_record
from streamseg.engine.features import NEVER, CustomerState
from streamseg.engine.outcome import Outcome
from streamseg.engine.scheduler import floor
from streamseg.engine.segmenters.base import Segmenter, Trigger
from streamseg.errors import ContractError

if TYPE_CHECKING:
    from streamseg.engine.processor import Engine


def evaluate(
    engine: Engine, state: CustomerState, now: float, trigger: Trigger, segs: list[Segmenter]
) -> Outcome:
    """Evaluate ``segs`` for ``state`` at ``now``: the changes they publish (``trigger``)."""
    out = Outcome(state)
    features: dict[str, Any] | None = None
    published = state.segments
    for seg in segs:
        verdict = seg.assign(state, now)
        if verdict is None:
            continue
        current = published.get(seg.name)
        if current is not None:
            if current[0] == verdict.segment:  # the usual case: what confirm does
                if state.pending:
                    state.pending.pop(seg.name, None)
                if verdict.model_version is not None:
                    current[3] = verdict.model_version  # refresh the version
                continue
            if engine.hysteresis and seg.hold(state, current[0], verdict, now, trigger):
                if state.pending:
                    state.pending.pop(seg.name, None)
                continue
        confirmed = engine.detector.confirm(
            state, seg.name, verdict, now, damp=trigger != "event"
        )
        if confirmed is None:
            continue
        if features is None:
            features = engine.features(state, now)
        previous, sequence = confirmed
        out.changes.append(
            change_record(
                state, seg.name, previous, sequence, verdict,
                seg.describe(verdict.segment), now, trigger, features,
                None if previous is None else seg.describe(previous),
            )
        )
    if out.changes:
        out.render(engine, state, now)
    return out


def redefine(engine: Engine, state: CustomerState) -> Outcome | None:
    """A state last evaluated under other settings (``state.definition`` differs from
    :meth:`Settings.definition`): None if not. Else its due hint, planned under the old
    settings, is forgotten (the next walk starts afresh from ``floor(state)``) and every
    segmenter is evaluated at the customer's latest evaluation time with trigger
    ``population``: a label the new definition no longer gives moves there, back-dated
    to that time, and not at the customer's next event (a page view used to publish
    ``active -> at_risk`` under thresholds changed weeks before).

    >>> from streamseg.config import DAY, Settings
    >>> from streamseg.engine.events import Event
    >>> from streamseg.engine.processor import Engine
    >>> s = Engine(Settings()).apply(None, Event("purchase", "purchase", "e1", "c", 0.0)).state
    >>> s.segments["lifecycle"][0]
    'new'
    >>> later = Engine(Settings(new_days=0.5))  # "new" for half a day only
    >>> out = redefine(later, s)
    >>> [(c["to_segment"], c["trigger"]) for c in out.changes], redefine(later, s)
    ([], None)
    >>> [(c["to_segment"], c["trigger"]) for c in later.tick(s, 1 * DAY).changes]
    [('active', 'clock')]
    """
    if state.definition == engine.definition:
        return None
    state.definition = engine.definition
    state.due_hint = None
    if not state.segments:
        return Outcome(state)
    return evaluate(engine, state, floor(state), "population", engine.segmenters)


def plan(out: Outcome, state: CustomerState, due: float | None) -> None:
    """Record the next due time in ``out`` and as the state's ``due_hint``."""
    out.plan(due)
    state.due_hint = NEVER if due is None else due


def catch_up(
    engine: Engine, state: CustomerState, until: float, inclusive: bool,
    after: float | None = None,
) -> Outcome:
    """Evaluate the due segmenters at each due time up to ``until``, in order (clock).

    Changes carry their due time, not the time the clock noticed, so the
    same events give the same changes however ticks are spaced. Segmenters
    due at the same instant are evaluated together; the others are not
    evaluated at all. The outcome's :attr:`~Outcome.due` is the next due time.
    """
    return walk(engine, state, until, inclusive, after)[0]


def walk(
    engine: Engine, state: CustomerState, until: float, inclusive: bool,
    after: float | None = None, skip: frozenset[int] = frozenset(),
) -> tuple[Outcome, list[float | None]]:
    """:func:`catch_up`, and per segmenter its next due time after the walk (None
    for the segmenters in ``skip``: not walked, the caller evaluates them itself)."""
    out = Outcome(state)
    if state.withdrawn:
        return out, []
    start = floor(state)
    pending = dues(engine, state, start if after is None or after < start else after, skip)
    segs = engine.segmenters
    while True:
        at = earliest(pending)
        if at is None or at > until or (at == until and not inclusive):
            if out.changes:  # the state is saved: keep its hint exact
                plan(out, state, at)
            else:  # the hint may stay early (a lower bound): no write for nothing
                out.plan(at)
            return out, pending
        ready = [seg for seg, d in zip(segs, pending, strict=True) if d == at]
        step = evaluate(engine, state, at, "clock", ready)
        if step.changes:
            out.changes += step.changes
            out.render(engine, state, at)
        for i, d in enumerate(pending):
            if d == at:
                pending[i] = nxt = due_one(engine, i, state, at)
                if nxt is not None and nxt <= at:  # the walk would never end
                    raise ContractError(f"segmenter {segs[i].name}: due({at}) gave {nxt}, "
                                        "not a later time")


def dues(engine: Engine, state: CustomerState, after: float,
         skip: frozenset[int] = frozenset()) -> list[float | None]:
    """Per segmenter, its next due time after ``after`` (with the global dwell; None for
    the segmenters in ``skip``)."""
    if not skip and (engine.dwell_s <= 0.0 or not state.pending):
        return [seg.due(state, after) for seg in engine.segmenters]
    return [None if i in skip else due_one(engine, i, state, after)
            for i in range(len(engine.segmenters))]


def due_one(engine: Engine, i: int, state: CustomerState, after: float) -> float | None:
    """The next due time after ``after`` of segmenter ``i`` (with the global dwell)."""
    seg = engine.segmenters[i]
    t = seg.due(state, after)
    if engine.dwell_s > 0.0 and state.pending:
        pending = state.pending.get(seg.name)
        if pending is not None:
            d = float(pending[1]) + engine.dwell_s
            if d > after and (t is None or d < t):
                t = d
    return t


def earliest(times: list[float | None]) -> float | None:
    """The earliest of ``times`` (None entries: never), None if all are None."""
    best: float | None = None
    for d in times:
        if d is not None and (best is None or d < best):
            best = d
    return best


def verdict(engine: Engine, state: CustomerState, name: str, now: float) -> tuple[str | None, bool]:
    """(raw verdict of segmenter ``name`` at ``now``, whether the published label
    differs from it only because hysteresis keeps it): :meth:`Engine.verdict`.

    >>> from streamseg.config import Settings
    >>> from streamseg.engine.events import Event
    >>> from streamseg.engine.processor import Engine
    >>> eng = Engine(Settings())
    >>> s = None
    >>> for i, d in enumerate((0, 5, 10)):
    ...     s = eng.apply(s, Event("purchase", "purchase", f"e{i}", "c", d * 86400.0)).state
    >>> eng.tick(s, 25 * 86400.0).changes  # interval 25 / 3 days: medium, held by the band
    []
    >>> s.segments["frequency"][0], eng.verdict(s, "frequency", 25 * 86400.0)
    ('high', ('medium', True))
    """
    seg = engine.segmenter(name)
    raw = None if seg is None else seg.assign(state, now)
    if seg is None or raw is None:
        return None, False
    current = state.segments.get(name)
    if current is None or current[0] == raw.segment or not engine.hysteresis:
        return raw.segment, False
    if seg.hold(state, current[0], raw, now, "clock") or seg.hold(
        state, current[0], raw, now, "population"
    ):
        return raw.segment, True
    pending = state.pending.get(name)
    held = engine.dwell_s > 0.0 and pending is not None and pending[0] == raw.segment
    return raw.segment, held
