"""Agents: decode -> engine -> emit. No feature arithmetic here.

One agent reads every input topic (clickstream, purchases, consent and the
internal ticks topic); the topics are co-partitioned by customer id, so a
customer's events are processed in order, on one worker, against the
changelog-backed state table.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust

from streamseg import codec
from streamseg.app import Streamseg, input_topics
from streamseg.engine.clock import EventClock
from streamseg.engine.deadletters import dead_letter, redact_key
from streamseg.engine.events import Kind
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine, Outcome
from streamseg.engine.scheduler import Schedule
from streamseg.engine.validate import Invalid, Validator
from streamseg.metrics import Metrics
from streamseg.modelsync import ModelSync, follow_models

log = logging.getLogger(__name__)


class Ingest:
    """Glue between Faust events and the engine, for one worker process."""

    def __init__(self, ss: Streamseg, engine: Engine, metrics: Metrics) -> None:
        self.ss = ss
        self.engine = engine
        self.metrics = metrics
        self.validator = Validator(ss.settings)
        self.clock = EventClock(ss.settings.allowed_lateness_s)
        self.kinds = input_topics(ss.settings)
        self.schedule = Schedule()  # (due event time, customer id) of idle customers
        self.rebuild = True  # refill the schedule from the table (start, rebalance)
        # customers whose verdict a population model moved (Engine.moved), ticked next
        self.moved: dict[str, None] = {}
        # population models, snapshotted to the models topic (key = segmenter name)
        self.models = ModelSync(engine, metrics, ss.settings.topic_clickstream)
        # (key, table bytes) of the last :meth:`load`: lets ``emit`` skip a
        # second table lookup and the write of an unchanged state
        self.loaded: tuple[bytes, bytes | None] | None = None
        self._consumed: dict[tuple[str, str], Any] = {}  # metric children by labels

    def on_assigned(self, assigned: Any) -> None:
        """After a rebalance: reschedule idle customers; decide who trains the models."""
        self.rebuild = True
        self.models.on_assigned(assigned)

    def due_ticks(self) -> list[tuple[bytes, bytes]]:
        """Tick messages for customers due at the event-time clock (none before any event)."""
        now = self.clock.now()
        if now is None:
            return []
        if self.rebuild:
            self.rebuild = False
            for key, raw in list(self.ss.state.items()):
                state = CustomerState.from_dict(codec.loads(raw))
                self.engine.restore(state)  # population models (RFM ranks) from the table
                self.schedule.push(key.decode(), self.engine.due(state))
        value = codec.dumps({"now": now})
        out = [(cid.encode(), value) for cid in self.schedule.pop_due(now)]
        if self.moved:  # population moved: re-score those customers now (trigger "population")
            rescore = codec.dumps({"now": now, "population": True})
            out += [(cid.encode(), rescore) for cid in self.moved]
            self.moved.clear()
        return out

    def load(self, key: bytes) -> CustomerState | None:
        raw = self.ss.state.get(key)
        self.loaded = (key, raw)
        return None if raw is None else CustomerState.from_dict(codec.loads(raw))

    def count(self, stream: str, outcome: str) -> None:
        """One input consumed (the labelled counter child is looked up once)."""
        child = self._consumed.get((stream, outcome))
        if child is None:
            child = self._consumed[stream, outcome] = self.metrics.events_consumed.labels(
                stream=stream, outcome=outcome)
        child.inc()

    async def handle(self, event: faust.EventT[Any]) -> None:
        """Process one input message and send everything it produced."""
        started = time.perf_counter()
        self.loaded = None
        msg = event.message
        stream = self.kinds.get(msg.topic, "click")
        outcome: Outcome | Invalid
        if stream == "tick":
            key = msg.key or b""
            outcome = self.handle_tick(msg.key, msg.value)
        else:
            kind: Kind = stream  # type: ignore[assignment]
            result = self.validator.check(kind, msg.key, msg.value)
            if isinstance(result, Invalid):
                outcome = result
            else:
                ev = result.event
                key = ev.customer_id.encode()
                state = self.load(key)
                outcome = self.engine.ingest(state, ev, self.clock)
                self.moved.update(dict.fromkeys(self.engine.moved()))
                if not isinstance(outcome, Invalid):
                    self.metrics.event_clock.set(self.clock.max_seen or ev.ts)
                    self.metrics.event_lag.set(max(0.0, time.time() - ev.ts))
        if isinstance(outcome, Invalid):
            await self.reject(outcome, msg)
            self.count(stream, "dead_letter")
            return
        await self.emit(key, outcome)
        self.count(stream, "erased" if outcome.erased else (outcome.skipped or "processed"))
        self.metrics.latency.labels(stream=stream).observe(time.perf_counter() - started)

    def handle_tick(self, key: bytes | None, value: bytes | None) -> Outcome | Invalid:
        """A clock tick for one customer: re-evaluate at the tick's event time.

        A malformed tick is :class:`Invalid` (a dead letter); a tick for a
        customer with no state (never seen) is a counted ``no_state`` skip.
        """
        now = self.validator.check_tick(value)
        if isinstance(now, Invalid):
            return now
        state = None if key is None else self.load(key)
        if state is None:
            return Outcome(None, skipped="no_state")
        if b'"population"' in (value or b"") and codec.loads(value or b"{}").get("population"):
            return self.engine.rescore(state, now)
        return self.engine.tick(state, now)

    def recount(self) -> int:
        """Reset segment-size and table-size gauges from this worker's table."""
        for seg in self.engine.segmenters:
            version = getattr(seg, "version", None)
            if isinstance(version, int):
                self.metrics.model_version.labels(segmenter=seg.name).set(version)
        segments = (codec.loads(raw).get("segments", {}) for raw in self.ss.state.values())
        return self.metrics.recount(segments)

    async def reject(self, invalid: Invalid, msg: Any) -> None:
        # with STREAMSEG_PSEUDONYMISE_KEY the key is hashed and the payload redacted
        secret = self.ss.settings.pseudonymise_key
        record = dead_letter(invalid, msg.topic, msg.partition, msg.offset, msg.key, msg.value,
                             secret=secret)
        key = redact_key(secret, msg.key) if secret else msg.key
        await self.ss.dead_letters.send(key=key, value=codec.dumps(record))
        self.metrics.dead_letters.labels(reason=invalid.reason).inc()

    async def emit(self, key: bytes, outcome: Outcome) -> None:
        """Publish changes and the current-segments record, then persist the state."""
        state = outcome.state
        if outcome.erased:
            # The profile goes; what stays is the engine's suppression marker
            # (withdrawn, no features, no segments), or nothing.
            old = self.load(key)
            if old is not None:
                self.metrics.forget_segments(old.segments)
            if old is None and state is not None:
                self.metrics.table_customers.inc()
            elif old is not None and state is None:
                self.metrics.table_customers.dec()
            if state is not None:
                self.ss.state[key] = codec.dumps(state.to_dict())
            elif self.ss.state.get(key) is not None:
                del self.ss.state[key]
            self.schedule.push(key.decode(), None)
            await self.ss.segments.send(key=key, value=None)
            return None
        if state is None or outcome.skipped:
            return None
        # Outputs first and acknowledged, then the state that records them. A
        # crash in between replays the event on the old state and re-sends the
        # same change ids (a duplicate); the other order loses the changes, as
        # the replayed event would be a duplicate skip (docs/RELIABILITY.md).
        pending = []
        for change in outcome.changes:
            pending.append(await self.ss.changes.send(key=key, value=codec.dumps(change)))
            self.metrics.observe_change(change)
        for notice in outcome.notices:  # consent suppression notices (no segment move)
            pending.append(await self.ss.changes.send(key=key, value=codec.dumps(notice)))
        if outcome.segments is not None:
            segments = codec.dumps(outcome.segments)
            pending.append(await self.ss.segments.send(key=key, value=segments))
        if self.ss.settings.confirm_outputs and pending:
            self.send_now()
            for delivered in pending:
                await delivered
        value = codec.dumps(state.to_dict())
        self.schedule.push(key.decode(), self.engine.due(state, outcome.at))
        loaded = self.loaded if self.loaded is not None and self.loaded[0] == key else None
        if loaded is not None and loaded[1] == value:
            return None  # unchanged (a tick that moved nothing): no table write
        if (key not in self.ss.state) if loaded is None else (loaded[1] is None):
            self.metrics.table_customers.inc()
        self.ss.state[key] = value
        if self.ss.settings.confirm_outputs:
            await self.settle_changelog()
        return None

    def send_now(self) -> None:
        """Close the Kafka client's lingering batches: what we wait for goes out at once.

        With ``producer_linger_s`` the client holds records back to batch them;
        an output the agent is about to wait for must not wait for the linger
        too. This is what aiokafka's own ``flush_for_commit`` does before it
        waits (aiokafka 0.14 internals; a no-op when they are not there).
        """
        client = getattr(getattr(self.ss.app, "producer", None), "_producer", None)
        acc = getattr(client, "_message_accumulator", None)
        if acc is None:
            return
        for batches in acc._batches.values():
            for batch in batches:
                batch._builder.close()
        if not acc._waiter_future.done():
            acc._waiter_future.set_result(None)

    async def settle_changelog(self) -> None:
        """Hand the buffered table-changelog records to the Kafka client now.

        Faust commits offsets after ``producer.flush()``, but its buffer flush
        gives up after 0.1 s without progress, so an offset could be committed
        while the changelog record of that event was still buffered: a crash
        then restores a state older than the committed position, and the
        event is never replayed. Draining here, before the event is acked,
        leaves the client's own flush (which waits for delivery) to cover it.
        """
        buffer = self.ss.app.producer.buffer
        while buffer.size:
            await buffer.flush()


def register(ss: Streamseg, engine: Engine, metrics: Metrics) -> Ingest:
    """Attach the ingest agent to the app; return the glue object (for tests and timers)."""
    ingest = Ingest(ss, engine, metrics)

    @ss.app.agent(ss.inputs, name="streamseg.ingest")
    async def process(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            await ingest.handle(event)

    @ss.app.timer(  # type: ignore[untyped-decorator]
        ss.settings.tick_interval_s, name="streamseg.clock"
    )
    async def clock() -> None:
        """Event-time clock: send a tick to every customer due at the watermark."""
        for key, value in ingest.due_ticks():
            await ss.ticks.send(key=key, value=value)

    @ss.app.on_partitions_assigned.connect
    async def assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Decide who trains the cluster model; reschedule idle customers."""
        ingest.on_assigned(args[0] if args else None)

    @ss.app.task  # type: ignore[untyped-decorator]
    async def models() -> None:
        await follow_models(ss, ingest.models)

    @ss.app.on_rebalance_complete.connect
    def recount(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Partitions moved: segment gauges and table size from the states held now."""
        ingest.recount()

    return ingest
