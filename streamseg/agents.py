"""Agents: decode -> engine -> emit, a batch at a time. No feature arithmetic here.

This module attaches the work to the Faust app (:func:`register`: the agent, the
timers, the rebalance signals); :mod:`streamseg.ingest` processes a batch and
:mod:`streamseg.emit` queues its outputs. One agent reads every input topic
(clickstream, purchases, consent, profiles) and the internal ticks topic. A
customer's state lives on the partition its events arrive on, whatever partitioner
the producer used (``streamseg.partitions``).
Per batch (at most ``STREAMSEG_BATCH_SIZE`` events: what has arrived, taken as soon as
the stream is idle, :mod:`streamseg.intake`; ``STREAMSEG_BATCH_FLUSH=window``: Faust
``take_events``):

1. each event is screened and applied to its customer's state, read once per
   batch and kept in a read-your-own-writes cache (:class:`streamseg.batch.Entry`);
2. every output (changes, customer-segments, dead letters, consent copies) is
   handed to the producer, and their acknowledgements are awaited once;
3. then each touched state (and each partition's event clock) is written once,
   and Faust's changelog buffer is drained;
4. Faust acknowledges the batch's events: offsets commit after the changelog.

After an assignment, the consent backlog is read before any other input is applied
(:mod:`streamseg.consentfirst`, :class:`streamseg.assignment.Assignment`).

Time-driven work runs per partition, Kafka-Streams-punctuator style: the timer
(never while a batch is in flight: the batch lock) sends a tick *to each partition*
with customers due; the agent evaluates that
partition's due customers from its own schedule and table
(:meth:`streamseg.ingest.Ingest.rescore` adds customers to re-evaluate from the next tick on).
"""

from __future__ import annotations

import logging
from typing import Any

import faust
import mode

from streamseg import adapters, aio, intake
from streamseg.app import Streamseg
from streamseg.engine.processor import Engine
from streamseg.ingest import Ingest
from streamseg.metrics import Metrics
from streamseg.modelsync import follow_models
from streamseg.partitions import committed_offsets
from streamseg.punctuator import BEHIND_TICK_S

__all__ = ["Ingest", "register"]

log = logging.getLogger(__name__)


def register(ss: Streamseg, engine: Engine, metrics: Metrics) -> Ingest:
    """Attach the ingest agent to the app; return the glue object (for tests and timers)."""
    ingest = Ingest(ss, engine, metrics)
    size, within = ss.settings.batch_size, ss.settings.batch_wait_s

    # a batch that raises (an output the broker never acknowledged, a fault in the engine)
    # ends the worker: its events were taken but not applied, and a restarted agent on the
    # same stream would never see them again while later events move the states' input
    # positions past them (lost for good). A new process re-reads from the committed offset.
    @ss.app.agent(ss.inputs, name="streamseg.ingest",
                  supervisor_strategy=mode.CrashingSupervisor)
    async def process(stream: faust.StreamT[Any]) -> None:
        if size <= 1:  # the per-event path (for comparison)
            async for event in stream.events():
                await ingest.handle_batch([event])
                aio.reraise_cancel()  # a stop swallowed in the handling (streamseg.aio)
        elif ss.settings.batch_flush == "window":  # Faust's fixed window (for comparison)
            batches = stream.take_events(size, within=within)  # type: ignore[attr-defined]
            async for events in batches:
                await ingest.handle_batch(list(events))
                aio.reraise_cancel()
        else:  # what has arrived, as soon as the stream is idle
            idle = ss.settings.batch_idle_s
            async for taken in intake.batches(stream, size, within, idle):
                await ingest.handle_batch(taken)

    @ss.app.timer(  # type: ignore[untyped-decorator]
        max(0.2, ss.settings.gate_hold_s / 3), name="streamseg.gate"
    )
    async def gate() -> None:
        """A held partition is re-read when its hold runs out, even if no event follows."""
        await ingest.check_gate()

    @ss.app.timer(  # type: ignore[untyped-decorator]
        ss.settings.tick_interval_s, name="streamseg.clock"
    )
    async def clock() -> None:
        """Event-time clock: tick each owned partition that has customers due."""
        for partition, value in await ingest.timer_ticks():
            await ss.ticks.send(key=None, value=value, partition=partition)

    @ss.app.timer(  # type: ignore[untyped-decorator]
        min(BEHIND_TICK_S, ss.settings.tick_interval_s), name="streamseg.rescore"
    )
    async def rescore() -> None:
        """The rest of a large re-score (a tick takes a share: ``take_rescore``), soon."""
        for partition, value in await ingest.behind_ticks():
            await ss.ticks.send(key=None, value=value, partition=partition)

    @ss.app.on_partitions_assigned.connect
    async def assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Close the gate at the committed offsets; reschedule; decide who trains models."""
        tps = args[0] if args else None
        if ss.settings.lean_delivery:  # before the first message of the assignment
            adapters.lean_delivery(ss.app.consumer)
        try:
            committed = await committed_offsets(ss.settings, tps)
        except Exception:  # the gate is a guard; the position backstop still holds
            log.exception("could not read committed offsets; ordering gate left open")
            committed = {}
        ingest.on_assigned(tps, committed)

    @ss.app.task  # type: ignore[untyped-decorator]
    async def models() -> None:
        await follow_models(ss, ingest.models)

    @ss.app.on_rebalance_complete.connect
    def recount(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Partitions moved: segment gauges and table size from the states held now."""
        ingest.recount()

    return ingest
