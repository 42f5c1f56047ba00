"""The engine's entry points: fold one event (or one clock tick) into a customer.

The Faust agents and ``streamseg replay`` both call :meth:`Engine.apply` and
:meth:`Engine.tick`; nothing here knows about Kafka.

Examples
--------
>>> from streamseg.config import Settings
>>> from streamseg.engine.events import Event
>>> eng = Engine(Settings())
>>> out = eng.apply(None, Event("purchase", "purchase", "e1", "c1", 0.0, amount=20.0))
>>> [(c["segmenter"], c["from_segment"], c["to_segment"]) for c in out.changes]
[('frequency', None, 'low'), ('lifecycle', None, 'new')]
>>> eng.apply(out.state, Event("purchase", "purchase", "e1", "c1", 0.0)).skipped
'duplicate'
>>> later = eng.tick(out.state, 200 * 86400.0)
>>> [(c["segmenter"], c["to_segment"], c["trigger"]) for c in later.changes]
[('lifecycle', 'active', 'clock'), ('lifecycle', 'at_risk', 'clock'), \
('frequency', 'lapsed', 'clock'), ('lifecycle', 'lapsed', 'clock')]
>>> [c["event_time"] for c in later.changes][1:3]  # at its due time + the 7-day dwell
['1970-04-08T00:00:01Z', '1970-07-07T00:00:01Z']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streamseg.config import Settings
from streamseg.engine import segmenters
from streamseg.engine.changes import ChangeDetector, change_record
from streamseg.engine.clock import EventClock
from streamseg.engine.consent import notify
from streamseg.engine.events import Event, format_ts
from streamseg.engine.features import CustomerState, remember, seen, summary, update
from streamseg.engine.scheduler import due_after, floor, plan
from streamseg.engine.segmenters.base import Segmenter
from streamseg.engine.validate import Invalid


@dataclass(slots=True)
class Outcome:
    """What one input did.

    ``state`` is the customer's new state (None when never created; after an
    erasure, a suppression marker with no profile data);
    ``changes`` are segment-change records to publish, in order; ``segments`` is
    the customer's new ``customer-segments`` value when anything changed;
    ``erased`` asks the edge to delete state and publish a tombstone;
    ``skipped`` names a deliberate skip (``duplicate``, ``no_consent``);
    ``at`` is the event time a tick evaluated ``state`` at (None for events:
    their evaluation times are recorded in the state), for :meth:`Engine.due`;
    ``notices`` are other ``segment-changes`` records to publish after
    ``changes`` (a suppression notice when consent is withdrawn or granted again).
    """

    state: CustomerState | None
    changes: list[dict[str, Any]] = field(default_factory=list)
    segments: dict[str, Any] | None = None
    erased: bool = False
    skipped: str | None = None
    at: float | None = None
    notices: list[dict[str, Any]] = field(default_factory=list)


class Engine:
    """Features, segmenters and change detection for one worker (or one replay)."""

    def __init__(self, settings: Settings, segs: list[Segmenter] | None = None) -> None:
        self.settings = settings
        self.segmenters: list[Segmenter] = segs if segs is not None else segmenters.default(
            settings
        )
        self.detector = ChangeDetector(
            min_dwell_s=settings.min_dwell_s, min_margin=settings.min_margin
        )
        self.undamped = ChangeDetector(min_dwell_s=0.0, min_margin=settings.min_margin)
        self._due = plan(self.segmenters)  # scheduler.next_due, dispatched once

    def segmenter(self, name: str) -> Segmenter | None:
        """The segmenter called ``name`` (e.g. ``cluster``, for model snapshots), if any."""
        return next((seg for seg in self.segmenters if seg.name == name), None)

    def due(self, state: CustomerState, at: float | None = None) -> float | None:
        """Next event time at which ``state`` may change segment without a new event.

        It is strictly after ``floor(state)`` and after ``at`` (an
        :attr:`Outcome.at`): a tick that changed nothing is not due again at once.
        """
        if state.withdrawn:
            return None
        after = floor(state) if at is None else max(at, floor(state))
        return due_after(self._due, state, after, self.settings.min_dwell_s)

    def apply(self, state: CustomerState | None, event: Event) -> Outcome:
        """Fold ``event`` into ``state`` (which may be None for an unknown customer)."""
        if event.kind == "consent":
            # (withdrawn, notices so far) before _consent, which may change state in place
            prior = (False, 0) if state is None else (state.withdrawn, state.suppressions)
            return notify(self, prior, self._consent(state, event), event)
        if state is not None and state.withdrawn:
            return Outcome(state, skipped="no_consent")
        if state is None:
            state = CustomerState.new(event.customer_id, event.ts)
        elif seen(state, event.event_id):
            return Outcome(state, skipped="duplicate")
        # time-driven moves due before this event happen first, at their own event time
        caught = self._catch_up(state, event.ts, inclusive=False)
        remember(state, event.event_id, self.settings.dedup_window)
        update(state, event, self.settings)
        now = state.last_seen
        for seg in self.segmenters:
            seg.learn(state, now)
        out = self._evaluate(state, now, "event")
        if caught.changes:
            out.changes[:0] = caught.changes
            out.segments = self.segments_record(state, now)
        return out

    def tick(self, state: CustomerState, now: float) -> Outcome:
        """Re-evaluate ``state`` at event time ``now`` with no new event (time-driven moves).

        A withdrawn (or erased) customer is a counted ``no_consent`` skip: a tick
        already in flight when consent was withdrawn or erasure was requested
        changes nothing.
        """
        if state.withdrawn:
            return Outcome(state, skipped="no_consent")
        if now <= state.last_seen:
            return Outcome(state, at=now)
        out = self._catch_up(state, now, inclusive=True)
        out.at = now
        return out

    def rescore(self, state: CustomerState, now: float) -> Outcome:
        """Re-evaluate every segmenter at ``now`` (trigger ``population``).

        For the customers :meth:`moved` names: a population model moved, so their
        verdict may have changed although they did nothing. Time-driven moves
        due before ``now`` come first (trigger ``clock``). Evaluated at
        ``max(now, floor(state))`` so a customer's changes stay in event-time order.
        """
        if state.withdrawn:
            return Outcome(state, skipped="no_consent")
        at = max(now, floor(state))
        out = self._catch_up(state, at, inclusive=False)
        step = self._evaluate(state, at, "population")
        out.changes += step.changes
        if out.changes:
            out.segments = self.segments_record(state, at)
        out.at = at
        return out

    def moved(self) -> list[str]:
        """Customers to :meth:`rescore`: every segmenter's ``moved()``, drained, de-duplicated."""
        out: dict[str, None] = {}
        for seg in self.segmenters:
            fn = getattr(seg, "moved", None)
            for cid in fn() if fn is not None else ():
                out[cid] = None
        return list(out)

    def restore(self, state: CustomerState) -> None:
        """Rebuild population models from a state restored from the table (restart, rebalance)."""
        if state.withdrawn:
            return
        for seg in self.segmenters:
            fn = getattr(seg, "restore", None)
            if fn is not None:
                fn(state)

    def verdict(self, state: CustomerState, name: str, now: float) -> tuple[str | None, bool]:
        """(raw verdict of segmenter ``name`` at ``now``, whether the published label
        differs from it only because the segmenter's ``hold`` keeps it), for quality reports.
        """
        seg = self.segmenter(name)
        raw = None if seg is None else seg.assign(state, now)
        if seg is None or raw is None:
            return None, False
        current = state.segments.get(name)
        hold = getattr(seg, "hold", None)
        if current is None or current[0] == raw.segment or hold is None:
            return raw.segment, False
        return raw.segment, bool(hold(state, current[0], raw, now, "population"))

    def _forget(self, customer_id: str) -> None:
        for seg in self.segmenters:
            fn = getattr(seg, "forget", None)
            if fn is not None:
                fn(customer_id)

    def _catch_up(self, state: CustomerState, until: float, inclusive: bool) -> Outcome:
        """Evaluate ``state`` at each due time up to ``until``, in order (clock trigger).

        Changes carry their due time, not the time the clock noticed, so the
        same events give the same changes however ticks are spaced.
        """
        out = Outcome(state)
        if state.withdrawn:
            return out
        at = self.due(state)
        while at is not None and (at <= until if inclusive else at < until):
            step = self._evaluate(state, at, "clock")
            out.changes += step.changes
            if step.segments is not None:
                out.segments = step.segments
            at = due_after(self._due, state, at, self.settings.min_dwell_s)
        return out

    def ingest(
        self, state: CustomerState | None, event: Event, clock: EventClock
    ) -> Outcome | Invalid:
        """:meth:`screen` against ``clock``, then advance the clock and :meth:`apply`.

        The one path from a valid event to an outcome, for the worker and replay alike.
        """
        rejected = self.screen(state, event, clock.max_seen)
        if rejected is not None:
            return rejected
        clock.observe(event.ts)
        return self.apply(state, event)

    def screen(
        self, state: CustomerState | None, event: Event, watermark: float | None
    ) -> Invalid | None:
        """Reject an event too far ahead of the event clock (``timestamp_out_of_range``).

        The reference is the newest event time known: ``watermark`` (the worker's
        highest event time seen, or None) and the customer's own ``last_seen``.
        It is event time, never the wall clock, so a replay decides the same.
        With no reference at all (first event of a fresh worker for a new
        customer) only the static 2000..2100 window of the validator applies.

        >>> from streamseg.config import Settings
        >>> eng = Engine(Settings(max_future_skew_s=60.0))
        >>> ev = Event("click", "page_view", "e1", "c1", 1000.0)
        >>> eng.screen(None, ev, None) is None, eng.screen(None, ev, 940.0) is None
        (True, True)
        >>> eng.screen(None, ev, 939.0).reason
        'timestamp_out_of_range'
        """
        refs = [t for t in (watermark, None if state is None else state.last_seen) if t is not None]
        if not refs or event.ts <= max(refs) + self.settings.max_future_skew_s:
            return None
        return Invalid(
            "timestamp_out_of_range",
            f"event time {format_ts(event.ts)} is more than {self.settings.max_future_skew_s:g} s "
            f"ahead of the event clock ({format_ts(max(refs))})",
            "ts",
        )

    def _consent(self, state: CustomerState | None, event: Event) -> Outcome:
        if event.type == "erasure_requested":
            # Delete the profile; keep only a suppression marker (withdrawn, no
            # features, no segments) so that events still in flight from before
            # the erasure cannot re-create a profile. A later consent_granted
            # starts a fresh profile.
            # The epoch keeps the change ids of a later fresh profile apart from
            # the erased profile's (sequences restart at 1).
            self._forget(event.customer_id)
            marker = CustomerState.new(event.customer_id, event.ts)
            marker.withdrawn = True
            marker.erased = True
            marker.epoch = 1 if state is None else state.epoch + 1
            return Outcome(marker, erased=True)
        if event.type == "consent_granted" and (
            state is None or (state.withdrawn and state.events == 0)
        ):
            fresh = CustomerState.new(event.customer_id, event.ts)
            fresh.epoch = 0 if state is None else state.epoch
            return Outcome(fresh)
        if state is None:
            state = CustomerState.new(event.customer_id, event.ts)
        state.withdrawn = event.type == "consent_withdrawn"
        if state.withdrawn:
            self._forget(event.customer_id)
        else:
            self.restore(state)  # back in the population models
        return Outcome(state)

    def _evaluate(self, state: CustomerState, now: float, trigger: str) -> Outcome:
        out = Outcome(state)
        features: dict[str, Any] | None = None
        for seg in self.segmenters:
            verdict = seg.assign(state, now)
            if verdict is None:
                continue
            hold = getattr(seg, "hold", None)  # (until the engine contract lands everywhere)
            if hold is not None:
                # the segmenter's own damping replaces the global dwell
                current = state.segments.get(seg.name)
                if current is not None and current[0] != verdict.segment and hold(
                    state, current[0], verdict, now, trigger
                ):
                    state.pending.pop(seg.name, None)
                    continue
                confirmed = self.undamped.confirm(state, seg.name, verdict, now)
            else:
                confirmed = self.detector.confirm(state, seg.name, verdict, now)
            if confirmed is None:
                continue
            if features is None:
                features = summary(state, now, self.settings.half_life_days,
                                   self.settings.base_currency)
            previous, sequence = confirmed
            out.changes.append(
                change_record(
                    state, seg.name, previous, sequence, verdict,
                    seg.describe(verdict.segment), now, trigger, features,
                    None if previous is None else seg.describe(previous),
                )
            )
        if out.changes:
            out.segments = self.segments_record(state, now)
        return out

    def segments_record(self, state: CustomerState, now: float) -> dict[str, Any]:
        """The ``customer-segments`` value for ``state``.

        A customer who withdrew consent is ``suppressed``: no segments are listed.
        """
        return {
            "customer_id": state.customer_id,
            "event_time": format_ts(now),
            "segments": {} if state.withdrawn else self.segment_views(state),
            "suppressed": state.withdrawn,
        }

    def segment_views(self, state: CustomerState) -> dict[str, Any]:
        """Segmenter -> {segment, name, since, sequence, model_version} of ``state``."""
        names = {seg.name: seg for seg in self.segmenters}
        segs: dict[str, Any] = {}
        for name, (segment, since, sequence, version) in state.segments.items():
            describe = names[name].describe if name in names else str
            segs[name] = {
                "segment": segment,
                "name": describe(segment),
                "since": format_ts(since),
                "sequence": sequence,
                "model_version": version,
            }
        return segs
