"""Kafka helpers for people at a terminal: produce a JSON-lines file, watch segment changes,
export dead letters to re-feed.

Transport edge (aiokafka), used by ``streamseg produce``, ``streamseg watch`` and
``streamseg dead-letters`` and by the demo script; the worker does not use it.
"""

from __future__ import annotations

import asyncio
import base64
import math
import sys
import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple, TextIO

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streamseg import codec
from streamseg.config import Settings
from streamseg.engine.events import CONSENT_TYPES, RESTRICTIVE, kind_of, parse_ts
from streamseg.errors import InputFileError


def topic_for(settings: Settings, record: dict[str, Any]) -> str:
    """The input topic of a record, by the stream it belongs to.

    >>> topic_for(Settings(), {"type": "purchase"}), topic_for(Settings(), {"type": "search"})
    ('purchases', 'clickstream')
    >>> topic_for(Settings(), {"attributes": {"country": "DE"}})
    'customer-profiles'
    """
    return {
        "click": settings.topic_clickstream,
        "purchase": settings.topic_purchases,
        "consent": settings.topic_consent,
        "profile": settings.topic_profiles,
    }[kind_of(record)]


def read_lines(path: Path) -> Iterator[tuple[int, bytes, dict[str, Any] | None]]:
    """``(line number, raw bytes, decoded object or None)`` for each non-blank line; the
    file is opened now (a missing file is told before any broker is asked)."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputFileError(str(path), None, None, exc.strerror or str(exc)) from None
    return _lines(handle)


def _lines(handle: IO[bytes]) -> Iterator[tuple[int, bytes, dict[str, Any] | None]]:
    with handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line:
                continue
            try:
                obj = codec.loads(line)
            except codec.DecodeError:
                obj = None
            yield number, line, obj if isinstance(obj, dict) else None


async def send_all(
    settings: Settings, messages: Iterable[tuple[str, bytes | None, bytes]], rate: float = 0.0
) -> int:
    """Send ``(topic, key, value)`` messages in order, at ``rate`` per second (0: no limit)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=5
    )
    await producer.start()
    sent = 0
    started = time.monotonic()
    try:
        for topic, key, value in messages:
            if rate > 0:
                delay = started + sent / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await producer.send(topic, key=key, value=value)
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def file_messages(settings: Settings, path: Path) -> Iterator[tuple[str, bytes | None, bytes]]:
    """The lines of ``path`` as input messages, keyed by customer id (the file is opened
    now: :func:`read_lines`).

    Lines that are not JSON objects go to the clickstream topic as they are,
    so the worker dead-letters them (nothing is dropped on the way in).
    """
    lines = read_lines(path)

    def messages() -> Iterator[tuple[str, bytes | None, bytes]]:
        for _, raw, obj in lines:
            if obj is None:
                yield settings.topic_clickstream, None, raw
                continue
            cid = obj.get("customer_id")
            yield topic_for(settings, obj), cid.encode() if isinstance(cid, str) else None, raw

    return messages()


async def produce_file(settings: Settings, path: Path, rate: float = 0.0) -> int:
    """Send every line of ``path`` to its input topic; return the count."""
    return await send_all(settings, file_messages(settings, path), rate)


def describe_change(change: dict[str, Any]) -> str:
    """One readable line for a segment change.

    >>> describe_change({"event_time": "2026-01-05T00:00:00Z", "customer_id": "c1",
    ...                  "segmenter": "frequency", "from_segment": "low", "to_segment": "high",
    ...                  "to_name": "High frequency", "reason": "buys every 4.0 days",
    ...                  "trigger": "event"})
    '2026-01-05T00:00:00Z  c1  frequency: low -> high (High frequency) [event: buys every 4.0 days]'
    >>> describe_change({"kind": "suppression", "event_time": "2026-01-06T00:00:00Z",
    ...                  "customer_id": "c1", "suppressed": True, "reason": "consent_withdrawn",
    ...                  "segments": {"frequency": {}}})
    '2026-01-06T00:00:00Z  c1  suppressed (consent_withdrawn): frequency'
    """
    if change.get("kind") == "suppression":
        state = "suppressed" if change["suppressed"] else "unsuppressed"
        return (f"{change['event_time']}  {change['customer_id']}  {state} "
                f"({change['reason']}): {', '.join(sorted(change['segments'])) or '-'}")
    return (
        f"{change['event_time']}  {change['customer_id']}  {change['segmenter']}: "
        f"{change['from_segment'] or '(none)'} -> {change['to_segment']} ({change['to_name']}) "
        f"[{change.get('trigger', 'event')}: {change['reason']}]"
    )


async def watch(
    settings: Settings, count: int = 0, idle_s: float = 10.0, out: TextIO = sys.stdout
) -> int:
    """Print segment changes from the beginning of the topic until ``count`` or ``idle_s`` idle."""
    consumer = AIOKafkaConsumer(
        settings.topic_changes,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    seen = 0
    last = time.monotonic()
    try:
        while (count == 0 or seen < count) and time.monotonic() - last < idle_s:
            batch = await consumer.getmany(timeout_ms=500)
            for msg in (m for messages in batch.values() for m in messages):
                if count and seen >= count:
                    break  # (a fetch brings many: --count 3 printed 80)
                if msg.value is None:
                    continue
                print(describe_change(codec.loads(msg.value)), file=out, flush=True)
                seen += 1
                last = time.monotonic()
    finally:
        await consumer.stop()
    return seen


def refeedable(letter: dict[str, Any]) -> bytes | None:
    """The original input of a dead letter as one JSON line, or None when it cannot be sent
    again: not a JSON object, or redacted (pseudonymised ids, dropped bytes).

    >>> body = codec.dumps({"event_id": "e1", "customer_id": "c1", "currency": "XYZ"})
    >>> letter = {"value_b64": base64.b64encode(body).decode(), "redaction": None}
    >>> refeedable(letter) == body
    True
    >>> refeedable({"value_b64": base64.b64encode(b"{").decode(), "redaction": None}) is None
    True
    >>> refeedable({**letter, "redaction": "ids_pseudonymised"}) is None
    True
    """
    if letter.get("redaction") is not None:
        return None
    try:
        obj = codec.loads(base64.b64decode(letter.get("value_b64") or ""))
    except (ValueError, codec.DecodeError):
        return None
    return codec.dumps(obj) if isinstance(obj, dict) else None


async def export_dead_letters(
    settings: Settings, out: TextIO, reasons: Collection[str] = (), idle_s: float = 5.0,
) -> Counter[tuple[str, bool]]:
    """Write the original inputs of the dead letters (from the beginning of the topic; only
    those with one of ``reasons``, if given) to ``out`` as JSON lines, for ``streamseg
    produce`` once fixed; return the count per (reason, written).

    Only letters of the input topics (not the worker's own ticks topic), in the order
    :func:`refeed_order` gives.
    """
    inputs = {settings.topic_clickstream, settings.topic_purchases, settings.topic_consent,
              settings.topic_profiles}
    letters: list[Letter] = []
    consumer = AIOKafkaConsumer(
        settings.topic_dead_letters,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    counts: Counter[tuple[str, bool]] = Counter()
    last = time.monotonic()
    try:
        while time.monotonic() - last < idle_s:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                for msg in messages:
                    last = time.monotonic()
                    if msg.value is None:
                        continue
                    letter = codec.loads(msg.value)
                    reason = str(letter.get("reason"))
                    source = letter.get("source") or {}
                    if (reasons and reason not in reasons) or source.get("topic") not in inputs:
                        continue
                    line = refeedable(letter)
                    if line is not None:
                        letters.append(Letter.of(line, (
                            str(source.get("topic")), int(source.get("partition") or 0),
                            int(source.get("offset") or 0))))
                    counts[reason, line is not None] += 1
    finally:
        await consumer.stop()
    lines, mixed = refeed_order(letters)
    for line in lines:
        out.write(line.decode() + "\n")
    if mixed:
        shown = ", ".join(mixed[:10]) + (f" and {len(mixed) - 10} more" if len(mixed) > 10 else "")
        print(f"streamseg dead-letters: {len(mixed)} customer(s) with a withdrawal or erasure "
              "dated before one of their consent grants (or not dated): the grants are written "
              "first, so a re-fed grant never undoes a withdrawal; if one of them consented "
              f"again after withdrawing, send that grant again: {shown}", file=sys.stderr)
    return counts


class Letter(NamedTuple):
    """A dead letter's original input, with what :func:`refeed_order` sorts it by."""

    time: float  # its event time; +inf when it does not read
    source: tuple[str, int, int]  # topic, partition, offset it came from
    consent: str | None  # the customer id of a consent record, else None
    restrictive: bool  # a withdrawal or an erasure
    line: bytes

    @classmethod
    def of(cls, line: bytes, source: tuple[str, int, int]) -> Letter:
        obj = codec.loads(line)
        ts, etype, cid = obj.get("ts"), obj.get("type"), obj.get("customer_id")
        try:
            t = parse_ts(ts) if isinstance(ts, str) else math.inf
        except ValueError:
            t = math.inf
        consent = isinstance(etype, str) and etype in CONSENT_TYPES and isinstance(cid, str)
        return cls(t, source, cid if consent else None,
                   consent and etype in RESTRICTIVE, line)


def refeed_order(letters: list[Letter]) -> tuple[list[bytes], list[str]]:
    """The lines in the order to send them again, and the customers whose consent records
    were put in another order than their times.

    By event time (key-less events of one customer were spread over partitions), an
    unreadable time last, ties by source. But a customer with both a grant and a
    withdrawal or erasure among the letters gets the grants first and the restrictions
    after them, in the places their times sort to: the engine applies consent in the order
    it reads it, whatever its date, and neither a date (a device clock reset to 2000, a
    time that does not read) nor the order the worker met them in (random across
    partitions for key-less records) tells that order for sure (review 31). A re-fed grant
    never undoes a withdrawal; a customer who really consented again after withdrawing
    stays withdrawn until the grant is sent again.

    >>> def c(ts, t, n):
    ...     return Letter.of(codec.dumps({"customer_id": "c1", "type": t, "ts": ts}),
    ...                      ("consent", n, 0))
    >>> lines, mixed = refeed_order([c("2026-11-17T00:00:00Z", "consent_granted", 0),
    ...                              c("2000-01-01T00:00:00Z", "consent_withdrawn", 1)])
    >>> [codec.loads(x)["type"] for x in lines], mixed
    (['consent_granted', 'consent_withdrawn'], ['c1'])
    """
    order = sorted(letters, key=lambda x: (x.time, x.source))
    places: dict[str, list[int]] = {}
    for i, x in enumerate(order):
        if x.consent is not None:
            places.setdefault(x.consent, []).append(i)
    lines = [x.line for x in order]
    mixed: list[str] = []
    for cid, slots in places.items():
        kinds = [order[i].restrictive for i in slots]
        if all(kinds) or not any(kinds):
            continue
        grants_first = sorted(slots, key=lambda i: order[i].restrictive)  # stable: by time
        if grants_first != slots:
            mixed.append(cid)
        for i, j in zip(slots, grants_first, strict=True):
            lines[i] = order[j].line
    return lines, sorted(mixed)
