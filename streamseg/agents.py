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
from streamseg.engine.deadletters import dead_letter
from streamseg.engine.events import Kind
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine, Outcome
from streamseg.engine.validate import Invalid, Validator
from streamseg.metrics import Metrics

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

    def load(self, key: bytes) -> CustomerState | None:
        raw = self.ss.state.get(key)
        return None if raw is None else CustomerState.from_dict(codec.loads(raw))

    async def handle(self, event: faust.EventT[Any]) -> None:
        """Process one input message and send everything it produced."""
        started = time.perf_counter()
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
                rejected = self.engine.screen(state, ev, self.clock.max_seen)
                if rejected is not None:
                    outcome = rejected
                else:
                    self.clock.observe(ev.ts)
                    outcome = self.engine.apply(state, ev)
                    self.metrics.event_lag.set(max(0.0, time.time() - ev.ts))
        if isinstance(outcome, Invalid):
            await self.reject(outcome, msg)
            self.metrics.events_consumed.labels(stream=stream, outcome="dead_letter").inc()
            return
        await self.emit(key, outcome)
        label = "erased" if outcome.erased else (outcome.skipped or "processed")
        self.metrics.events_consumed.labels(stream=stream, outcome=label).inc()
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
        return self.engine.tick(state, now)

    async def reject(self, invalid: Invalid, msg: Any) -> None:
        record = dead_letter(invalid, msg.topic, msg.partition, msg.offset, msg.key, msg.value)
        await self.ss.dead_letters.send(key=msg.key, value=codec.dumps(record))
        self.metrics.dead_letters.labels(reason=invalid.reason).inc()

    async def emit(self, key: bytes, outcome: Outcome) -> None:
        """Persist state, then publish changes and the current-segments record."""
        state = outcome.state
        if outcome.erased:
            # The profile goes; what stays is the engine's suppression marker
            # (withdrawn, no features, no segments), or nothing.
            if state is not None:
                self.ss.state[key] = codec.dumps(state.to_dict())
            elif self.ss.state.get(key) is not None:
                del self.ss.state[key]
            await self.ss.segments.send(key=key, value=None)
            return None
        if state is None or outcome.skipped:
            return None
        self.ss.state[key] = codec.dumps(state.to_dict())
        for change in outcome.changes:
            await self.ss.changes.send(key=key, value=codec.dumps(change))
            self.metrics.changes.labels(
                segmenter=change["segmenter"],
                from_segment=change["from_segment"] or "none",
                to_segment=change["to_segment"],
            ).inc()
        if outcome.segments is not None:
            await self.ss.segments.send(key=key, value=codec.dumps(outcome.segments))
        return None


def register(ss: Streamseg, engine: Engine, metrics: Metrics) -> Ingest:
    """Attach the ingest agent to the app; return the glue object (for tests and timers)."""
    ingest = Ingest(ss, engine, metrics)

    @ss.app.agent(ss.inputs, name="streamseg.ingest")
    async def process(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            await ingest.handle(event)

    return ingest
