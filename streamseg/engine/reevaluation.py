"""Re-evaluating a customer who sent no event: a clock tick, a population move.

The engine's paths with no new event of the customer's own, apart from its event
path (:meth:`Engine.apply <streamseg.engine.processor.Engine.apply>`):

* :func:`tick` (:meth:`Engine.tick <streamseg.engine.processor.Engine.tick>`): the
  time-driven moves due by a time, each at its own due time (trigger ``clock``);
* :func:`moved` and :func:`rescore` (:meth:`Engine.moved
  <streamseg.engine.processor.Engine.moved>`, :meth:`Engine.rescore
  <streamseg.engine.processor.Engine.rescore>`): the customers a population model
  moved, re-evaluated by the segmenters that named them (trigger ``population``);
  :func:`retain` (:meth:`Engine.retain <streamseg.engine.processor.Engine.retain>`)
  keeps the population models, and so the customers :func:`moved` names, to the
  customers this worker still owns after a rebalance.

Due times are walked and segmenters evaluated by :mod:`streamseg.engine.evaluation`;
nothing here knows about Kafka.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import TYPE_CHECKING

from streamseg.engine.evaluation import catch_up, due_one, earliest, evaluate, plan, redefine, walk
from streamseg.engine.features import NEVER, CustomerState
from streamseg.engine.outcome import Outcome
from streamseg.engine.scheduler import floor
from streamseg.engine.segmenters.base import Segmenter

if TYPE_CHECKING:
    from streamseg.engine.processor import Engine


def tick(engine: Engine, state: CustomerState, now: float,
         after: float | None = None) -> Outcome:
    """Re-evaluate ``state`` at event time ``now`` with no new event (time-driven moves).

    Only the segmenters due by ``now`` are evaluated, each at its own due
    time, in order. ``after`` (optional: the :attr:`~streamseg.engine.outcome.Outcome.at` of the
    customer's previous tick) skips due times already evaluated; without it
    the walk starts at ``floor(state)``, which gives the same changes.
    A withdrawn (or erased) customer is a counted ``no_consent`` skip: a tick
    already in flight when consent was withdrawn or erasure was requested
    changes nothing.
    """
    if state.withdrawn:
        return Outcome(state, skipped="no_consent")
    if now <= state.last_seen:
        return Outcome(state, at=now)
    redone = redefine(engine, state)  # evaluated under other settings
    out = catch_up(engine, state, now, inclusive=True, after=None if redone else after)
    if redone is not None and redone.changes:
        out.changes[:0] = redone.changes
        out.render(engine, state, now)
    out.at = now
    return out


def rescore(engine: Engine, state: CustomerState, now: float,
            which: set[int] | None) -> Outcome:
    """Re-evaluate at ``now`` (trigger ``population``) the segmenters that moved for ``state``.

    For the customers :func:`moved` names: a population model moved, so their
    verdict may have changed although they did nothing. Only the segmenters
    whose ``moved()`` named the customer are evaluated (``which``, their indices, as
    :func:`moved` kept them; None: all of them, for a customer it did not name),
    and, once one of them published a
    change, the segmenters that read published segments (``reads_segments``:
    rule audiences). Time-driven moves
    due by ``now`` come first (trigger ``clock``; those due at ``now`` itself
    too, since the due times planned afterwards lie strictly after it),
    unless the state's due hint says nothing was due by then. The segmenters
    that moved are not walked: a new model is never applied at a time
    before it existed. Evaluated at
    ``max(now, floor(state))`` so a customer's changes stay in event-time order.
    """
    if state.withdrawn:
        return Outcome(state, skipped="no_consent")
    redone = redefine(engine, state)  # evaluated under other settings: all of it
    if redone is not None:
        which = None
    at = max(now, floor(state))
    hint = state.due_hint
    pending: list[float | None] | None = None
    if hint is not None and hint > at:  # nothing due by ``at``: no walk
        out = Outcome(state)
    else:  # inclusive: a segmenter due at ``at`` itself is evaluated in the walk; the
        # moved ones are not walked (their new model must not judge earlier times)
        out, pending = walk(engine, state, at, inclusive=True,
                             skip=frozenset(() if which is None else which))
    moved = range(len(engine.segmenters)) if which is None else sorted(which)
    step = evaluate(engine, state, at, "population", [engine.segmenters[i] for i in moved])
    out.changes += step.changes
    if redone is not None and redone.changes:
        out.changes[:0] = redone.changes
    if step.changes and which is not None:
        # a published segment moved: the others may read it (audiences), evaluate them too
        rest = [seg for i, seg in enumerate(engine.segmenters)
                if i not in which and seg.reads_segments]
        out.changes += evaluate(engine, state, at, "population", rest).changes
    if out.changes:
        out.render(engine, state, at)
        due = engine.due(state, at)
    else:  # only the moved segmenters' due times can have changed
        due = earliest([due_one(engine, i, state, at) for i in moved])
        if which is not None:  # the others': as the walk left them, or the hint (early)
            others = [None if hint == NEVER else hint] if pending is None else [
                d for i, d in enumerate(pending) if i not in which]
            due = earliest([due, *others])
    out.at = at
    plan(out, state, due)
    return out


def moved(segmenters: list[Segmenter], pending: dict[str, set[int]],
          queued: dict[str, None]) -> list[str]:
    """Customers to :func:`rescore`: every segmenter's ``moved()``, drained, de-duplicated.

    ``pending`` (the engine's, customer -> indices of the segmenters that named it)
    remembers which segmenters named each customer until its :func:`rescore` (so
    that evaluates those only); the customers ``queued`` (every segmenter re-scores
    them) are drained into it.
    """
    out: dict[str, None] = {}
    if queued:
        every = range(len(segmenters))
        for cid in queued:
            out[cid] = None
            pending[cid] = set(every)
        queued.clear()
    for i, seg in enumerate(segmenters):
        for cid in seg.moved():
            out[cid] = None
            which = pending.get(cid)
            if which is None:
                pending[cid] = {i}
            else:
                which.add(i)
    return list(out)


def retain(engine: Engine, pending: Mapping[str, set[int]], keep: Container[str]) -> list[str]:
    """:meth:`Engine.forget <streamseg.engine.processor.Engine.forget>` every customer the
    population models hold, or ``pending`` (the engine's customers waiting for a
    :func:`rescore`) names, who is not in ``keep`` (after a rebalance: the customers of
    the partitions this worker still owns).

    Returns the customers forgotten, in a fixed order (segmenters in order, each in
    its own order). The population models then hold the customers of ``keep`` only,
    and :func:`moved` names no one else.

    >>> from streamseg.config import Settings
    >>> from streamseg.engine.events import Event
    >>> from streamseg.engine.processor import Engine
    >>> eng = Engine(Settings())
    >>> for i in range(3):
    ...     _ = eng.apply(None, Event("purchase", "purchase", f"e{i}", f"c{i}", 0.0))
    >>> rfm = eng.segmenter("rfm")
    >>> eng.retain({"c0", "c2"}), sorted(rfm.customers()), eng.retain({"c0", "c2"})
    (['c1'], ['c0', 'c2'], [])
    """
    gone = dict.fromkeys(
        cid for seg in engine.segmenters for cid in seg.customers() if cid not in keep)
    gone.update(dict.fromkeys(cid for cid in pending if cid not in keep))
    for cid in gone:
        engine.forget(cid)
    return list(gone)
