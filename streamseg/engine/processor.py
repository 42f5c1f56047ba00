"""The engine's entry points: fold one event (or one clock tick) into a customer.

The Faust agents and ``streamseg replay`` both call :meth:`Engine.apply` and
:meth:`Engine.tick`; nothing here knows about Kafka.

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

from collections.abc import Callable
from functools import partial
from typing import Any

from streamseg.config import DAY, Settings
from streamseg.engine import audiencefile, segmenters
from streamseg.engine.changes import ChangeDetector, change_record
from streamseg.engine.clock import EventClock
from streamseg.engine.consent import notify
from streamseg.engine.events import Event, format_ts
from streamseg.engine.features import (
    NEVER,
    CustomerState,
    event_hash,
    remember_hash,
    summary,
    update,
)
from streamseg.engine.kpis import Kpis
from streamseg.engine.profile import merge
from streamseg.engine.scheduler import floor
from streamseg.engine.segmenters.base import Predictor, Segmenter, Trigger
from streamseg.engine.validate import Invalid


class Outcome:
    """What one input did.

    ``state`` is the customer's new state (None when never created; after an
    erasure, a suppression marker with no profile data);
    ``changes`` are segment-change records to publish, in order; ``segments`` is
    the customer's new ``customer-segments`` value when anything changed (built
    on first access: read it before the state changes again);
    ``erased`` asks the edge to delete state and publish a tombstone;
    ``skipped`` names a deliberate skip (``duplicate``, ``no_consent``);
    ``at`` is the event time a tick evaluated ``state`` at (None for events:
    their evaluation times are recorded in the state), for :meth:`Engine.due`;
    ``due`` is the customer's next due time (:meth:`Engine.due` after this
    outcome) when ``due_known``, so a caller need not ask again;
    ``notices`` are other ``segment-changes`` records to publish after
    ``changes`` (a suppression notice when consent is withdrawn or granted again).
    """

    __slots__ = (
        "_render",
        "_segments",
        "at",
        "changes",
        "due",
        "due_known",
        "erased",
        "notices",
        "skipped",
        "state",
    )

    def __init__(
        self,
        state: CustomerState | None,
        changes: list[dict[str, Any]] | None = None,
        segments: dict[str, Any] | None = None,
        erased: bool = False,
        skipped: str | None = None,
        at: float | None = None,
    ) -> None:
        self.state = state
        self.changes: list[dict[str, Any]] = [] if changes is None else changes
        self.erased = erased
        self.skipped = skipped
        self.at = at
        self.due: float | None = None
        self.due_known = False
        self.notices: list[dict[str, Any]] = []
        self._segments = segments
        self._render: Callable[[], dict[str, Any]] | None = None

    @property
    def segments(self) -> dict[str, Any] | None:
        if self._segments is None and self._render is not None:
            self._segments = self._render()
            self._render = None
        return self._segments

    @segments.setter
    def segments(self, value: dict[str, Any] | None) -> None:
        self._segments, self._render = value, None

    def render(self, engine: Engine, state: CustomerState, now: float) -> None:
        """Have :attr:`segments` built from ``state`` at ``now`` when first read."""
        self._segments = None
        self._render = partial(engine.segments_record, state, now)

    def plan(self, due: float | None) -> None:
        """Record the next due time."""
        self.due, self.due_known = due, True


class Engine:
    """Features, segmenters and change detection for one worker (or one replay)."""

    def __init__(self, settings: Settings, segs: list[Segmenter] | None = None) -> None:
        self.settings = settings
        self.segmenters: list[Segmenter] = segs if segs is not None else segmenters.default(
            settings
        )
        self.hysteresis = settings.hysteresis
        self.dwell_s = settings.min_dwell_s if settings.hysteresis else 0.0
        self.detector = ChangeDetector(min_dwell_s=self.dwell_s)
        # customer -> indices of the segmenters whose population moved for it (see moved)
        self._moved: dict[str, set[int]] = {}
        # the predicted-value segmenter, if one is configured (structural: has ``predict``)
        self.predictor: Predictor | None = next(
            (seg for seg in self.segmenters if isinstance(seg, Predictor)), None)
        # trailing-window buckets of rule audiences (None: no audiences file, nothing kept)
        self.history = audiencefile.history(settings, {s.name: s for s in self.segmenters})
        self.kpis = Kpis()
        self._kpi_names = tuple(seg.name for seg in self.segmenters)
        self._repeat_s = settings.kpi_repeat_days * DAY

    def segmenter(self, name: str) -> Segmenter | None:
        """The segmenter called ``name`` (e.g. ``cluster``, for model snapshots), if any."""
        return next((seg for seg in self.segmenters if seg.name == name), None)

    def prediction(self, state: CustomerState, now: float) -> tuple[float, float] | None:
        """(p_alive, expected purchases in ``value_horizon_days``) of ``state`` at ``now``
        from the predicted-value segmenter; None without one, before its first fit, for a
        customer with no purchase, or a suppressed one."""
        if self.predictor is None or state.withdrawn:
            return None
        return self.predictor.predict(state, now)

    def features(self, state: CustomerState, now: float) -> dict[str, Any]:
        """The feature summary of ``state`` at ``now`` (change records, lookups), with
        ``p_alive`` and ``expected_purchases`` from the value model when it can predict."""
        out = summary(state, now, self.settings.half_life_days, self.settings.base_currency)
        pred = self.prediction(state, now)
        if pred is not None:
            out["p_alive"], out["expected_purchases"] = round(pred[0], 4), round(pred[1], 4)
        return out

    def predicted(self, state: CustomerState, now: float) -> float | None:
        """Predicted value of ``state`` at ``now``: expected purchases in the next
        ``value_horizon_days`` times the customer's average order value (base currency).

        None when no value segmenter is configured or it cannot predict yet
        (:meth:`prediction`). For the KPIs (mean predicted value per segment).
        """
        pred = self.prediction(state, now)
        if pred is None or state.purchases <= 0:
            return None
        return pred[1] * state.monetary / state.purchases

    def due(self, state: CustomerState, at: float | None = None) -> float | None:
        """Next event time at which ``state`` may change segment without a new event.

        The earliest of the segmenters' own :meth:`~Segmenter.due` (and of the
        optional global dwell), strictly after ``floor(state)`` and after ``at``
        (an :attr:`Outcome.at`): a tick that changed nothing is not due again at once.
        """
        if state.withdrawn:
            return None
        after = floor(state) if at is None else max(at, floor(state))
        return _earliest(self._dues(state, after))

    def _dues(self, state: CustomerState, after: float) -> list[float | None]:
        """Per segmenter, its next due time after ``after`` (with the global dwell)."""
        if self.dwell_s <= 0.0 or not state.pending:
            return [seg.due(state, after) for seg in self.segmenters]
        return [self._dues_one(i, state, after) for i in range(len(self.segmenters))]

    def apply(self, state: CustomerState | None, event: Event) -> Outcome:
        """Fold ``event`` into ``state`` (which may be None for an unknown customer).

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
            # (withdrawn, notices so far) before _consent, which may change state in place
            prior = (False, 0) if state is None else (state.withdrawn, state.suppressions)
            return notify(self, prior, self._consent(state, event), event)
        if state is not None and state.withdrawn:
            return Outcome(state, skipped="no_consent")
        key = event_hash(event.event_id)
        caught = None
        if state is None:
            state = CustomerState.new(event.customer_id, event.ts)
        elif key in state.recent_ids:
            return Outcome(state, skipped="duplicate")
        elif state.due_hint is None or state.due_hint < event.ts:
            # time-driven moves due before this event happen first, at their own event time
            caught = self._catch_up(state, event.ts, inclusive=False)
        remember_hash(state, key, self.settings.dedup_window)
        if event.attributes is not None:
            # a profile record: attributes only, no behaviour (no feature, no recency, no
            # KPI, nothing for population models to learn); evaluated at its own time
            # (or at the latest look, if later), so rules on attributes react now
            merge(state, event.attributes, event.ts)
            now = max(floor(state), event.ts)
        else:
            sessions, last = state.sessions, state.last_purchase
            update(state, event, self.settings)
            if self.history is not None:
                self.history.record(state, event)
            if event.kind == "purchase" or (event.kind == "click" and state.sessions != sessions):
                self._count(state, event, state.sessions != sessions, last)
            now = floor(state)  # never back in time: a late event is evaluated at the latest look
            for seg in self.segmenters:
                seg.learn(state, now)
        out = self._evaluate(state, now, "event", self.segmenters)
        if caught is not None and caught.changes:
            out.changes[:0] = caught.changes
            out.render(self, state, now)
        self._plan(out, state, _earliest(self._dues(state, now)))
        return out

    def _count(
        self, state: CustomerState, event: Event, session: bool, last: float | None
    ) -> None:
        """Credit the event's KPIs to the published segments (before its own changes)."""
        if event.kind != "purchase":
            self.kpis.add(state.segments, self._kpi_names, 0.0, False, False, True, False)
            return
        repeat = last is not None and 0.0 <= event.ts - last <= self._repeat_s
        converted = state.converted_session != state.sessions
        if converted:
            state.converted_session = state.sessions
        self.kpis.add(state.segments, self._kpi_names, event.amount, True, repeat, session,
                      converted)

    @staticmethod
    def _plan(out: Outcome, state: CustomerState, due: float | None) -> None:
        out.plan(due)
        state.due_hint = NEVER if due is None else due

    def tick(self, state: CustomerState, now: float, after: float | None = None) -> Outcome:
        """Re-evaluate ``state`` at event time ``now`` with no new event (time-driven moves).

        Only the segmenters due by ``now`` are evaluated, each at its own due
        time, in order. ``after`` (optional: the :attr:`Outcome.at` of the
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
        out = self._catch_up(state, now, inclusive=True, after=after)
        out.at = now
        return out

    def rescore(self, state: CustomerState, now: float) -> Outcome:
        """Re-evaluate at ``now`` (trigger ``population``) the segmenters that moved for ``state``.

        For the customers :meth:`moved` names: a population model moved, so their
        verdict may have changed although they did nothing. Only the segmenters
        whose ``moved()`` named the customer are evaluated (all of them for a
        customer :meth:`moved` did not name), and the others too once one of them
        published a change (a rule may read published segments). Time-driven moves
        due before ``now`` come first (trigger ``clock``). Evaluated at
        ``max(now, floor(state))`` so a customer's changes stay in event-time order.
        """
        which = self._moved.pop(state.customer_id, None)
        if state.withdrawn:
            return Outcome(state, skipped="no_consent")
        at = max(now, floor(state))
        out = self._catch_up(state, at, inclusive=False)
        segs = self.segmenters if which is None else [
            seg for i, seg in enumerate(self.segmenters) if i in which]
        step = self._evaluate(state, at, "population", segs)
        out.changes += step.changes
        if step.changes and which is not None:
            # a published segment moved: the others may read it (audiences), evaluate them too
            rest = [seg for i, seg in enumerate(self.segmenters) if i not in which]
            out.changes += self._evaluate(state, at, "population", rest).changes
        if out.changes:
            out.render(self, state, at)
        out.at = at
        self._plan(out, state, self.due(state, at))
        return out

    def moved(self) -> list[str]:
        """Customers to :meth:`rescore`: every segmenter's ``moved()``, drained, de-duplicated.

        The engine remembers which segmenters named each customer until its
        :meth:`rescore` (so that evaluates those only).
        """
        out: dict[str, None] = {}
        pending = self._moved
        for i, seg in enumerate(self.segmenters):
            for cid in seg.moved():
                out[cid] = None
                which = pending.get(cid)
                if which is None:
                    pending[cid] = {i}
                else:
                    which.add(i)
        return list(out)

    def restore(self, state: CustomerState) -> None:
        """Rebuild population models from a state restored from the table (restart, rebalance)."""
        if state.withdrawn:
            return
        for seg in self.segmenters:
            seg.restore(state)

    def verdict(self, state: CustomerState, name: str, now: float) -> tuple[str | None, bool]:
        """(raw verdict of segmenter ``name`` at ``now``, whether the published label
        differs from it only because hysteresis keeps it), for the quality report.

        >>> from streamseg.config import Settings
        >>> from streamseg.engine.events import Event
        >>> eng = Engine(Settings())
        >>> s = None
        >>> for i, d in enumerate((0, 5, 10)):
        ...     s = eng.apply(s, Event("purchase", "purchase", f"e{i}", "c", d * 86400.0)).state
        >>> eng.tick(s, 25 * 86400.0).changes  # interval 25 / 3 days: medium, held by the band
        []
        >>> s.segments["frequency"][0], eng.verdict(s, "frequency", 25 * 86400.0)
        ('high', ('medium', True))
        """
        seg = self.segmenter(name)
        raw = None if seg is None else seg.assign(state, now)
        if seg is None or raw is None:
            return None, False
        current = state.segments.get(name)
        if current is None or current[0] == raw.segment or not self.hysteresis:
            return raw.segment, False
        if seg.hold(state, current[0], raw, now, "clock") or seg.hold(
            state, current[0], raw, now, "population"
        ):
            return raw.segment, True
        pending = state.pending.get(name)
        held = self.dwell_s > 0.0 and pending is not None and pending[0] == raw.segment
        return raw.segment, held

    def _catch_up(
        self, state: CustomerState, until: float, inclusive: bool, after: float | None = None
    ) -> Outcome:
        """Evaluate the due segmenters at each due time up to ``until``, in order (clock).

        Changes carry their due time, not the time the clock noticed, so the
        same events give the same changes however ticks are spaced. Segmenters
        due at the same instant are evaluated together; the others are not
        evaluated at all. The outcome's :attr:`~Outcome.due` is the next due time.
        """
        out = Outcome(state)
        if state.withdrawn:
            return out
        start = floor(state)
        dues = self._dues(state, start if after is None or after < start else after)
        segs = self.segmenters
        while True:
            at = _earliest(dues)
            if at is None or at > until or (at == until and not inclusive):
                if out.changes:  # the state is saved: keep its hint exact
                    self._plan(out, state, at)
                else:  # the hint may stay early (a lower bound): no write for nothing
                    out.plan(at)
                return out
            ready = [seg for seg, d in zip(segs, dues, strict=True) if d == at]
            step = self._evaluate(state, at, "clock", ready)
            if step.changes:
                out.changes += step.changes
                out.render(self, state, at)
            for i, d in enumerate(dues):
                if d == at:
                    dues[i] = self._dues_one(i, state, at)

    def _dues_one(self, i: int, state: CustomerState, after: float) -> float | None:
        seg = self.segmenters[i]
        t = seg.due(state, after)
        if self.dwell_s > 0.0 and state.pending:
            pending = state.pending.get(seg.name)
            if pending is not None:
                d = float(pending[1]) + self.dwell_s
                if d > after and (t is None or d < t):
                    t = d
        return t

    def ingest(
        self, state: CustomerState | None, event: Event, clock: EventClock
    ) -> Outcome | Invalid:
        """:meth:`screen` against ``clock``, then advance the clock and :meth:`apply`.

        The one path from a valid event to an outcome, for the worker and replay alike.
        """
        rejected = self.screen(event, clock.max_seen)
        if rejected is not None:
            return rejected
        clock.observe(event.ts)
        return self.apply(state, event)

    def screen(self, event: Event, watermark: float | None) -> Invalid | None:
        """Reject an event too far ahead of the event clock (``timestamp_out_of_range``).

        The only reference is ``watermark``, the highest event time the worker
        (partition) has seen: never one customer's ``last_seen``, never the wall
        clock, so a replay decides the same. With no clock yet only the static
        window of the validator (``event_time_min`` .. ``event_time_max``) applies.

        >>> from streamseg.config import Settings
        >>> eng = Engine(Settings(max_future_skew_s=60.0))
        >>> ev = Event("click", "page_view", "e1", "c1", 1000.0)
        >>> eng.screen(ev, None) is None, eng.screen(ev, 940.0) is None
        (True, True)
        >>> eng.screen(ev, 939.0).reason
        'timestamp_out_of_range'
        """
        skew = self.settings.max_future_skew_s
        if watermark is None or event.ts <= watermark + skew:
            return None
        return Invalid(
            "timestamp_out_of_range",
            f"event time {format_ts(event.ts)} is more than {skew:g} s "
            f"ahead of the event clock ({format_ts(watermark)})",
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
            for seg in self.segmenters:
                seg.forget(event.customer_id)
            self._moved.pop(event.customer_id, None)
            marker = CustomerState.new(event.customer_id, event.ts)
            marker.withdrawn = True
            marker.erased = True
            marker.epoch = 1 if state is None else state.epoch + 1
            return Outcome(marker, erased=True)
        if event.type == "consent_granted" and (
            state is None or (state.withdrawn and state.events == 0 and not state.attributes)
        ):
            fresh = CustomerState.new(event.customer_id, event.ts)
            fresh.epoch = 0 if state is None else state.epoch
            return Outcome(fresh)
        if state is None:
            state = CustomerState.new(event.customer_id, event.ts)
        state.withdrawn = event.type == "consent_withdrawn"
        if state.withdrawn:
            for seg in self.segmenters:
                seg.forget(event.customer_id)
            self._moved.pop(event.customer_id, None)
        else:
            self.restore(state)  # consent back: into the population models again
        return Outcome(state)

    def _evaluate(
        self, state: CustomerState, now: float, trigger: Trigger, segs: list[Segmenter]
    ) -> Outcome:
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
                if self.hysteresis and seg.hold(state, current[0], verdict, now, trigger):
                    if state.pending:
                        state.pending.pop(seg.name, None)
                    continue
            confirmed = self.detector.confirm(
                state, seg.name, verdict, now, damp=trigger != "event"
            )
            if confirmed is None:
                continue
            if features is None:
                features = self.features(state, now)
            previous, sequence = confirmed
            out.changes.append(
                change_record(
                    state, seg.name, previous, sequence, verdict,
                    seg.describe(verdict.segment), now, trigger, features,
                    None if previous is None else seg.describe(previous),
                )
            )
        if out.changes:
            out.render(self, state, now)
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


def _earliest(dues: list[float | None]) -> float | None:
    best: float | None = None
    for d in dues:
        if d is not None and (best is None or d < best):
            best = d
    return best
