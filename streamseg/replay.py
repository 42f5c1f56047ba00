"""``streamseg replay``: the worker's engine over a JSON-lines file, no broker.

Each line is decoded, its stream guessed (:func:`~streamseg.engine.events.kind_of`),
validated with the worker's :class:`~streamseg.engine.validate.Validator`,
screened against the event clock and folded into the customer's state with
:meth:`Engine.apply`, exactly as the Faust agent does. After every event the
event-time clock (:class:`~streamseg.engine.clock.EventClock`) is asked which
customers are due for a time-driven re-evaluation, and those get
:meth:`Engine.tick` (see :meth:`Replayer.advance`), so a customer who stops
buying becomes ``lapsed`` in a replay too.

Examples
--------
>>> lines = [
...     b'{"event_id":"e1","customer_id":"c1","ts":"2026-01-01T00:00:00Z",'
...     b'"order_id":"o1","amount":20,"currency":"EUR"}',
...     b'{"event_id":"e2","customer_id":"c2","type":"page_view","ts":"2026-08-01T00:00:00Z"}',
... ]
>>> cfg = Settings(allowed_lateness_s=0.0, max_future_skew_s=365 * DAY)
>>> changes = list(replay_lines(lines, cfg))
>>> [(c["customer_id"], c["segmenter"], c["to_segment"], c["trigger"]) for c in changes][:2]
[('c1', 'frequency', 'one_time', 'event'), ('c1', 'lifecycle', 'new', 'event')]
>>> ("c1", "lifecycle", "lapsed", "clock") in [
...     (c["customer_id"], c["segmenter"], c["to_segment"], c["trigger"]) for c in changes]
True
>>> bad = [b'{"event_id":"e3","customer_id":"c3","type":"page_view","ts":"soon"}']
>>> list(replay_lines(bad, Settings(), path="in.jsonl"))
Traceback (most recent call last):
...
streamseg.errors.InputFileError: in.jsonl:1: field ts: schema_invalid: "soon" is not a "date-time"
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from streamseg import codec
from streamseg.config import DAY, Settings  # noqa: F401 - DAY for the doctests
from streamseg.engine.clock import EventClock
from streamseg.engine.deadletters import dead_letter
from streamseg.engine.events import Event, kind_of
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine, Outcome
from streamseg.engine.scheduler import Schedule
from streamseg.engine.validate import Invalid, Valid, Validator
from streamseg.errors import InputFileError


class EngineSchedule:
    """The engine's due times (:meth:`Engine.due`) in a :class:`Schedule` heap.

    It also remembers the event time each customer was last ticked at, so the
    next tick starts its walk there (:meth:`Engine.tick` ``after``).

    >>> from streamseg.engine.events import Event
    >>> eng = Engine(Settings())
    >>> out = eng.apply(None, Event("purchase", "purchase", "e1", "c1", 0.0, amount=5.0))
    >>> q = EngineSchedule(eng)
    >>> q.touch(out.state, 0.0)
    >>> q.due(30 * DAY), q.due(31 * DAY)  # "new" ends 30 days (+1 s) after the purchase
    ([], ['c1'])
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.schedule = Schedule()
        self.ticked: dict[str, float] = {}

    def touch(self, state: CustomerState, now: float, tick: bool = False,
              due: float | None = None, known: bool = False) -> None:
        """Schedule ``state`` at its next due time (``due`` when ``known``, as the engine
        planned it in :attr:`Outcome.due`), strictly after ``now``."""
        cid = state.customer_id
        if tick:
            self.ticked[cid] = now
        elif self.ticked:
            self.ticked.pop(cid, None)
        self.schedule.push(cid, due if known else self.engine.due(state, now))

    def forget(self, customer_id: str) -> None:
        self.schedule.push(customer_id, None)
        self.ticked.pop(customer_id, None)

    def due(self, now: float) -> list[str]:
        return self.schedule.pop_due(now)


class Replayer:
    """Customer states in a dict, the event clock and the engine: one replay run."""

    def __init__(
        self, settings: Settings, engine: Engine | None = None
    ) -> None:
        self.settings = settings
        self.engine = engine or Engine(settings)
        self.validator = Validator(settings)
        self.clock = EventClock(settings.allowed_lateness_s)
        self.due = EngineSchedule(self.engine)
        self.states: dict[str, CustomerState] = {}
        self.counts: Counter[str] = Counter()
        # the last valid input as the engine applied it (Engine.accept), None after a refusal
        self.admitted: Event | None = None

    def feed(self, raw: bytes) -> list[dict[str, Any]] | Invalid:
        """One input line: its changes (event first, then clock-driven) or why it was rejected."""
        record = self.validator.decode(raw)  # the same size and JSON checks as the worker
        result: Valid | Invalid = record if isinstance(record, Invalid) else (
            self.validator.check_record(
                kind_of(record) if isinstance(record, dict) else "click", None, record
            )
        )
        self.admitted = None
        if not isinstance(result, Invalid):
            # where the ticks have got to: a late event is evaluated there (Engine.apply)
            look = self.clock.now()
            # Engine.ingest in two halves: a withdrawal or erasure dated where no event is
            # accepted runs at the event clock (Engine.admit), so its changes and re-scores
            # are at that time, not its own (the worker: streamseg.apply)
            admitted = self.engine.accept(result.event, self.clock,
                                          self.states.get(result.event.customer_id))
            if not isinstance(admitted, Invalid):
                self.admitted = ev = admitted
                outcome = self.engine.apply(self.states.get(ev.customer_id), ev,
                                            self.engine.look_for(ev, self.clock, look))
                changes = self._settle(ev.customer_id, outcome, ev.ts)
                return changes + self.rescore(ev.ts) + self.advance()
            result = admitted
        self.counts["dead_letter"] += 1
        return result

    def rescore(self, now: float) -> list[dict[str, Any]]:
        """The population hook: re-score the customers a population model moved for."""
        changes: list[dict[str, Any]] = []
        for cid in self.engine.moved():
            state = self.states.get(cid)
            if state is not None:
                self.counts["rescore"] += 1
                out = self.engine.rescore(state, now)
                changes += self._settle(cid, out, out.at if out.at is not None else now, tick=True)
        return changes

    def advance(self) -> list[dict[str, Any]]:
        """The clock hook: tick every customer due at the event clock's ``now()``."""
        now = self.clock.now()
        if now is None:
            return []
        changes: list[dict[str, Any]] = []
        for cid in self.due.due(now):
            state = self.states.get(cid)
            if state is not None:
                self.counts["tick"] += 1
                out = self.engine.tick(state, now, self.due.ticked.get(cid))
                changes += self._settle(cid, out, now, tick=True)
        return changes

    def _settle(
        self, cid: str, outcome: Outcome, now: float, tick: bool = False
    ) -> list[dict[str, Any]]:
        if not tick:
            self.counts["erased" if outcome.erased else (outcome.skipped or "processed")] += 1
        if outcome.state is None or outcome.erased:
            self.due.forget(cid)
            if outcome.state is None:
                self.states.pop(cid, None)
            else:  # the suppression marker of an erasure
                self.states[cid] = outcome.state
            return []
        self.states[cid] = outcome.state
        if not outcome.skipped:
            self.due.touch(outcome.state, now, tick, outcome.due, outcome.due_known)
        self.counts["changes"] += len(outcome.changes)
        # consent suppression notices go to segment-changes too, as in the worker
        return outcome.changes + outcome.notices if outcome.notices else outcome.changes

    def segments(self) -> Iterator[dict[str, Any]]:
        """The final ``customer-segments`` record of every customer with a segment.

        A customer who withdrew consent gets the worker's ``suppressed`` record
        (no segments); its ``event_time`` here is the last segment change's.
        """
        for state in self.states.values():
            if state.segments and not state.erased:
                last = max(float(seg[1]) for seg in state.segments.values())
                yield self.engine.segments_record(state, last)


DeadLetterSink = Callable[[dict[str, Any]], None]


def replay_lines(
    lines: Iterable[bytes],
    settings: Settings,
    path: str = "<input>",
    dead_letters: DeadLetterSink | None = None,
    replayer: Replayer | None = None,
) -> Iterator[dict[str, Any]]:
    """Replay JSON lines; yield the segment-change records the worker would publish.

    A bad line raises :class:`InputFileError` (``FILE:LINE: field X: message``)
    unless ``dead_letters`` is given: then it receives the dead-letter record
    (source topic = ``path``, partition 0, offset = line number; with
    ``STREAMSEG_PSEUDONYMISE_KEY`` redacted as the worker's) and the replay goes on.
    """
    rep = replayer or Replayer(settings)
    for number, line in enumerate(lines, start=1):
        raw = line.strip()
        if not raw:
            continue
        result = rep.feed(raw)
        if isinstance(result, Invalid):
            if dead_letters is None:
                raise InputFileError(path, number, result.field,
                                     f"{result.reason}: {result.message}")
            # the worker's own record: redacted alike with STREAMSEG_PSEUDONYMISE_KEY
            dead_letters(dead_letter(result, path, 0, number, None, raw,
                                     secret=rep.settings.pseudonymise_key))
            continue
        yield from result


def _progress(handle: IO[bytes], total: int, quiet: bool) -> Iterator[bytes]:
    """Lines of ``handle`` with a tqdm bar on stderr (bytes read of ``total``)."""
    from tqdm import tqdm

    disable = quiet or not sys.stderr.isatty()
    with tqdm(total=total, unit="B", unit_scale=True, disable=disable, file=sys.stderr,
              desc="replay") as bar:
        done = 0
        for i, line in enumerate(handle):
            done += len(line)
            if i % 4096 == 4095:
                bar.update(done)
                done = 0
            yield line
        bar.update(done)


def run(
    path: Path,
    settings: Settings,
    out: IO[bytes],
    segments_out: IO[bytes] | None = None,
    dead_letters_out: IO[bytes] | None = None,
    quiet: bool = False,
) -> Counter[str]:
    """Replay ``path``: write changes (and segments, dead letters); return the counts."""
    try:
        handle = path.open("rb")
        total = path.stat().st_size
    except OSError as exc:
        raise InputFileError(str(path), None, None, exc.strerror or str(exc)) from None
    sink: DeadLetterSink | None = None
    if dead_letters_out is not None:
        dl_out = dead_letters_out

        def sink(record: dict[str, Any]) -> None:
            dl_out.write(codec.dumps(record) + b"\n")

    rep = Replayer(settings)
    with handle:
        for change in replay_lines(_progress(handle, total, quiet), settings, str(path), sink, rep):
            out.write(codec.dumps(change) + b"\n")
    if segments_out is not None:
        for record in rep.segments():
            segments_out.write(codec.dumps(record) + b"\n")
    rep.counts["customers"] = len(rep.states)
    rep.counts["with_attributes"] = sum(1 for s in rep.states.values() if s.attributes)
    return rep.counts


def open_out(name: str | None) -> contextlib.AbstractContextManager[IO[bytes] | None]:
    """An output file by name: ``-`` is stdout, None is no output."""
    if name is None:
        return contextlib.nullcontext(None)
    if name == "-":
        return contextlib.nullcontext(sys.stdout.buffer)
    try:
        return open(name, "wb")
    except OSError as exc:
        raise InputFileError(name, None, None, exc.strerror or str(exc)) from None


def cli(args: argparse.Namespace, settings: Settings) -> int:
    """``streamseg replay FILE [--out F] [--segments-out F] [--dead-letters F] [--quiet]``."""
    with (
        open_out(args.out) as out,
        open_out(args.segments_out) as seg_out,
        open_out(args.dead_letters) as dl_out,
    ):
        assert out is not None
        counts = run(args.file, settings, out, seg_out, dl_out, quiet=args.quiet)
    summary = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    print(f"replayed {args.file}: {summary}", file=sys.stderr)
    return 0
