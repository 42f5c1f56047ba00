"""The engine's entry points: fold one event (or one clock tick) into a customer.

The Faust agents and ``streamseg replay`` both call :meth:`Engine.apply` and
:meth:`Engine.tick`; nothing here knows about Kafka. The event path is here; the
paths with no event of the customer's (a tick, a population move) are
:mod:`streamseg.engine.reevaluation`'s, the ``customer-segments`` record
:mod:`streamseg.engine.segmentsrecord`'s.

Examples
--------
>>> from streamseg.config import DAY, Settings
>>> from streamseg.engine.events import Event
>>> eng = Engine(Settings())
>>> out = eng.apply(None, Event("purchase", "purchase", "e1", "c1", 0.0, amount=20.0))
>>> [(c["segmenter"], c["from_segment"], c["to_segment"]) for c in out.changes]
[('frequency', None, 'one_time'), ('lifecycle', None, 'new')]
>>> eng.apply(out.state, Event("purchase", "purchase", "e1", "c1", 0.0)).skipped
'duplicate'
>>> later = eng.tick(out.state, 200 * 86400.0)
>>> [(c["segmenter"], c["to_segment"], c["trigger"]) for c in later.changes]
[('lifecycle', 'active', 'clock'), ('lifecycle', 'at_risk', 'clock'), \
('frequency', 'lapsed', 'clock'), ('lifecycle', 'lapsed', 'clock')]
>>> [c["event_time"] for c in later.changes][1:3]  # each at its own due time (+1 s)
['1970-04-01T00:00:01Z', '1970-06-30T00:00:01Z']
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Container
from dataclasses import replace
from typing import Any

from streamseg.config import DAY, Settings
from streamseg.engine import audiencefile, consent, evaluation, reevaluation, segmenters
from streamseg.engine.changes import ChangeDetector
from streamseg.engine.clock import EventClock, bounded
from streamseg.engine.consentlog import admits, applies, kept
from streamseg.engine.dedup import event_hash, remember_hash
from streamseg.engine.evaluation import catch_up, dues, earliest, evaluate, plan
from streamseg.engine.events import RESTRICTIVE, Event
from streamseg.engine.features import CustomerState, update
from streamseg.engine.kpis import Kpis
from streamseg.engine.outcome import Outcome
from streamseg.engine.predictions import features, predicted, prediction
from streamseg.engine.profile import merge
from streamseg.engine.scheduler import floor
from streamseg.engine.segmenters.base import Predictor, Segmenter
from streamseg.engine.segmentsrecord import segment_views, segments_record
from streamseg.engine.validate import Invalid, screen

__all__ = ["Engine", "Outcome"]


class Engine:
    """Features, segmenters and change detection for one worker (or one replay)."""

    def __init__(self, settings: Settings, segs: list[Segmenter] | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.settings = settings
        # the wall clock: only an upper bound (of accepted event times, screen, and of the
        # event clock, clock.bounded)
        self.wall = wall
        self.segmenters: list[Segmenter] = segs if segs is not None else segmenters.default(
            settings
        )
        self.hysteresis = settings.hysteresis
        self.dwell_s = settings.min_dwell_s if settings.hysteresis else 0.0
        self.detector = ChangeDetector(min_dwell_s=self.dwell_s)
        # customer -> indices of the segmenters whose population moved for it (see moved)
        self._moved: dict[str, set[int]] = {}
        self._queued: dict[str, None] = {}  # customers every segmenter re-scores (queue)
        # the predicted-value segmenter, if one is configured (structural: has ``predict``)
        self.predictor: Predictor | None = next(
            (seg for seg in self.segmenters if isinstance(seg, Predictor)), None)
        # trailing-window buckets of rule audiences (None: no audiences file, nothing kept)
        self.history = audiencefile.history(settings, {s.name: s for s in self.segmenters})
        self.kpis = Kpis()
        self._kpi_names = tuple(seg.name for seg in self.segmenters)
        self._repeat_s = settings.kpi_repeat_days * DAY
        self.definition = settings.definition()  # states evaluated under others: redefine
        self.window = settings.event_time_window()  # the static accepted event-time window
        # per input kind, the segmenters an event of that kind can move (Segmenter.reacts_to):
        # RFM is not evaluated at a page view (a move found there is a population move the
        # next re-score publishes; at a click it was published with trigger ``event``)
        self._reacting = {kind: [seg for seg in self.segmenters
                                 if seg.reacts_to is None or kind in seg.reacts_to]
                          for kind in ("purchase", "click", "profile")}

    def segmenter(self, name: str) -> Segmenter | None:
        """The segmenter called ``name`` (e.g. ``cluster``, for model snapshots), if any."""
        return next((seg for seg in self.segmenters if seg.name == name), None)

    def prediction(self, state: CustomerState, now: float) -> tuple[float, float] | None:
        """(p_alive, expected purchases) of ``state`` at ``now``, or None
        (:func:`streamseg.engine.predictions.prediction`)."""
        return prediction(self.predictor, state, now)

    def features(self, state: CustomerState, now: float) -> dict[str, Any]:
        """The feature summary of ``state`` at ``now``, with the value model's
        predictions (:func:`streamseg.engine.predictions.features`)."""
        return features(self.settings, self.predictor, state, now)

    def predicted(self, state: CustomerState, now: float) -> float | None:
        """Predicted value of ``state`` at ``now`` for the KPIs, or None
        (:func:`streamseg.engine.predictions.predicted`)."""
        return predicted(self.predictor, state, now)

    def due(self, state: CustomerState, at: float | None = None) -> float | None:
        """Next event time at which ``state`` may change segment without a new event.

        The earliest of the segmenters' own :meth:`~Segmenter.due` (and of the
        optional global dwell), strictly after ``floor(state)`` and after ``at``
        (an :attr:`Outcome.at`): a tick that changed nothing is not due again at once.
        """
        if state.withdrawn:
            return None
        after = floor(state) if at is None else max(at, floor(state))
        return earliest(dues(self, state, after))

    def apply(self, state: CustomerState | None, event: Event,
              clock: float | None = None) -> Outcome:
        """Fold ``event`` into ``state`` (which may be None for an unknown customer).

        ``clock`` (optional): the event time that time-driven evaluation has reached
        (the event clock). A *late* event -- older than the latest time its customer
        was already evaluated at, which is itself behind ``clock`` -- is evaluated at
        ``clock`` by every segmenter, with no walk through the time-driven moves in
        between (:meth:`_look`): the labels published are what is true now. Evaluated
        at its customer's latest look
        instead, it republished a state that was already over (``lapsed -> low ->
        lapsed`` for a purchase of day 10 read at day 300; a buffered page view of
        day 5 read at day 120: ``inactive_prospect -> prospect -> inactive_prospect``).

        A profile record (kind ``profile``) is deduplicated, skipped for a
        withdrawn customer and evaluated (trigger ``event``) like any event, but
        it only merges attributes (:func:`streamseg.engine.profile.merge`).

        >>> from streamseg.config import Settings
        >>> eng = Engine(Settings())
        >>> p = Event("profile", "profile", "p1", "c1", 10.0, attributes={"country": "DE"})
        >>> out = eng.apply(None, p)
        >>> out.state.attributes, out.state.events, out.changes
        ({'country': 'DE'}, 0, [])
        >>> eng.apply(out.state, p).skipped
        'duplicate'
        """
        if event.kind == "consent":
            # (withdrawn, notices so far) before consent.apply, which may change state in place
            prior = (False, 0) if state is None else (state.withdrawn, state.suppressions)
            # (``clock``: how far reading had got; a withdrawal counts from there, if later)
            return consent.notify(self, prior, consent.apply(self, state, event, clock), event)
        withheld = False
        if not admits(state, event.ts):
            # withdrawn now, or dated while consent was withdrawn or before an erasure
            if not kept(state, event.ts):
                return Outcome(state, skipped="no_consent")
            withheld = True  # made before the withdrawal, read after it: kept, not published
        key = event_hash(event.kind, event.event_id)
        caught = redone = None
        late = False
        if state is None:
            state = CustomerState.new(event.customer_id, event.ts, self.definition)
        elif key in state.recent_ids:
            return Outcome(state, skipped="duplicate")
        else:
            redone = evaluation.redefine(self, state)  # evaluated under other settings
            # late: older than the customer's latest evaluation, and the clock later still
            late = clock is not None and event.ts < floor(state) < clock
            if not late and (state.due_hint is None or state.due_hint < event.ts):
                # time-driven moves due before this event happen first, at their own time
                caught = catch_up(self, state, event.ts, inclusive=False)
        remember_hash(state, key, self.settings.dedup_window)
        if event.attributes is not None:
            # a profile record: attributes only, no behaviour (no feature, no recency, no
            # KPI, nothing for population models to learn); evaluated at its own time
            # (or at the latest look, if later), so rules on attributes react now
            merge(state, event.attributes, event.ts)
            if late:
                self._look(state, clock)
            now = max(floor(state), event.ts)
        else:
            sessions, last = state.sessions, state.last_purchase
            update(state, event, self.settings)
            if self.history is not None:
                self.history.record(state, event)
            self.kpis.credit(state, self._kpi_names, event, state.sessions != sessions, last,
                             self._repeat_s)
            if late:
                self._look(state, clock)
            now = floor(state)  # never back in time: a late event is evaluated at the latest look
            if not withheld:  # (a withdrawn customer is out of the population models)
                for seg in self.segmenters:
                    seg.learn(state, now)
        # a late event: every segmenter at the clock (no walk brought them there)
        segs = self.segmenters if late else self._reacting.get(event.kind, self.segmenters)
        if len(segs) < len(self.segmenters):  # a segmenter with no label yet is evaluated
            segs = [seg for seg in self.segmenters  # (one that abstained: warm-up, adoption)
                    if seg in segs or seg.name not in state.segments]
        out = evaluate(self, state, now, "event", segs)
        early = [*(redone.changes if redone else ()), *(caught.changes if caught else ())]
        if early:
            out.changes[:0] = early
            out.render(self, state, now)
        plan(out, state, earliest(dues(self, state, now)))
        if withheld:  # in the profile for a re-grant (its notice lists the segments), unpublished
            out.folded, out.changes, out.segments = out.changes, [], None
            out.skipped = "no_consent"
        return out

    @staticmethod
    def _look(state: CustomerState, clock: float | None) -> None:
        """A late event, folded in: it is evaluated at ``clock`` (recorded as ``looked``:
        no later walk starts before it), by every segmenter, with no walk from the
        customer's latest evaluation. The time-driven moves due in between are not
        published one by one: with the event they are history that is over (walked
        with it, a purchase of day 100 read at day 300 re-published ``lapsed -> at_risk
        -> lapsed``), without it they are moves the event contradicts (walked before
        it, while the ticks lagged: ``at_risk -> lapsed -> at_risk``). The label goes
        from the published one to the verdict at the clock, if they differ."""
        if clock is not None and clock > floor(state):
            state.looked = clock

    def tick(self, state: CustomerState, now: float, after: float | None = None) -> Outcome:
        """Re-evaluate ``state`` at event time ``now`` with no new event (time-driven moves;
        ``after``: the :attr:`Outcome.at` of the customer's previous tick):
        :func:`streamseg.engine.reevaluation.tick`."""
        return reevaluation.tick(self, state, now, after)

    def rescore(self, state: CustomerState, now: float) -> Outcome:
        """Re-evaluate at ``now`` (trigger ``population``) the segmenters that moved for ``state``
        (those :meth:`moved` named it for): :func:`streamseg.engine.reevaluation.rescore`."""
        return reevaluation.rescore(self, state, now, self._moved.pop(state.customer_id, None))

    def moved(self) -> list[str]:
        """Customers to :meth:`rescore`: every segmenter's ``moved()``, drained, de-duplicated
        (:func:`streamseg.engine.reevaluation.moved`; remembered until their :meth:`rescore`)."""
        return reevaluation.moved(self.segmenters, self._moved, self._queued)

    def queue(self, customer_id: str) -> None:
        """Have every segmenter re-score ``customer_id`` at the next :meth:`rescore` (named by
        the next :meth:`moved`): a customer back in the population models after a consent
        grant, whose labels the models moved while it was out (a population move names the
        customers a cut value crossed, never the one who came back)."""
        self._queued[customer_id] = None

    def restore(self, state: CustomerState) -> None:
        """Rebuild population models from a state restored from the table (restart, rebalance)."""
        if state.withdrawn:
            return
        for seg in self.segmenters:
            seg.restore(state)

    def forget(self, customer_id: str) -> None:
        """Take the customer out of every population model (each segmenter's ``forget``) and
        out of the customers waiting for a :meth:`rescore`: erasure, withdrawal, and
        :meth:`retain` (the customer's partition went to another worker)."""
        for seg in self.segmenters:
            seg.forget(customer_id)
        self._moved.pop(customer_id, None)
        self._queued.pop(customer_id, None)

    def retain(self, keep: Container[str]) -> list[str]:
        """:meth:`forget` every customer the population models hold who is not in ``keep``
        (after a rebalance), in a fixed order: :func:`streamseg.engine.reevaluation.retain`."""
        return reevaluation.retain(self, self._moved, keep)

    def verdict(self, state: CustomerState, name: str, now: float) -> tuple[str | None, bool]:
        """(raw verdict of segmenter ``name`` at ``now``, whether the published label
        differs from it only because hysteresis keeps it), for the quality report
        (:func:`streamseg.engine.evaluation.verdict`)."""
        return evaluation.verdict(self, state, name, now)

    def ingest(
        self, state: CustomerState | None, event: Event, clock: EventClock,
        look: float | None = None,
    ) -> Outcome | Invalid:
        """:meth:`screen` against ``clock``, then advance the clock (no further than the
        wall clock: :func:`~streamseg.engine.clock.bounded`) and :meth:`apply` with
        ``look``, the event time that time-driven evaluation has reached (replay: the
        clock's ``now()``; the worker: its tick clock, capped at its slowest input;
        None: unknown, a late event is evaluated at its customer's latest look).

        The one path from a valid event to an outcome, for the worker and replay alike.
        """
        admitted = self.accept(event, clock, state)
        if isinstance(admitted, Invalid):
            return admitted
        return self.apply(state, admitted, self.look_for(admitted, clock, look))

    @staticmethod
    def look_for(event: Event, clock: EventClock, look: float | None) -> float | None:
        """What :meth:`apply` takes as ``clock`` for ``event``: ``look`` (the event time
        time-driven evaluation has reached), but for consent how far reading has got (the
        event clock), from which a withdrawal or erasure counts against older grants
        (:mod:`streamseg.engine.consentlog`). :meth:`ingest`, replay and the worker's
        consent paths ask it."""
        return clock.max_seen if event.kind == "consent" else look

    def refuse(self, state: CustomerState | None, event: Event) -> Invalid | None:
        """Why the customer's state refuses a valid ``event`` (None: it does not): a profile
        record that would give the customer more than ``max_attributes`` attribute names
        (values and removals kept), reason ``too_many_attributes``. :meth:`accept` asks it
        first: a refused event moves no clock. A withdrawn or erased
        customer's record is not refused: :meth:`apply` skips it (``no_consent``), and no
        dead letter keeps its bytes.

        >>> from streamseg.config import Settings
        >>> eng = Engine(Settings(max_attributes=2))
        >>> two = eng.apply(None, Event("profile", "profile", "p1", "c1", 1.0,
        ...                             attributes={"x_a": 1, "x_b": None})).state
        >>> eng.refuse(two, Event("profile", "profile", "p2", "c1", 2.0,
        ...                       attributes={"x_a": 2, "x_b": 3})) is None
        True
        >>> print(eng.refuse(two, Event("profile", "profile", "p3", "c1", 2.0,
        ...                             attributes={"x_c": 1})).message.replace("; ", "\\n"))
        customer c1 holds 2 attribute names
        this record adds 1 more (at most 2: STREAMSEG_MAX_ATTRIBUTES)
        """
        if event.attributes is None or not applies(state, event.ts):
            return None
        known = state.attributes_ts if state is not None else {}
        added = sum(1 for name in event.attributes if name not in known)
        limit = self.settings.max_attributes
        if len(known) + added <= limit:
            return None
        return Invalid("too_many_attributes",
                       f"customer {event.customer_id} holds {len(known)} attribute names; this "
                       f"record adds {added} more (at most {limit}: STREAMSEG_MAX_ATTRIBUTES)",
                       "attributes")

    def accept(self, event: Event, clock: EventClock,
               state: CustomerState | None = None) -> Event | Invalid:
        """The first half of :meth:`ingest`: ``event`` as it is applied (:meth:`admit`: a
        withdrawal or erasure dated where no event is accepted is moved to the event
        clock) with the clock advanced by it, or the refusal (:meth:`refuse` by
        ``state``, the customer's, first). Replay and the batch references take changes,
        re-scores and consent at the admitted time from here."""
        refused = self.refuse(state, event)
        if refused is not None:
            return refused
        wall = self.wall()  # one reading for the check and the clock's bound
        admitted = self.admit(event, clock, wall)
        if admitted is event:  # a withdrawal or erasure set to the clock does not move it
            clock.observe(bounded(event.ts, clock.max_seen, wall))
        return admitted

    def admit(self, event: Event, clock: EventClock, wall: float | None) -> Event | Invalid:
        """``event`` if its time is accepted (:meth:`screen`, the static window); else the
        refusal, but for a withdrawal or erasure (never refused for its time:
        :data:`~streamseg.engine.events.RESTRICTIVE`): a copy of it at the event clock (the
        wall clock, within the window, before the clock has a value), which
        :meth:`ingest` does not let move the clock (a 2030 withdrawal read while replaying
        2011 must not age every customer by 15 years).

        >>> from streamseg.config import DAY, Settings
        >>> from streamseg.engine.clock import EventClock
        >>> eng, clock = Engine(Settings()), EventClock(0.0)
        >>> clock.observe(100 * DAY)
        >>> far = Event("consent", "consent_withdrawn", "w", "c", 9e9)
        >>> eng.admit(far, clock, wall=200 * DAY).ts == 100 * DAY  # at the event clock
        True
        >>> eng.admit(Event("click", "page_view", "v", "c", 9e9), clock, 200 * DAY).reason
        'timestamp_out_of_range'
        """
        rejected = self.screen(event, clock.max_seen, wall)
        if event.type not in RESTRICTIVE:
            return event if rejected is None else rejected
        lo, hi = self.window
        if rejected is None and lo <= event.ts < hi:
            return event
        ref = next(t for t in (clock.max_seen, wall, event.ts) if t is not None)
        return replace(event, ts=min(max(ref, lo), math.nextafter(hi, -math.inf)))

    def screen(self, event: Event, watermark: float | None,
               wall: float | None = None) -> Invalid | None:
        """Reject an event too far in the future (``timestamp_out_of_range``):
        :func:`streamseg.engine.validate.screen` with ``max_future_skew_s``, against
        the later of the event clock ``watermark`` and the wall clock (``wall``, read
        from :attr:`wall` when not given)."""
        now = self.wall() if wall is None else wall
        return screen(event, watermark, self.settings.max_future_skew_s, now)

    def segments_record(self, state: CustomerState, now: float) -> dict[str, Any]:
        """The ``customer-segments`` value for ``state`` (a customer who withdrew consent is
        ``suppressed``): :func:`streamseg.engine.segmentsrecord.segments_record`."""
        return segments_record(self.segmenters, state, now)

    def segment_views(self, state: CustomerState) -> dict[str, Any]:
        """Segmenter -> {segment, name, since, sequence, model_version} of ``state``
        (:func:`streamseg.engine.segmentsrecord.segment_views`)."""
        return segment_views(self.segmenters, state)
