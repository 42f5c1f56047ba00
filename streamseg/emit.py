"""Emit: the outputs of one engine outcome, queued on the batch (nothing is sent here).

Changes and consent notices go to ``segment-changes``, the customer's profile to the
compacted ``customer-segments`` (a tombstone after an erasure), rejected input to the
dead-letter topic with its reason, and a consent event is copied to every other
partition through the ticks topic (the customer may have state on any of them).
:func:`streamseg.batch.flush` then hands the batch's outputs to the producer, awaits
their acknowledgements, and only after that writes the states this module marks dirty.
The customer's next due time is pushed to its partition's schedule here, before the
state is written (the clock timer waits for the batch: ``Ingest.timer_ticks``).
"""

from __future__ import annotations

from typing import Any

from streamseg import codec
from streamseg.app import Streamseg
from streamseg.batch import Batch, Entry, Output
from streamseg.engine.deadletters import dead_letter, redact_key
from streamseg.engine.processor import Engine, Outcome
from streamseg.engine.validate import Invalid
from streamseg.metrics import Metrics
from streamseg.punctuator import Punctuator

FANOUT = "streamseg-fanout"  # header of a consent copy on the ticks topic


class Emitter:
    """Queues outputs on a :class:`~streamseg.batch.Batch` for one worker process."""

    def __init__(self, ss: Streamseg, engine: Engine, metrics: Metrics,
                 punctuator: Punctuator) -> None:
        self.ss = ss
        self.engine = engine
        self.metrics = metrics
        self.punctuator = punctuator

    def outcome(self, batch: Batch, entry: Entry, key: bytes, outcome: Outcome,
                tombstone: bool = True) -> None:
        """Queue the outcome's outputs; the state is written after they are acknowledged."""
        p = entry.event.message.partition
        schedule = self.punctuator.part(p).schedule
        if outcome.erased:
            if entry.state is not None:
                self.metrics.forget_segments(entry.state.segments)
            entry.state, entry.dirty = outcome.state, True
            schedule.push(key.decode(), None)
            if tombstone:
                batch.outputs.append(Output(self.ss.segments, key, None))
            return
        if outcome.state is None or outcome.skipped:
            return
        for change in outcome.changes:
            batch.outputs.append(Output(self.ss.changes, key, codec.dumps(change)))
            self.metrics.observe_change(change)
        for change in outcome.folded:  # moves due while consent was withdrawn: not published
            self.metrics.observe_fold(change)
        for notice in outcome.notices:  # consent suppression notices (no segment move)
            batch.outputs.append(Output(self.ss.changes, key, codec.dumps(notice)))
        if outcome.segments is not None:
            batch.outputs.append(Output(self.ss.segments, key, codec.dumps(outcome.segments)))
        entry.state, entry.dirty = outcome.state, True
        schedule.push(key.decode(), outcome.due if outcome.due_known
                      else self.engine.due(outcome.state, outcome.at))

    def dead_letter(self, batch: Batch, invalid: Invalid, msg: Any, stream: str) -> None:
        """Queue the dead letter of a rejected input (its reason, source position and bytes)."""
        # with STREAMSEG_PSEUDONYMISE_KEY the key is hashed and the payload redacted
        secret = self.ss.settings.pseudonymise_key
        record = dead_letter(invalid, msg.topic, msg.partition, msg.offset, msg.key, msg.value,
                             secret=secret)
        key = redact_key(secret, msg.key) if secret else msg.key
        batch.outputs.append(Output(self.ss.dead_letters, key, codec.dumps(record)))
        self.metrics.dead_letters.labels(reason=invalid.reason).inc()
        batch.counts.append((stream, "dead_letter"))

    def fan_out(self, batch: Batch, msg: Any) -> None:
        """Copy a consent event to every other partition: it may hold the customer too."""
        for q in range(self.ss.settings.partitions):
            if q != msg.partition:
                batch.outputs.append(Output(self.ss.ticks, msg.key, msg.value, q,
                                            {FANOUT: b"consent"}))


def is_fanout(headers: Any) -> bool:
    """Whether a ticks-topic message is a consent copy (Faust gives headers as list or dict).

    >>> is_fanout([(FANOUT, b"consent")]), is_fanout({"other": b""}), is_fanout(None)
    (True, False, False)
    """
    if not headers:
        return False
    items = headers.items() if isinstance(headers, dict) else headers
    return any(k == FANOUT for k, _ in items)
