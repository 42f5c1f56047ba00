"""Ingest: one batch of input events through the engine, for one worker process.

:class:`Ingest` is the glue between Faust events and the engine (``streamseg.agents``
attaches it to the app). Per batch it lets the rebalance gate hold or re-read events
delivered ahead of the committed offset (:mod:`streamseg.gate`), loads each customer's
state once (:class:`~streamseg.batch.Entry`), skips input at or before the state's
recorded position (a re-delivery), applies the rest with ``Engine.ingest``, evaluates
partition ticks and consent copies, queues every output (:mod:`streamseg.emit`) and
flushes the batch (:func:`streamseg.batch.flush`: outputs acknowledged, then states,
then the changelog). No feature arithmetic here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

import faust

from streamseg import adapters, codec
from streamseg.app import Streamseg, input_topics
from streamseg.batch import Batch, Entry, flush
from streamseg.emit import COPY_FORMAT, Copy, Emitter, fanout_format, is_fanout, read_copy
from streamseg.engine.clock import bounded
from streamseg.engine.events import Kind
from streamseg.engine.features import CustomerState, seen
from streamseg.engine.processor import Engine, Outcome
from streamseg.engine.validate import Invalid, Valid, Validator
from streamseg.gate import Gate
from streamseg.metrics import Metrics
from streamseg.modelsync import ModelSync
from streamseg.partitions import PartitionState, handled, home, position_key, replayed
from streamseg.punctuator import COPY, POSITIONS, Punctuator, tables_ready

log = logging.getLogger(__name__)


class Ingest:
    """Glue between Faust events and the engine, for one worker process."""

    def __init__(self, ss: Streamseg, engine: Engine, metrics: Metrics) -> None:
        self.ss = ss
        self.engine = engine
        self.metrics = metrics
        self.validator = Validator(ss.settings)
        self.kinds = input_topics(ss.settings)
        self.punctuator = Punctuator(ss, engine)
        self.clock = self.punctuator.clock  # the worker's event clock: max over its partitions
        # a re-read queues behind Faust's stream buffer and the batches being collected
        self.gate = Gate(ss.settings.gate_hold_s,
                         ahead=ss.settings.stream_buffer_maxsize + 2 * ss.settings.batch_size)
        self.models = ModelSync(engine, metrics, ss.settings.topic_clickstream)
        self.out = Emitter(ss, engine, metrics, self.punctuator)
        self.batch = Batch()
        self.lock = asyncio.Lock()  # a batch, or the timer's look at the schedules
        self._consumed: dict[tuple[str, str], Any] = {}
        self._latency: dict[str, Any] = {}
        self._foreign: dict[str, Any] = {}
        self._shown_clock: float | None = None  # event clock last set on the gauge
        self._lag_from_events = False  # an input event has set the event-time lag gauge
        self._raw_ids_logged = False  # the ERROR about raw-id states was logged

    # ------------------------------------------------------------ partitions

    @property
    def parts(self) -> dict[int, PartitionState]:
        return self.punctuator.parts

    def on_assigned(self, assigned: Any, committed: dict[tuple[str, int], int | None]) -> None:
        """After a rebalance: gate, schedules, clocks and model training follow the assignment."""
        self.punctuator.assign({tp.partition for tp in assigned or () if tp.topic in self.kinds})
        self.punctuator.sources.assign(
            [(tp.topic, tp.partition) for tp in assigned or ()
             if self.kinds.get(tp.topic, "tick") != "tick"], time.monotonic())
        self.gate.assigned(committed)
        self.models.on_assigned(assigned)

    def due_ticks(self) -> list[tuple[int, bytes]]:
        """(partition, tick value) for each owned partition with customers to evaluate."""
        ticks = self.punctuator.due_ticks()
        self.report_raw_ids()
        return ticks

    def report_raw_ids(self) -> None:
        """After the table was re-read: states keyed by raw ids while pseudonymising.

        Sets ``streamseg_table_raw_ids``; the first time any are found, logs one ERROR
        naming ``STREAMSEG_PSEUDONYMISE_KEY`` (these customers' new events go to their
        alias, a fresh profile; an erasure request misses the raw-id profile).
        """
        found, self.punctuator.raw_ids = self.punctuator.raw_ids, None
        if found is None:
            return
        self.metrics.table_raw_ids.set(found)
        if found and not self._raw_ids_logged:
            self._raw_ids_logged = True
            log.error(
                "STREAMSEG_PSEUDONYMISE_KEY is set, but %d state(s) in this worker's table are "
                "keyed by raw customer ids: the key was turned on for app id %s after it "
                "had stored states. Their events now go to a second, pseudonymised "
                "profile and an erasure request misses the raw one. The key must be set from "
                "the first run of an app id: start a new STREAMSEG_APP_ID with fresh topics "
                "and re-import the history (README, 'Dead letters and privacy')",
                found, self.ss.settings.app_id)

    async def timer_ticks(self) -> list[tuple[int, bytes]]:
        """:meth:`due_ticks` for the clock timer: never while a batch is in flight.

        A batch schedules its customers (``emit``) before it writes their states
        (after the outputs' acknowledgements); a schedule rebuilt from the table in
        between lost them, and they were never ticked. The timer waits for the batch.
        A rebuild of the schedules after an assignment runs here in slices
        (:meth:`Punctuator.reschedule_cooperatively`); batches wait for it.
        """
        async with self.lock:
            punctuator = self.punctuator
            if punctuator.rebuild and tables_ready(self.ss):
                await punctuator.reschedule_cooperatively()  # the loop stays responsive
                if punctuator.rebuild:
                    return []  # abandoned for a new assignment: the next run starts again
            ticks = self.due_ticks()
            self.show_clock(None)  # the clocks of the owned partitions may have been restored
            return ticks

    def rescore(self, customer_ids: list[str]) -> None:
        """Re-evaluate these customers now: at the next tick of each partition (RFM hook)."""
        self.punctuator.rescore(customer_ids)

    # ------------------------------------------------------------ the batch

    async def handle(self, event: faust.EventT[Any]) -> None:
        """Process one message (a batch of one)."""
        await self.handle_batch([event])

    async def handle_batch(self, events: list[Any]) -> None:
        """Process a batch: states read once, outputs acknowledged once, then states written."""
        async with self.lock:  # the timer's schedule work waits for it (timer_ticks)
            await self._handle_batch(events)

    async def _handle_batch(self, events: list[Any]) -> None:
        started = time.perf_counter()
        self.batch = batch = Batch()
        batch.look = self.punctuator.now()
        now = time.monotonic()
        # a batch below the size limit left nothing queued (the intake takes what is there)
        self.gate.progress(len(events), now, emptied=len(events) < self.ss.settings.batch_size)
        for event in events:
            msg = event.message
            verdict = self.gate.admit(msg.topic, msg.partition, msg.offset, now)
            if verdict != "apply":
                adapters.withhold_ack(event)
                self.metrics.input_held.inc()
                # its input is there, unread: the source is not idle (it holds the clock)
                self.punctuator.sources.touch((msg.topic, msg.partition), now)
                if verdict == "reseek":
                    await self.reseek(msg.topic, msg.partition)
                continue
            adapters.use_event(event)
            part = self.punctuator.open(msg.partition)
            stream = self.kinds.get(msg.topic, "click")
            if stream == "tick":
                self.on_tick(event, part)
            else:
                self.on_input(event, stream, part)
        await self.flush(batch)
        self.queue_moved()
        elapsed = time.perf_counter() - started
        for (stream, outcome), n in Counter(batch.counts).items():
            self.count(stream, outcome, n)
            if outcome != "dead_letter":
                observe = self.latency(stream).observe
                for _ in range(n):
                    observe(elapsed)
        self.show_clock(batch.event_time)  # gauges: once per batch
        self.metrics.batch_events.observe(len(events))

    def show_clock(self, event_time: float | None) -> None:
        """Set the event-clock gauges: after a batch (``event_time``: its newest input's
        event time, None without one) and when the timer may have restored the clock.

        The clock can move without an input of this worker: restored from the
        ``partition-clock`` table after a (re)start or a rebalance. Until this worker
        processes an input, the lag is the wall clock minus that restored clock (the
        newest event processed on its partitions, by whichever worker), not 0.
        """
        now = time.time()
        if event_time is not None:
            self._lag_from_events = True
            self.metrics.event_lag.set(max(0.0, now - event_time))
        clock = self.clock.max_seen or event_time
        if clock is None or clock == self._shown_clock:
            return
        self._shown_clock = clock
        self.metrics.event_clock.set(clock)
        if not self._lag_from_events:
            self.metrics.event_lag.set(max(0.0, now - clock))

    def queue_moved(self) -> None:
        """Customers whose verdict a moved population model may change: re-evaluate them.

        ``Engine.moved()`` (drained) is part of the engine contract; they are
        evaluated at the next tick of every owned partition (:meth:`rescore`).
        """
        ids = self.engine.moved()
        if ids:
            self.punctuator.rescore(list(ids))

    async def check_gate(self) -> None:
        """Re-read the held partitions whose hold ran out without a later event (timer)."""
        async with self.lock:
            for topic, partition in self.gate.overdue(time.monotonic()):
                await self.reseek(topic, partition)

    async def reseek(self, topic: str, partition: int) -> None:
        """Seek the partition to where the gate wants it re-read from (``Gate.seek``)."""
        offset = self.gate.seek(topic, partition, time.monotonic())
        if offset is None:
            return
        log.warning("re-reading %s[%d] from offset %d", topic, partition, offset)
        self.metrics.input_reseeks.inc()
        tp = faust.types.TP(topic, partition)
        consumer = self.ss.app.consumer
        await consumer.seek(tp, offset)
        # offsets Faust saw skipped are not to be committed past: they are re-read now
        adapters.forget_gap(consumer, tp, offset)

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
            invalid = Invalid("key_mismatch", "message has no key: key input by customer_id "
                              "(a key-less message would split the customer across "
                              "partitions)", "customer_id")
            self.out.dead_letter(self.batch, invalid, msg, stream)
            return
        if msg.partition != home(msg.key, self.ss.settings.partitions):
            self.foreign(stream).inc()
        ev = result.event
        key = ev.customer_id.encode()
        entry = self.load(event, key)
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
            self.punctuator.sources.observe((msg.topic, msg.partition), ev.ts, time.monotonic())
            return
        # a late event is evaluated where the ticks have got to (Engine.apply)
        outcome = self.engine.ingest(entry.state, ev, self.clock, self.batch.look)
        if isinstance(outcome, Invalid):
            self.out.dead_letter(self.batch, outcome, msg, stream)
            return
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
        self.out.outcome(self.batch, entry, key, outcome)
        self.batch.counts.append(
            (stream, "erased" if outcome.erased else (outcome.skipped or "processed")))
        if stream == "consent":
            # the copies publish the notice if this partition had none to publish (the
            # customer's profile is on another partition: another producer partitioner)
            self.out.fan_out(self.batch, msg, ev, notified=bool(outcome.notices))

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
                rescore = part.rescore
                customers = sorted(part.ready | rescore)
                part.ready, part.rescore = set(), set()
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
        entry.copy = entry.copy or entry.state is None
        outcome = self.engine.apply(entry.state, ev)
        if copy.notified:
            # the original published what is due (notices, segments); consent moves nothing
            outcome.changes, outcome.notices, outcome.segments = [], [], None
        if copy.origin is not None:
            entry.positions[copy.origin] = copy.offset
        self.out.outcome(self.batch, entry, key, outcome, tombstone=False)
        self.metrics.consent_fanout.labels(outcome="applied").inc()

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

    async def flush(self, batch: Batch) -> None:
        """Outputs, acknowledged once; then states and clocks; then the changelog drained."""
        await flush(self.ss, batch, self.punctuator, self.metrics)

    # ------------------------------------------------------------ metrics

    def count(self, stream: str, outcome: str, n: int = 1) -> None:
        """``n`` inputs consumed (the labelled counter child is looked up once)."""
        child = self._consumed.get((stream, outcome))
        if child is None:
            child = self._consumed[stream, outcome] = self.metrics.events_consumed.labels(
                stream=stream, outcome=outcome)
        child.inc(n)

    def foreign(self, stream: str) -> Any:
        """The foreign-partition counter child of ``stream`` (looked up once)."""
        child = self._foreign.get(stream)
        if child is None:
            child = self._foreign[stream] = self.metrics.foreign_partition.labels(stream=stream)
        return child

    def latency(self, stream: str) -> Any:
        """The processing-time histogram child of ``stream`` (looked up once)."""
        child = self._latency.get(stream)
        if child is None:
            child = self._latency[stream] = self.metrics.latency.labels(stream=stream)
        return child

    def recount(self) -> int:
        """Reset segment-size and table-size gauges from this worker's table."""
        for seg in self.engine.segmenters:
            version = getattr(seg, "version", None)
            if isinstance(version, int):
                self.metrics.model_version.labels(segmenter=seg.name).set(version)
        values = (codec.loads(raw) for raw in self.ss.state.values())
        segments = (v.get("segments", {}) for v in values if not v.get(COPY))
        return self.metrics.recount(segments)
