"""Apply: one admitted message of a batch to its customer's state, for one worker process.

:class:`Applier` holds what :class:`streamseg.ingest.Ingest` does per message once
the rebalance gate admitted it: an input is validated (``Validator.check``; a
key-less one is dead-lettered), skipped at or before its state's recorded position
(a re-delivery, :func:`streamseg.partitions.replayed`) and otherwise applied with
``Engine.ingest``; a tick evaluates its partition's due customers (``Engine.tick``,
``Engine.rescore``); a consent copy (:mod:`streamseg.emit`) is applied where the
customer may have state. Each customer's state is loaded once per batch
(:meth:`Applier.load`, a :class:`~streamseg.batch.Entry`) and every outcome is queued
on the batch (``Emitter.outcome``); :func:`streamseg.batch.flush` writes them after.
No feature arithmetic here.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from streamseg import codec
from streamseg.app import Streamseg
from streamseg.batch import Batch, Entry
from streamseg.emit import COPY_FORMAT, Copy, Emitter, fanout_format, is_fanout, read_copy
from streamseg.engine.clock import bounded
from streamseg.engine.consentlog import kept
from streamseg.engine.dedup import seen
from streamseg.engine.events import RESTRICTIVE, Event, Kind
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine, Outcome
from streamseg.engine.validate import Invalid, Valid, Validator
from streamseg.lookupstate import profiled, stored
from streamseg.metrics import Metrics
from streamseg.partitions import (
    PartitionState,
    handled,
    home,
    position_key,
    replayed,
    take_rescore,
)
from streamseg.punctuator import COPY, PARTITION, POSITIONS, Punctuator

log = logging.getLogger(__name__)


def holds_profile(entry: Entry) -> bool:
    """Whether a batch entry is a customer's profile: a state with behaviour that is not a
    consent copy's marker (:func:`streamseg.lookupstate.profiled`, on the decoded state)."""
    state = entry.state
    return (state is not None and not entry.copy
            and bool(state.events or state.segments or state.attributes))


class Applier:
    """One admitted message of the current batch applied: an input, a tick, a consent copy."""

    def __init__(self, ss: Streamseg, engine: Engine, metrics: Metrics, validator: Validator,
                 punctuator: Punctuator, out: Emitter) -> None:
        self.ss = ss
        self.engine = engine
        self.metrics = metrics
        self.validator = validator
        self.punctuator = punctuator
        self.clock = punctuator.clock  # the worker's event clock: max over its partitions
        self.out = out
        self.batch = Batch()  # the batch being handled (set by Ingest per batch)
        self._foreign: dict[str, Any] = {}
        self._split_logged = -math.inf  # monotonic time of the last split warning

    def split(self, stream: str, p: int, key: bytes, routed: int) -> None:
        """Count a customer profiled on partition ``p`` for the first time (called once
        per customer and partition) whom this worker holds profiled on another one:
        two producer partitioners send its events, so it has two independent states
        (docs/RELIABILITY.md, "Store caveat"). Only this worker's partitions are searched: this
        batch's states first (not written yet), then the store's, as a lookup reads them
        (:func:`streamseg.lookupstate.stored`: a consent copy's marker is no customer)."""
        others = [q for q in sorted(self.punctuator.assigned_parts or ()) if q != p]
        pending = [q for q in others if (q, key) in self.batch.entries]
        found = next((q for q in pending if holds_profile(self.batch.entries[q, key])), None)
        if found is None:  # (``routed``: murmur2's partition of the message key)
            data = stored(self.ss.state, key, [q for q in others if q not in pending], routed)
            if data is not None and profiled(data):
                found = data.get(PARTITION, routed)
        if found is None:
            return
        self.metrics.split_customers.labels(stream=stream).inc()
        now = time.monotonic()
        if now - self._split_logged > 60.0:
            self._split_logged = now
            log.warning(
                "a customer's input on partition %d found its state on partition %d: two "
                "producer partitioners send its events, so it has two states (keep one "
                "partitioner per customer; docs/RELIABILITY.md, 'Store caveat'); "
                "streamseg_split_customers_total counts them", p, found)

    def load(self, event: Any, key: bytes) -> Entry:
        """The customer's state on the event's partition (cached for the batch)."""
        p = event.message.partition
        entry = self.batch.entries.get((p, key))
        if entry is None:
            raw = self.ss.state.get(key)
            data = None if raw is None else codec.loads(raw)
            state = None if data is None else CustomerState.from_dict(data)
            positions = dict(data.get(POSITIONS) or {}) if data is not None else {}
            entry = self.batch.entries[p, key] = Entry(event, raw, state, positions,
                                                       copy=bool(data and data.get(COPY)))
        entry.event = event
        return entry

    def on_input(self, event: Any, stream: str, part: PartitionState) -> None:
        msg = event.message
        kind: Kind = stream  # type: ignore[assignment]
        result = self.validator.check(kind, msg.key, msg.value)
        if isinstance(result, Invalid):  # what is wrong with the body comes first
            self.out.dead_letter(self.batch, result, msg, stream)
            return
        if msg.key is None:
            why = ("a consent event is not applied until it is re-fed with a key"
                   if stream == "consent" else
                   "a key-less message would split the customer across partitions")
            invalid = Invalid("key_mismatch", f"message has no key: key input by customer_id "
                              f"({why})", "customer_id")
            self.out.dead_letter(self.batch, invalid, msg, stream)
            return
        routed = home(msg.key, self.ss.settings.partitions)
        if msg.partition != routed:
            self.foreign(stream).inc()
        ev = result.event
        # a withdrawal or erasure dated where no event is accepted runs at the event clock
        # and tells nothing of its input's progress (Engine.admit)
        set_to_clock = False
        if ev.type in RESTRICTIVE:
            admitted = self.engine.admit(ev, self.clock, self.engine.wall())
            if isinstance(admitted, Event) and admitted is not ev:
                ev, set_to_clock = admitted, True
        key = ev.customer_id.encode()
        entry = self.load(event, key)
        # no profile here yet (no state, a consent copy's marker, a consent-only state)?
        # if this input makes one, is the customer profiled on another partition?
        was_profiled = holds_profile(entry)
        if replayed(entry.positions, msg.topic, msg.partition, msg.offset):
            # at or before the last input applied to this state: never applied twice or
            # out of order (a re-delivery after a crash, or events Faust sent ahead)
            dup = entry.state is not None and seen(entry.state, ev.kind, ev.event_id)
            if entry.state is not None:
                # the local store may hold a write whose changelog record a crash lost:
                # write it again before this offset commits, or a restore from the
                # changelog (a moved partition, a lost disk) misses the event for good
                entry.dirty = entry.rewrite = True
            self.batch.counts.append((stream, "duplicate" if dup else "out_of_order"))
            # applied before (a re-read after a rebalance): progress up to here is real
            if not set_to_clock:
                self.punctuator.sources.observe((msg.topic, msg.partition), ev.ts,
                                                time.monotonic())
            return
        # a late event is evaluated where the ticks have got to (Engine.apply)
        outcome = (self.engine.apply(entry.state, ev,
                                     self.engine.look_for(ev, self.clock, self.batch.look))
                   if set_to_clock
                   else self.engine.ingest(entry.state, ev, self.clock, self.batch.look))
        if isinstance(outcome, Invalid):
            self.out.dead_letter(self.batch, outcome, msg, stream)
            return
        if not set_to_clock:
            self.observe_clock(part, msg.partition, event, ev.ts)
            self.punctuator.sources.observe((msg.topic, msg.partition), ev.ts, time.monotonic())
            self.batch.event_time = ev.ts
        if not outcome.skipped:
            entry.positions[position_key(msg.topic, msg.partition)] = msg.offset
            entry.copy = False  # the customer's own input is here now
        elif entry.state is not None:
            # a counted skip (no consent, a duplicate) is handled too: a re-read after a
            # crash or rebalance must not apply it (a purchase made while consent was
            # withdrawn, applied after a re-grant, profiled the withdrawal period)
            entry.positions[position_key(msg.topic, msg.partition)] = msg.offset
            entry.dirty = True
            if (outcome.skipped == "no_consent" and stream != "consent"
                    and kept(entry.state, ev.ts)):
                # an input made before a withdrawal and read after it, folded in unpublished
                # (a fold leaves what kept reads as it was): the customer's own input is here
                entry.copy = False
        self.out.outcome(self.batch, entry, key, outcome)
        self.batch.counts.append(
            (stream, "erased" if outcome.erased else (outcome.skipped or "processed")))
        if not was_profiled and stream != "consent" and holds_profile(entry):
            # the customer's first profile on this partition: counted once (consent itself
            # reaches every partition and profiles no one: no sign of a split)
            self.split(stream, msg.partition, key, routed)
        if stream == "consent":
            # the copies publish the notice if this partition had none to publish (the
            # customer's profile is on another partition: another producer partitioner)
            # (the event clock as the original saw it: a stamp ahead of it counts from it)
            self.out.fan_out(self.batch, msg, ev, notified=bool(outcome.notices),
                             applied=self.clock.max_seen)

    def observe_clock(self, part: PartitionState, p: int, event: Any, ts: float) -> None:
        ts = bounded(ts, part.clock, self.engine.wall())  # as the engine's clock (Engine.ingest)
        if part.clock is None or ts > part.clock:
            part.clock = ts
            self.batch.clocks[p] = event

    def on_tick(self, event: Any, part: PartitionState) -> None:
        """A tick: a partition tick, a consent copy, or (legacy) one customer's tick."""
        msg = event.message
        if is_fanout(msg.headers):
            self.on_consent_copy(event)
            return
        now = self.validator.check_tick(msg.value)
        if isinstance(now, Invalid):
            self.out.dead_letter(self.batch, now, msg, "tick")
            return
        # never past this worker's own clock, capped at its slowest active input: the tick
        # may come from the partition's previous owner (re-read after a rebalance), whose
        # clock covered input this worker has not read yet (its state lacks it, a crash
        # lost its writes): evaluating there demotes customers before their purchases
        own = self.punctuator.now()
        customers: list[str] = []
        rescore: set[str] = set()
        if own is not None:  # else an input's progress is unknown: a later tick evaluates
            now = min(now, own)
            if msg.key is not None:
                customers = [msg.key.decode(errors="replace")]
            else:
                part.ready.update(part.schedule.pop_due(now))
                part.quick_sent = False
                if msg.partition not in self.batch.shared:  # a share if many, one a batch:
                    self.batch.shared.add(msg.partition)  # the rest at the next tick
                    rescore = take_rescore(part)
                customers = sorted(part.ready | rescore)
                part.ready = set()
        outcome: Outcome | None = None
        for cid in customers:
            entry = self.load(event, cid.encode())
            if entry.state is None:
                continue
            if cid in rescore:
                outcome = self.engine.rescore(entry.state, now)
            else:
                outcome = self.engine.tick(entry.state, now)
            self.out.outcome(self.batch, entry, cid.encode(), outcome)
        if msg.key is None:  # one partition tick, one count (customers: the changes they make)
            self.batch.counts.append(("tick", "processed"))
        else:
            self.batch.counts.append(
                ("tick", "no_state" if outcome is None else outcome.skipped or "processed"))

    def on_consent_copy(self, event: Any) -> None:
        """A consent event's copy from the partition it arrived on (``Emitter.fan_out``).

        Withdrawal and erasure hold on every partition; a grant only lifts an existing
        marker. The copy publishes the suppression notice and the ``customer-segments``
        record only if the original published none (``notified``): the customer's
        profile is here, and the consent came through another producer partitioner. The
        original's input position is recorded in the state, like an input's: a copy of
        that consent read again (a crash before the ticks topic committed, or the
        original re-read and copied again) is not applied again.
        """
        msg = event.message
        copy = self.read_copy(msg)
        if copy is None:
            return
        ev = copy.event
        key = ev.customer_id.encode()
        entry = self.load(event, key)
        if copy.origin is not None and handled(entry.positions, copy.origin, copy.offset):
            if entry.state is not None:  # as a re-delivered input (on_input): write it again
                entry.dirty = entry.rewrite = True
            self.metrics.consent_fanout.labels(outcome="duplicate").inc()
            return
        if entry.state is None and ev.type == "consent_granted":
            self.metrics.consent_fanout.labels(outcome="no_state").inc()
            return
        # an erasure that finds the customer's profile here ends it in customer-segments
        # too: the original's tombstone (from its own partition) can precede this
        # profile's last record, which compaction would then keep
        profiled_here = holds_profile(entry)
        entry.copy = entry.copy or entry.state is None
        admitted = self.engine.admit(ev, self.clock, self.engine.wall())
        if not isinstance(admitted, Invalid):  # (the original was admitted on its partition)
            ev = admitted  # a withdrawal or erasure from the future: at this worker's clock
        # the event clock its original was read at (a copy of the previous release has
        # none: this worker's, so that a reset-clock date never counts as such)
        applied = copy.applied if copy.applied is not None else self.clock.max_seen
        outcome = self.engine.apply(entry.state, ev, applied)
        if copy.notified:
            # the original published what is due (notices, segments); consent moves nothing
            outcome.changes, outcome.notices, outcome.segments = [], [], None
        if copy.origin is not None:
            entry.positions[copy.origin] = copy.offset
        self.out.outcome(self.batch, entry, key, outcome, tombstone=profiled_here)
        if outcome.skipped and entry.state is not None:
            entry.dirty = True  # (the position it recorded)
        self.metrics.consent_fanout.labels(
            outcome="stale" if outcome.skipped == "stale_consent" else "applied").inc()

    def read_copy(self, msg: Any) -> Copy | None:
        """The consent copy in ``msg`` (a ticks-topic message with the fan-out header)."""
        if fanout_format(msg.headers) == COPY_FORMAT:
            copy = read_copy(msg.value)
            if copy is None:
                log.warning("unreadable consent copy at %s[%d]@%d, not applied",
                            msg.topic, msg.partition, msg.offset)
            return copy
        # a copy from before COPY_FORMAT: the original's bytes, no position; its
        # original published the notice (those copies never did)
        result = self.validator.check("consent", msg.key, msg.value)
        if not isinstance(result, Valid):
            return None  # the original was dead-lettered on its own partition
        return Copy(result.event, None, 0, True)

    def foreign(self, stream: str) -> Any:
        """The foreign-partition counter child of ``stream`` (looked up once)."""
        child = self._foreign.get(stream)
        if child is None:
            child = self._foreign[stream] = self.metrics.foreign_partition.labels(stream=stream)
        return child

