"""Following an assignment at the edge: the rebalance gate's offsets and consent first.

:class:`Assignment` is the part of :class:`streamseg.ingest.Ingest` that talks to
the broker about partitions: at the first batch of a new consumer generation it
closes the rebalance gate (:mod:`streamseg.gate`) at the committed offsets and asks
where the consent partitions' backlog ends (:mod:`streamseg.consentfirst`); it moves
the wait for that backlog on (a commit marker read past, a stalled partition
re-read), ends it (the deferred input partitions re-read), and seeks a partition to
where the gate wants it re-read from. No engine work here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import faust

from streamseg import adapters
from streamseg.app import Streamseg
from streamseg.consentfirst import ConsentFirst
from streamseg.gate import Gate
from streamseg.metrics import Metrics
from streamseg.partitions import committed_offsets, log_spans

log = logging.getLogger(__name__)

T = TypeVar("T")


class Assignment:
    """The current assignment's gate offsets and consent-first wait, for one worker."""

    def __init__(self, ss: Streamseg, kinds: dict[str, str], gate: Gate,
                 consent_first: ConsentFirst, metrics: Metrics) -> None:
        self.ss = ss
        self.kinds = kinds
        self.gate = gate
        self.consent_first = consent_first
        self.metrics = metrics
        self._generation: int | None = None  # the consumer generation followed last
        self._assigned: list[Any] = []  # its input partitions
        self._committed: dict[tuple[str, int], int | None] = {}  # and their commits

    def followed(self) -> bool:
        """Whether :meth:`follow` has followed the consumer's current generation."""
        return getattr(self.ss.app, "consumer_generation_id", None) == self._generation

    async def follow(self) -> None:
        """At the first batch of a new assignment (consumer generation), before any of its
        events: close the gate at the committed offsets (:mod:`streamseg.gate`) and note
        where the consent partitions' backlog ends (:mod:`streamseg.consentfirst`).

        Not only in the ``on_partitions_assigned`` signal
        (:meth:`streamseg.ingest.Ingest.on_assigned`): Faust may hand the agent the new
        assignment's first records while that signal's receivers are still awaiting the
        broker (measured: a batch with the consent backlog taken 45 ms before the receiver
        was done; its purchases were applied, and so would be events ahead of the
        committed offset).
        """
        app = self.ss.app
        generation = getattr(app, "consumer_generation_id", None)
        if generation is not None and generation == self._generation:
            return
        self._generation = generation
        self._assigned = [tp for tp in app.consumer.assignment() if tp.topic in self.kinds]
        if not self._assigned:
            return
        committed = await self.ask_broker(
            committed_offsets(self.ss.settings, self._assigned), "committed offsets")
        if committed is None:  # the gate is a guard; the position backstop still holds
            self.consent_first.assigned({}, None)
            return
        self._committed = committed
        self.gate.assigned(committed)
        spans = await self.spans(self.ss.settings.topic_consent)
        if spans is None:
            self.consent_first.assigned({}, None)
        else:
            self.consent_first.assigned(committed, spans[1], spans[0])

    async def spans(self, topic: str) -> tuple[dict[Any, int], dict[Any, int]] | None:
        """(log starts, end offsets) of ``topic``'s assigned partitions (None: unknown)."""
        spans = await self.ask_broker(log_spans(self.ss.settings, self._assigned, topic),
                                      f"{topic}'s offsets")
        if spans is None:
            return None
        return ({tp: first for tp, (first, _) in spans.items()},
                {tp: end for tp, (_, end) in spans.items()})

    async def ask_broker(self, call: Awaitable[T], what: str) -> T | None:
        """``call``'s answer, or None (logged) if the broker fails or is slower than
        three times ``STREAMSEG_GATE_HOLD_S`` (the batch waits: a lock is held)."""
        try:
            return await asyncio.wait_for(call, timeout=3 * self.ss.settings.gate_hold_s)
        except Exception:
            log.exception("could not read %s from the broker (consent first: not waited "
                          "for)", what)
            return None

    async def stall(self, now: float) -> None:
        """The wait for the consent backlog with no awaited record lately
        (:mod:`streamseg.consentfirst`): a partition behind by a commit marker that the
        consumer's position has passed is read; one stalled is re-read from its next
        offset."""
        first, consumer = self.consent_first, self.ss.app.consumer
        first.took(now)
        for (topic, partition), end in first.at_marker(now):
            tp = faust.types.TP(topic, partition)
            position = await self.ask_broker(consumer.position(tp), f"{tp} position")
            if position is not None and position >= end:
                first.reached((topic, partition))
        for (topic, partition), offset in first.stalled(now):
            await self._seek(topic, partition, offset)

    async def end_wait(self, now: float) -> None:
        """Consent read: wait for its copies on this worker's ticks partitions (written and
        acknowledged by now); both read: re-read the deferred input partitions."""
        first = self.consent_first
        if first.behind:
            return
        if first.stage == "consent":
            spans = await self.spans(self.ss.settings.topic_ticks)
            if spans is not None:
                first.copies(self._committed, spans[1], spans[0])
            if first.behind:
                return
        first.stage = None
        for topic, partition in self.gate.release(now):
            await self.reseek(topic, partition)

    async def reseek(self, topic: str, partition: int) -> None:
        """Seek the partition to where the gate wants it re-read from (``Gate.seek``)."""
        offset = self.gate.seek(topic, partition, time.monotonic())
        if offset is None:
            return
        log.warning("re-reading %s[%d] from offset %d", topic, partition, offset)
        await self._seek(topic, partition, offset)

    async def _seek(self, topic: str, partition: int, offset: int) -> None:
        """Re-read ``topic[partition]`` from ``offset`` (counted)."""
        self.metrics.input_reseeks.inc()
        tp = faust.types.TP(topic, partition)
        consumer = self.ss.app.consumer
        await consumer.seek(tp, offset)
        # offsets Faust saw skipped are not to be committed past: they are re-read now
        adapters.forget_gap(consumer, tp, offset)
