"""Emit: the outputs of one engine outcome, queued on the batch (nothing is sent here).

Changes and consent notices go to ``segment-changes``, the customer's profile to the
compacted ``customer-segments`` (a tombstone after an erasure), rejected input to the
dead-letter topic with its reason, and a consent event is copied to every other
partition through the ticks topic (the customer may have state on any of them;
:func:`copy_record`, read back by :func:`read_copy`).
:func:`streamseg.batch.flush` then hands the batch's outputs to the producer, awaits
their acknowledgements, and only after that writes the states this module marks dirty.
The customer's next due time is pushed to its partition's schedule here, before the
state is written (the clock timer waits for the batch: ``Ingest.timer_ticks``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamseg import codec
from streamseg.app import Streamseg
from streamseg.batch import Batch, Entry, Output
from streamseg.engine.deadletters import dead_letter, letter_key
from streamseg.engine.events import CONSENT_TYPES, Event, format_ts, parse_ts
from streamseg.engine.processor import Engine, Outcome
from streamseg.engine.validate import Invalid
from streamseg.metrics import Metrics
from streamseg.partitions import position_key
from streamseg.punctuator import Punctuator

FANOUT = "streamseg-fanout"  # header of a consent copy on the ticks topic
EPOCH = "streamseg-epoch"  # header of an erasure's tombstone: the customer's epoch after it
# its value: a copy in the format of copy_record; a copy made before that format (the
# original's bytes) has the value b"consent" and is read as a consent input
COPY_FORMAT = b"consent/2"


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
            if tombstone:  # the epoch after the erasure: older changes are the erased profile's
                epoch = 0 if outcome.state is None else outcome.state.epoch
                batch.outputs.append(Output(self.ss.segments, key, None,
                                            headers={EPOCH: str(epoch).encode()}))
            return
        if outcome.state is None or outcome.skipped:
            for change in outcome.folded:  # an input folded into a withdrawn profile
                self.metrics.observe_fold(change)
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
        key = letter_key(msg.key, secret)  # hashed, or cut to a length that fits
        batch.outputs.append(Output(self.ss.dead_letters, key, codec.dumps(record)))
        self.metrics.dead_letters.labels(reason=invalid.reason).inc()
        batch.counts.append((stream, "dead_letter"))

    def fan_out(self, batch: Batch, msg: Any, event: Event, notified: bool,
                applied: float | None = None) -> None:
        """Copy a consent event to every other partition: it may hold the customer too.

        ``event`` is the admitted original (its customer id is the alias with
        ``STREAMSEG_PSEUDONYMISE_KEY``; a withdrawal or erasure dated outside the window
        at the event clock it was applied at); ``notified``: whether the original
        published a suppression notice; ``applied``: the event time the original was
        applied at (:func:`copy_record`). The copy is key-addressed to nothing: it goes to
        each partition by number.
        """
        value = copy_record(event, format_ts(event.ts), msg.topic, msg.partition, msg.offset,
                            notified, applied)
        key = event.customer_id.encode()
        for q in range(self.ss.settings.partitions):
            if q != msg.partition:
                batch.outputs.append(Output(self.ss.ticks, key, value, q,
                                            {FANOUT: COPY_FORMAT}))


@dataclass(frozen=True, slots=True)
class Copy:
    """A consent copy read back (:func:`read_copy`)."""

    event: Event
    origin: str | None  # the original's input partition (position_key); None: not known
    offset: int  # the original's offset there
    notified: bool  # the original published the suppression notice (if one was due)
    applied: float | None = None  # the event time the original was applied at (None: ts)


def copy_record(event: Event, ts: str, topic: str, partition: int, offset: int,
                notified: bool, applied: float | None = None) -> bytes:
    """The body of a consent copy: only what applying it on another partition needs.

    The customer id as the state knows it (the alias when pseudonymising: never
    the raw id, nor any other field of the original), the type, the event time
    as the producer wrote it, the original's input position as ``event_id``
    (``<topic>:<partition>:<offset>``: a partition that applied that consent
    records it and applies no copy of it again, :func:`streamseg.partitions.replayed`)
    and ``notified``; with ``applied``, the event time the original was applied at
    (epoch seconds; a withdrawal or erasure counts from there against older grants:
    :mod:`streamseg.engine.consentlog`). The body is a valid consent record, so a worker
    of the previous version still applies it (without pseudonymisation).

    >>> e = Event("consent", "consent_withdrawn", "w1", "c1", 0.0)
    >>> copy_record(e, "1970-01-01T00:00:00Z", "consent", 2, 17, False)
    b'{"customer_id":"c1","event_id":"consent:2:17","notified":false,"ts":"1970-01-01T00:00:00Z","type":"consent_withdrawn"}'
    """
    body: dict[str, Any] = {"customer_id": event.customer_id, "type": event.type, "ts": ts,
                            "event_id": f"{position_key(topic, partition)}:{offset}",
                            "notified": notified}
    if applied is not None:
        body["applied"] = applied
    return codec.dumps(body)


def read_copy(value: bytes | None) -> Copy | None:
    """A :func:`copy_record` read back; None if it is not one (never raises).

    >>> e = Event("consent", "erasure_requested", "x1", "c1", 0.0)
    >>> got = read_copy(copy_record(e, "1970-01-02T00:00:00Z", "consent", 2, 17, True))
    >>> got.event.customer_id, got.event.ts, got.origin, got.offset, got.notified
    ('c1', 86400.0, 'consent:2', 17, True)
    >>> read_copy(b"{}"), read_copy(b"not json"), read_copy(None)
    (None, None, None)
    """
    try:
        body = codec.loads(value or b"")
        origin, _, offset = str(body["event_id"]).rpartition(":")
        cid, etype, notified = body["customer_id"], body["type"], body["notified"]
        if not (isinstance(cid, str) and cid and etype in CONSENT_TYPES and origin
                and isinstance(notified, bool)):
            return None
        event = Event("consent", etype, body["event_id"], cid, parse_ts(str(body["ts"])))
        applied = body.get("applied")
        if not (applied is None or (isinstance(applied, int | float)
                                    and not isinstance(applied, bool))):
            return None
        return Copy(event, origin, int(offset), notified,
                    None if applied is None else float(applied))
    except (codec.DecodeError, KeyError, TypeError, ValueError):
        return None


def fanout_format(headers: Any) -> bytes | None:
    """The :data:`FANOUT` header's value (None without one).

    >>> fanout_format([(FANOUT, COPY_FORMAT)]), fanout_format({FANOUT: b"consent"})
    (b'consent/2', b'consent')
    >>> fanout_format(None)
    """
    if not headers:
        return None
    items = headers.items() if isinstance(headers, dict) else headers
    return next((bytes(v or b"") for k, v in items if k == FANOUT), None)


def is_fanout(headers: Any) -> bool:
    """Whether a ticks-topic message is a consent copy (Faust gives headers as list or dict).

    >>> is_fanout([(FANOUT, b"consent")]), is_fanout({"other": b""}), is_fanout(None)
    (True, False, False)
    """
    return fanout_format(headers) is not None
