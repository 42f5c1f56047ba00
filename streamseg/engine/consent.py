"""Consent events: withdrawal, grant, erasure (:func:`apply`), and their flips told
to subscribers: suppression notices and suppressed records (:func:`notify`).

:meth:`streamseg.engine.processor.Engine.apply` calls :func:`apply`, then
:func:`notify`, for every consent event; the worker publishes ``Outcome.notices`` on
``segment-changes`` and ``Outcome.segments`` on ``customer-segments``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamseg.engine.changes import suppression_record
from streamseg.engine.consentlog import log_of, read_at, record, stale_grant
from streamseg.engine.evaluation import catch_up, plan
from streamseg.engine.features import CustomerState
from streamseg.engine.outcome import Outcome

if TYPE_CHECKING:
    from streamseg.engine.events import Event
    from streamseg.engine.processor import Engine


def apply(engine: Engine, state: CustomerState | None, event: Event,
          applied: float | None = None) -> Outcome:
    """Fold consent ``event`` into ``state`` (may be None): withdraw, grant or erase.

    Withdrawal and erasure take the customer out of the population models;
    a grant that lifts a withdrawal puts them back (:meth:`Engine.restore`) and
    brings them up to the grant's event time (:func:`resume`).

    A withdrawal or erasure is always applied, whatever its date (a device whose clock
    was reset must not keep a customer targeted). A grant dated at or before the
    customer's latest withdrawal or erasure is skipped (``stale_consent``): the copy of a
    grant that another producer partitioner put on another partition, reaching this one
    after a later erasure, or a late producer (:mod:`streamseg.engine.consentlog`;
    ``applied``: the event time reading had reached, from which a withdrawal or erasure
    counts against grants if later than its own date). The record applied joins the
    state's ``consent_log``.

    >>> from streamseg.config import Settings
    >>> from streamseg.engine.events import Event
    >>> from streamseg.engine.processor import Engine
    >>> eng = Engine(Settings())
    >>> off = eng.apply(None, Event("consent", "erasure_requested", "x2", "c1", 3.0)).state
    >>> eng.apply(off, Event("consent", "consent_granted", "g1", "c1", 3.0)).skipped
    'stale_consent'
    >>> eng.apply(off, Event("consent", "consent_granted", "g2", "c1", 4.0)).state.withdrawn
    False
    """
    log: list[list[Any]] = []
    # a grant counts from when it was read if stamped later (a device clock ahead must not
    # date it after a withdrawal made since); a restriction is placed by record itself
    at = read_at(event.ts, applied) if event.type == "consent_granted" else event.ts
    if state is not None:
        if event.type == "consent_granted" and stale_grant(state, at):
            return Outcome(state, skipped="stale_consent")
        log = log_of(state)
    out = _apply(engine, state, event)
    if out.state is not None:
        out.state.consent_log = record(log, at, event.type, applied)
    return out


def _apply(engine: Engine, state: CustomerState | None, event: Event) -> Outcome:
    if event.type == "erasure_requested":
        # Delete the profile; keep only a suppression marker (withdrawn, no
        # features, no segments) so that events still in flight from before
        # the erasure cannot re-create a profile. A later consent_granted
        # starts a fresh profile.
        # The epoch keeps the change ids of a later fresh profile apart from
        # the erased profile's (sequences restart at 1).
        engine.forget(event.customer_id)
        marker = CustomerState.new(event.customer_id, event.ts, engine.definition)
        marker.withdrawn = True
        marker.erased = True
        marker.epoch = 1 if state is None else state.epoch + 1
        return Outcome(marker, erased=True)
    if event.type == "consent_granted" and (state is None or state.erased):
        # only an erasure marker starts afresh: a profile-only customer with every attribute
        # removed still has its published segments and sequences (restarting them at 1 in
        # the same epoch reused change ids already published with other content)
        fresh = CustomerState.new(event.customer_id, event.ts, engine.definition)
        fresh.epoch = 0 if state is None else state.epoch
        return Outcome(fresh)
    if state is None:
        state = CustomerState.new(event.customer_id, event.ts, engine.definition)
    lifted = state.withdrawn and event.type == "consent_granted"
    state.withdrawn = event.type == "consent_withdrawn"
    if state.withdrawn:
        engine.forget(event.customer_id)
        return Outcome(state)
    engine.restore(state)  # consent back: into the population models again
    if lifted:  # the models moved while it was out: re-score it (trigger population)
        engine.queue(state.customer_id)
    return resume(engine, state, event.ts) if lifted else Outcome(state)


def resume(engine: Engine, state: CustomerState, now: float) -> Outcome:
    """Bring a customer whose withdrawal a grant at ``now`` lifts up to ``now``.

    The clock moves that fell due while consent was withdrawn (ticks skipped
    them: ``no_consent``) are walked now, each at its own due time, exactly as
    ticks would have walked them, so the state, and the grant notice that lists
    its segments, are current. They are not published: a withdrawn customer gets
    no changes (docs/RELIABILITY.md), and the grant notice says where they stand.
    They are kept in :attr:`Outcome.folded` (the edge moves its segment gauges).
    The outcome plans the next due time after ``now``, so the customer is
    scheduled again (all due times up to ``now`` are spent).

    >>> from streamseg.config import DAY, Settings
    >>> from streamseg.engine.events import Event
    >>> from streamseg.engine.processor import Engine
    >>> eng = Engine(Settings())
    >>> s = eng.apply(None, Event("purchase", "purchase", "e1", "c1", 0.0, amount=20.0)).state
    >>> s = eng.apply(s, Event("consent", "consent_withdrawn", "w1", "c1", DAY)).state
    >>> on = eng.apply(s, Event("consent", "consent_granted", "g1", "c1", 100 * DAY))
    >>> on.changes, [(c["to_segment"], c["event_time"][:10]) for c in on.folded]
    ([], [('active', '1970-01-31'), ('at_risk', '1970-04-01')])
    >>> on.notices[0]["segments"]["lifecycle"]["segment"], round(on.due / DAY)
    ('at_risk', 180)
    """
    out = catch_up(engine, state, now, inclusive=True)
    out.folded, out.changes = out.changes, []
    # evaluated up to the grant: no later evaluation (a population re-score at a tick
    # clock behind the grant, a walk) is dated inside the withdrawal (scheduler.floor)
    if state.looked is None or now > state.looked:
        state.looked = now
    out.segments = None  # the grant notice publishes the record (notify)
    plan(out, state, out.due)
    return out


def notify(engine: Engine, prior: tuple[bool, int], out: Outcome, event: Event) -> Outcome:
    """Tell subscribers when consent flips: suppression notice + ``customer-segments``.

    ``prior`` is (withdrawn, notices so far) of the state the consent event
    found (read before :func:`apply`, which may change it in place).
    Withdrawal (from not withdrawn) publishes ``suppressed: true``; a grant
    that lifts a withdrawal publishes ``suppressed: false`` with the current
    segments. An erasure publishes its tombstone instead; repeated consent
    events, and customers with no segment (never profiled, erased), publish nothing.

    >>> from streamseg.config import Settings
    >>> from streamseg.engine.events import Event
    >>> from streamseg.engine.processor import Engine
    >>> eng = Engine(Settings())
    >>> out = eng.apply(None, Event("purchase", "purchase", "e1", "c1", 0.0, amount=20.0))
    >>> off = eng.apply(out.state, Event("consent", "consent_withdrawn", "e2", "c1", 5.0))
    >>> note = off.notices[0]
    >>> note["suppressed"], sorted(note["segments"]), off.segments["segments"]
    (True, ['frequency', 'lifecycle'], {})
    >>> eng.apply(off.state, Event("consent", "consent_withdrawn", "e3", "c1", 6.0)).notices
    []
    >>> on = eng.apply(off.state, Event("consent", "consent_granted", "e4", "c1", 7.0))
    >>> on.notices[0]["suppressed"], on.notices[0]["sequence"], on.segments["suppressed"]
    (False, 2, False)
    """
    was, notices = prior
    state = out.state
    if out.erased or state is None or was == state.withdrawn or not state.segments:
        return out  # nothing flipped, or nothing was ever published for this customer
    state.suppressions = notices + 1
    out.segments = engine.segments_record(state, event.ts)
    out.notices.append(suppression_record(
        state, state.withdrawn, event.type, event.ts, engine.segment_views(state)))
    return out
