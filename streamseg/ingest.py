"""Ingest: one batch of input events through the engine, for one worker process.

:class:`Ingest` is the glue between Faust events and the engine (``streamseg.agents``
attaches it to the app). Per batch it lets the rebalance gate hold or re-read events
delivered ahead of the committed offset (:mod:`streamseg.gate`) and defer inputs until
the consent backlog of an assignment is read (:mod:`streamseg.consentfirst`), applies each admitted
message (:class:`streamseg.apply.Applier`: each customer's state loaded once, a
:class:`~streamseg.batch.Entry`; input at or before the state's recorded position, a
re-delivery, skipped; the rest through ``Engine.ingest``; partition ticks and consent
copies evaluated), queues every output (:mod:`streamseg.emit`) and flushes the batch
(:func:`streamseg.batch.flush`: outputs acknowledged, then states, then the changelog).
No feature arithmetic here.
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
from streamseg.apply import Applier
from streamseg.assignment import Assignment
from streamseg.batch import Batch, flush
from streamseg.consentfirst import ConsentFirst
from streamseg.emit import Emitter
from streamseg.engine.processor import Engine
from streamseg.engine.validate import Validator
from streamseg.gate import Gate
from streamseg.metrics import Metrics
from streamseg.modelsync import ModelSync
from streamseg.partitions import PartitionState
from streamseg.punctuator import COPY, Punctuator, tables_ready

log = logging.getLogger(__name__)

DEFERRED = frozenset({"click", "purchase", "profile"})  # inputs that wait for consent first
AWAITED = frozenset({"consent", "tick"})  # what they wait for (consent, then its copies)


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
        self.consent_first = ConsentFirst(give_up_s=3 * ss.settings.gate_hold_s)
        self.assignment = Assignment(ss, self.kinds, self.gate, self.consent_first, metrics)
        self.models = ModelSync(engine, metrics, ss.settings.topic_clickstream)
        self.out = Emitter(ss, engine, metrics, self.punctuator)
        self.apply = Applier(ss, engine, metrics, self.validator, self.punctuator, self.out)
        self.lock = asyncio.Lock()  # a batch, or the timer's look at the schedules
        self._consumed: dict[tuple[str, str], Any] = {}
        self._latency: dict[str, Any] = {}
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
        if not self.assignment.followed():
            self.gate.assigned(committed)  # else the batch did (Assignment.follow)
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
        (:meth:`Punctuator.reschedule_cooperatively`); batches wait for it. No tick is
        sent while the consent backlog is read first (:mod:`streamseg.consentfirst`).
        """
        async with self.lock:
            if self.consent_first.stage is not None:  # ticks wait for the consent backlog
                return []
            punctuator = self.punctuator
            if punctuator.rebuild and tables_ready(self.ss):
                await punctuator.reschedule_cooperatively()  # the loop stays responsive
                if punctuator.rebuild:
                    return []  # abandoned for a new assignment: the next run starts again
            ticks = self.due_ticks()
            self.show_clock(None)  # the clocks of the owned partitions may have been restored
            return ticks

    async def behind_ticks(self) -> list[tuple[int, bytes]]:
        """Ticks for the partitions a tick left customers to re-score for
        (:meth:`Punctuator.behind`), at most one unread per partition: the rest of a
        large re-score follows within :data:`~streamseg.punctuator.BEHIND_TICK_S`, not at
        the next ``tick_interval_s`` (the other partitions wait for the clock timer)."""
        behind = set(self.punctuator.behind())
        if not behind:
            return []
        out = [(p, value) for p, value in await self.timer_ticks() if p in behind]
        for p, _ in out:
            self.punctuator.part(p).quick_sent = True
        return out

    def rescore(self, customer_ids: list[str]) -> None:
        """Re-evaluate these customers now: from the next tick of each partition (RFM hook)."""
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
        await self.assignment.follow()
        started = time.perf_counter()
        self.apply.batch = batch = Batch()
        batch.look = self.punctuator.now()
        now = time.monotonic()
        # a batch below the size limit left nothing queued (the intake takes what is there)
        self.gate.progress(len(events), now, emptied=len(events) < self.ss.settings.batch_size)
        first = self.consent_first
        if first.behind:
            await self.assignment.stall(now)
        waiting = first.stage is not None
        for event in events:
            msg = event.message
            topic = msg.topic
            if waiting and self.kinds.get(topic) in DEFERRED and first.stage is not None:
                verdict = self.gate.defer(topic, msg.partition, msg.offset, now)
            else:
                verdict = self.gate.admit(topic, msg.partition, msg.offset, now)
                if waiting and verdict == "apply" and self.kinds.get(topic) in AWAITED:
                    first.read(topic, msg.partition, msg.offset, now)
            if verdict != "apply":
                adapters.withhold_ack(event)
                self.metrics.input_held.inc()
                # its input is there, unread: the source is not idle (it holds the clock)
                self.punctuator.sources.touch((msg.topic, msg.partition), now)
                if verdict == "reseek":
                    await self.assignment.reseek(msg.topic, msg.partition)
                continue
            adapters.use_event(event)
            part = self.punctuator.open(msg.partition)
            stream = self.kinds.get(msg.topic, "click")
            if stream == "tick":
                self.apply.on_tick(event, part)
            else:
                self.apply.on_input(event, stream, part)
        await self.flush(batch)
        if waiting:  # (the copies of this batch's consent are acknowledged now)
            await self.assignment.end_wait(now)
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
        evaluated from the next tick of every owned partition on (:meth:`rescore`).
        """
        ids = self.engine.moved()
        if ids:
            self.punctuator.rescore(list(ids))

    async def check_gate(self) -> None:
        """Re-read the held partitions whose hold ran out without a later event; follow a
        new assignment no batch has come for yet; move the wait for the consent backlog
        on, and re-read the deferred input partitions when it is over (timer)."""
        async with self.lock:
            now = time.monotonic()
            if tables_ready(self.ss):  # not while the changelogs are restored
                await self.assignment.follow()
                if self.consent_first.behind:
                    await self.assignment.stall(now)
            if self.consent_first.stage is not None:
                await self.assignment.end_wait(now)
            for topic, partition in self.gate.overdue(now):
                await self.assignment.reseek(topic, partition)

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
