"""The replay behind ``streamseg quality``: one engine run and the moves its purchases earned.

:func:`run_engine` replays an events file exactly like ``streamseg replay``
(the same :class:`~streamseg.replay.Replayer`, clock-driven ticks up to the
final event clock) and keeps, in an :class:`EngineRun`, what the quality figures
need: every change record, the final states, the accepted events, and for each
purchase the moves it earned (the raw :func:`verdict` against the published label).
:func:`no_hysteresis` gives the settings of a run without hysteresis.
:func:`streamseg.tools.quality.measure` turns the run into the figures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from streamseg.config import Settings
from streamseg.engine.consentlog import applies
from streamseg.engine.events import Event, Kind, kind_of, parse_ts
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine
from streamseg.engine.validate import Invalid, Valid
from streamseg.replay import Replayer


def no_hysteresis(settings: Settings) -> Settings:
    """``settings`` with hysteresis off (``hysteresis=False`` where the engine has it,
    else no dwell and no margin)."""
    names = {f.name for f in fields(settings)}
    off: dict[str, Any] = {"hysteresis": False, "min_dwell_s": 0.0, "min_margin": 0.0}
    return replace(settings, **{k: v for k, v in off.items() if k in names})


def verdict(engine: Engine, state: CustomerState, name: str, now: float) -> tuple[str | None, bool]:
    """``Engine.verdict`` (raw verdict, held by hysteresis); a fallback for engines without it.

    The fallback asks the segmenter for its raw verdict and calls a differing
    published label *held* when a dwell is pending for that verdict, or when a
    distance margin below ``min_margin`` keeps it.
    """
    method = getattr(engine, "verdict", None)
    if method is not None:
        raw, held = method(state, name, now)
        return raw, bool(held)
    seg = engine.segmenter(name)
    got = None if seg is None else seg.assign(state, now)
    raw = None if got is None else got.segment
    published = state.segments.get(name)
    if published is None or raw is None or raw == published[0]:
        return raw, False
    pending = state.pending.get(name)
    by_dwell = pending is not None and pending[0] == raw
    margin = None if got is None else got.margin
    by_margin = margin is not None and margin < engine.settings.min_margin
    return raw, by_dwell or by_margin


FIRST_REJECTED = 3  # rejected lines a report quotes


@dataclass
class EngineRun:
    """What one replay produced (see :func:`run_engine`)."""

    engine: Engine
    changes: list[dict[str, Any]] = field(default_factory=list)
    states: dict[str, CustomerState] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    now: float | None = None
    lines: int = 0
    dead_letters: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # dead letters by reason
    # the first few: (line number, reason, field, message), for a report that says why
    first_rejected: list[tuple[int, str, str | None, str]] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    held_latencies: dict[str, list[float]] = field(default_factory=dict)  # held at the purchase
    unpublished: Counter[str] = field(default_factory=Counter)


def run_engine(lines: Iterable[bytes], settings: Settings) -> EngineRun:
    """Replay ``lines`` (bad lines are counted and skipped, as with ``--dead-letters``).

    A purchase *earns a move* of a segmenter when, right after it, the raw
    verdict differs from the label published just before it (first assignments
    aside). The latency of that move is the event time from the purchase to the
    change that publishes it (0: published at the purchase). A move the
    segmenter's hysteresis holds at the purchase (a demotion within a band or a
    margin: the purchase came late, a mean gap grew) is not good news held back:
    its latency is kept apart (``held_latencies``). A move is *superseded* when
    another label is published first or a later purchase finds another raw
    verdict; superseded moves and those unpublished at the end are counted apart.
    """
    rep = Replayer(settings)
    run = EngineRun(rep.engine)
    names = [seg.name for seg in rep.engine.segmenters]
    pending: dict[tuple[str, str], tuple[str, float, bool]] = {}  # move, purchase, held
    for number, raw in enumerate(lines, 1):
        raw = raw.strip()
        if not raw:
            continue
        run.lines += 1
        decoded = rep.validator.decode(raw)
        checked = decoded if isinstance(decoded, Invalid) else rep.validator.check_record(
            _kind(decoded), None, decoded)
        ev = checked.event if isinstance(checked, Valid) else None
        prev = _published(rep.states.get(ev.customer_id)) if ev is not None else {}
        # an input the engine does not profile for consent (dated while it was withdrawn,
        # or before an erasure; streamseg.engine.consentlog) is no activity of the reference
        gated = ev is not None and ev.kind != "consent" and not applies(
            rep.states.get(ev.customer_id), ev.ts)
        result = rep.feed(raw)
        if isinstance(result, Invalid) or ev is None or rep.admitted is None:
            run.dead_letters += 1
            why = result if isinstance(result, Invalid) else checked
            if isinstance(why, Invalid):
                run.rejected[why.reason] += 1
                if len(run.first_rejected) < FIRST_REJECTED:
                    run.first_rejected.append((number, why.reason, why.field, why.message))
            continue
        ev = rep.admitted  # at the time the engine took it (a withdrawal from 2150: the clock)
        if not gated:
            run.events.append(ev)
        # segment changes only: consent suppression notices (kind "suppression") are not moves
        result = [c for c in result if c.get("kind", "change") == "change"]
        run.changes += result
        resolved: set[str] = set()  # this customer's segmenters whose earned move was published
        for c in result:
            key = (c["customer_id"], c["segmenter"])
            if c["customer_id"] == ev.customer_id and c["trigger"] == "clock":
                prev[c["segmenter"]] = c["to_segment"]  # caught up before the purchase
            if key in pending:
                move, since, held = pending.pop(key)
                if c["to_segment"] == move:
                    resolved.add(c["segmenter"] if key[0] == ev.customer_id else "")
                    into = run.held_latencies if held else run.latencies
                    into.setdefault(c["segmenter"], []).append(parse_ts(c["event_time"]) - since)
                else:
                    run.unpublished["superseded"] += 1
        state = rep.states.get(ev.customer_id)
        if ev.kind != "purchase" or state is None:
            continue
        for name in names:
            earned, held = verdict(rep.engine, state, name, ev.ts)
            key = (ev.customer_id, name)
            if key in pending and pending[key][0] != earned:  # the raw verdict moved on
                del pending[key]
                run.unpublished["superseded"] += 1
            if (earned is None or prev.get(name) is None or earned == prev[name]
                    or name in resolved):
                continue
            if state.segments.get(name, [None])[0] == earned:
                run.latencies.setdefault(name, []).append(0.0)
            else:  # still the same move at a later purchase: the earliest purchase counts
                pending.setdefault(key, (earned, ev.ts, held))
    run.unpublished["at_end"] += len(pending)
    run.states, run.now = rep.states, rep.clock.now()
    return run


def _kind(record: Any) -> Kind:
    return kind_of(record) if isinstance(record, dict) else "click"


def _published(state: CustomerState | None) -> dict[str, str]:
    """The labels published for ``state`` (a copy: the state changes in place)."""
    return {} if state is None else {name: str(seg[0]) for name, seg in state.segments.items()}
