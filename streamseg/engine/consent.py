"""Consent flips, told to subscribers: suppression notices and suppressed records.

:meth:`streamseg.engine.processor.Engine.apply` calls :func:`notify` after
every consent event; the worker publishes ``Outcome.notices`` on
``segment-changes`` and ``Outcome.segments`` on ``customer-segments``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamseg.engine.changes import suppression_record

if TYPE_CHECKING:
    from streamseg.engine.events import Event
    from streamseg.engine.processor import Engine, Outcome


def notify(engine: Engine, prior: tuple[bool, int], out: Outcome, event: Event) -> Outcome:
    """Tell subscribers when consent flips: suppression notice + ``customer-segments``.

    ``prior`` is (withdrawn, notices so far) of the state the consent event
    found (read before ``Engine._consent``, which may change it in place).
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
