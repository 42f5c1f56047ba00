"""``streamseg quality``: the engine's published labels against an independent batch reference.

:func:`run_engine` replays an events file exactly like ``streamseg replay``
(the same :class:`~streamseg.replay.Replayer`, clock-driven ticks up to the
final event clock) and keeps what the quality figures need: every change
record, the final states, the accepted events, and for each purchase the
moves it earned. :func:`measure` compares the labels published at the end with
:func:`streamseg.tools.reference.reference` at the final event clock and adds
the engine-side figures (stale labels, flaps, changes per customer, labels from
untrained models, purchase-to-change latency). :mod:`streamseg.tools.report`
prints them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import pandas as pd

from streamseg.config import Settings
from streamseg.engine.events import Event, Kind, kind_of, parse_ts
from streamseg.engine.features import CustomerState
from streamseg.engine.flaps import flap_rate
from streamseg.engine.processor import Engine
from streamseg.engine.validate import Invalid, Valid
from streamseg.replay import Replayer
from streamseg.tools.reference import (
    activity_rows,
    events_frame,
    history_rows,
    reference,
    rfm_warmup,
)

COMPARED = ("frequency", "lifecycle", "rfm")
MODEL_SEGMENTERS = ("rfm", "cluster", "value")  # their labels need a trained model (version > 0)
SCORES = re.compile(r"R(\d)\s*F(\d)\s*M(\d)")


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
    for raw in lines:
        raw = raw.strip()
        if not raw:
            continue
        run.lines += 1
        decoded = rep.validator.decode(raw)
        checked = decoded if isinstance(decoded, Invalid) else rep.validator.check_record(
            _kind(decoded), None, decoded)
        ev = checked.event if isinstance(checked, Valid) else None
        prev = _published(rep.states.get(ev.customer_id)) if ev is not None else {}
        result = rep.feed(raw)
        if isinstance(result, Invalid) or ev is None:
            run.dead_letters += 1
            continue
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


def engine_labels(run: EngineRun, now: float) -> pd.DataFrame:
    """Per customer: the published label of each segmenter (last change), the engine's raw
    verdict at ``now`` (``<name>_verdict``) and its current R/F/M scores (not published fields)."""
    last: dict[tuple[str, str], str] = {}
    for c in run.changes:
        last[(c["customer_id"], c["segmenter"])] = c["to_segment"]
    rows = []
    rfm = run.engine.segmenter("rfm")
    for cid, state in run.states.items():
        if state.withdrawn:
            continue
        row: dict[str, Any] = {"customer_id": cid}
        for name in COMPARED:
            row[name] = last.get((cid, name))
            row[f"{name}_verdict"] = verdict(run.engine, state, name, now)[0]
        row["r"], row["f"], row["m"] = _scores(rfm, state, now)
        rows.append(row)
    raw = [f"{name}_verdict" for name in COMPARED]
    frame = pd.DataFrame(rows, columns=["customer_id", *COMPARED, *raw, "r", "f", "m"])
    frame[["r", "f", "m"]] = frame[["r", "f", "m"]].astype("Int64")  # not floats (1.0 != 1)
    return frame.set_index("customer_id")


def _scores(seg: Any, state: CustomerState, now: float) -> tuple[Any, ...]:
    if seg is None:
        return None, None, None
    if callable(getattr(seg, "scores", None)):
        got = seg.scores(state, now)
        return (None, None, None) if got is None else tuple(got)
    verdict_ = seg.assign(state, now)
    match = None if verdict_ is None else SCORES.search(verdict_.reason)
    return (None, None, None) if match is None else tuple(int(x) for x in match.groups())


def agreement(ref: pd.Series, pub: pd.Series) -> dict[str, Any]:
    """Agreement (share of customers where the labels are equal) and the confusion matrix
    (reference label -> published label -> customers), over customers where either side
    has a label; a missing label reads ``(none)``.

    >>> a = agreement(pd.Series(["x", "y", None]), pd.Series(["x", "x", None]))
    >>> a["compared"], a["agree"], a["pct"], a["confusion"]
    (2, 1, 50.0, {'x': {'x': 1}, 'y': {'x': 1}})
    """
    both = pd.DataFrame({"ref": ref.astype("object"), "pub": pub.astype("object")})
    both = both[both["ref"].notna() | both["pub"].notna()].fillna("(none)").astype(str)
    agree = int((both["ref"] == both["pub"]).sum())
    confusion: dict[str, dict[str, int]] = {}
    for (r, p), n in both.groupby(["ref", "pub"]).size().items():
        confusion.setdefault(str(r), {})[str(p)] = int(n)
    n = len(both)
    return {"compared": n, "agree": agree, "pct": round(100.0 * agree / n, 2) if n else None,
            "confusion": confusion}


def _quantiles(values: list[float]) -> dict[str, Any]:
    s = pd.Series(values, dtype=float)
    if s.empty:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    return {"n": len(s), "p50": float(s.quantile(0.5)), "p99": float(s.quantile(0.99)),
            "max": float(s.max())}


def measure(run: EngineRun, settings: Settings) -> dict[str, Any]:
    """Every quality figure of one run, as plain data (the ``--json`` output)."""
    if run.now is None:
        return {"lines": run.lines, "dead_letters": run.dead_letters, "customers": 0}
    now = run.now
    withdrawn = {cid for cid, st in run.states.items() if st.withdrawn}
    frame = events_frame(activity_rows(run.events, withdrawn))
    history = events_frame(history_rows(run.events))
    ref = reference(frame, settings, now, history=history)
    pub = engine_labels(run, now).reindex(ref.index)
    agree = {name: agreement(ref[name], pub[name]) for name in COMPARED}
    for name in COMPARED:  # the raw verdict: the segmenter's rules without hysteresis
        agree[name]["verdict_pct"] = agreement(ref[name], pub[f"{name}_verdict"])["pct"]
    for col in ("r", "f", "m"):
        agree[f"rfm_{col}"] = agreement(ref[col], pub[col])
    warmup = rfm_warmup(frame, settings, history=history)
    if not warmup["warm"]:  # the reference abstains for everybody: compare the abstentions
        for key, col, raw in (("rfm", "rfm", "rfm_verdict"), ("rfm_r", "r", None),
                              ("rfm_f", "f", None), ("rfm_m", "m", None)):
            agree[key] = {**abstaining(ref[col], pub[col]), "abstained": warmup["reason"]}
            if raw is not None:
                agree[key]["verdict_pct"] = abstaining(ref[col], pub[raw])["pct"]
    return {
        "lines": run.lines, "dead_letters": run.dead_letters, "customers": len(ref),
        "excluded_no_consent": len(withdrawn), "clock": now,
        "verdict_source": "Engine.verdict" if hasattr(run.engine, "verdict") else
        "fallback (segmenter.assign + pending dwell / margin)",
        "agreement": agree, "stale": _stale(run, now), **_changes(run, settings),
        "latency_s": {"all": _quantiles([x for v in run.latencies.values() for x in v]),
                      **{k: _quantiles(v) for k, v in sorted(run.latencies.items())}},
        "held_latency_s": {k: _quantiles(v) for k, v in sorted(run.held_latencies.items())},
        "moves_not_published": dict(run.unpublished),
        "rfm_warmup": warmup,
        **_value_model(run.engine),
    }


def _value_model(engine: Engine) -> dict[str, Any]:
    """The value model's state at the end, and why ``value`` abstains when it has none."""
    seg = engine.segmenter("value")
    if seg is None:
        return {}
    version = getattr(seg, "version", None)
    rejected = int(getattr(seg, "rejected", 0))
    span = getattr(seg, "span", None)
    why = None
    if version is None:
        why = ("every fit rejected: a repeat purchase lowered the expected purchases "
               f"(almost no repeat buyers; {rejected} fits)" if rejected else
               "warming up: STREAMSEG_VALUE_WARMUP_DAYS of purchases from "
               "STREAMSEG_VALUE_MIN_CUSTOMERS buyers not reached"
               if span is not None and not span.warm else
               "no fit yet: fewer than STREAMSEG_VALUE_MIN_CUSTOMERS buyers")
    return {"value_model": {"version": version, "rejected_fits": rejected, "abstains": why}}


def abstaining(ref: pd.Series, pub: pd.Series) -> dict[str, Any]:
    """:func:`agreement` over every customer, a missing label being the answer ``(none)``:
    used while the reference abstains (RFM before its warm-up), where both sides abstaining
    is agreement.

    >>> a = abstaining(pd.Series([None, None]), pd.Series([None, "x"]))
    >>> a["compared"], a["agree"], a["pct"], a["confusion"]
    (2, 1, 50.0, {'(none)': {'(none)': 1, 'x': 1}})
    """
    none = "(none)"
    return agreement(ref.astype("object").fillna(none), pub.astype("object").fillna(none))


def _stale(run: EngineRun, now: float) -> dict[str, dict[str, int]]:
    """Published labels that differ from the engine's current verdict at ``now``."""
    out: dict[str, dict[str, int]] = {}
    for state in run.states.values():
        if state.withdrawn:
            continue
        for name, seg in state.segments.items():
            raw, held = verdict(run.engine, state, name, now)
            row = out.setdefault(name, {"labels": 0, "stale": 0, "held": 0})
            row["labels"] += 1
            if raw != seg[0]:
                row["held" if held else "stale"] += 1
    return dict(sorted(out.items()))


def _changes(run: EngineRun, settings: Settings) -> dict[str, Any]:
    customers = max(1, sum(1 for st in run.states.values() if not st.withdrawn))
    flaps = flap_rate(run.changes, settings.flap_window_s)
    # twice the window too: a hold that ends with the window (the cluster margin's
    # dwell) can move a revert to just after it, where the flap rate no longer sees it
    late = flap_rate(run.changes, 2 * settings.flap_window_s)
    moves = Counter(c["segmenter"] for c in run.changes if c["from_segment"] is not None)
    untrained = Counter(c["segmenter"] for c in run.changes
                        if c["segmenter"] in MODEL_SEGMENTERS and not c["model_version"])
    current = Counter(name for st in run.states.values() if not st.withdrawn
                      for name, seg in st.segments.items()
                      if name in MODEL_SEGMENTERS and not seg[3])
    names = sorted({c["segmenter"] for c in run.changes})
    return {
        "flaps": {k: {"changes": n, "reverted": r, "rate": round(r / n, 4) if n else 0.0,
                      "reverted_2w": late.by_segmenter[k][1],
                      "rate_2w": round(late.by_segmenter[k][1] / n, 4) if n else 0.0}
                  for k, (n, r) in flaps.by_segmenter.items()},
        "changes_per_customer": {k: round(moves[k] / customers, 3) for k in names},
        "untrained": {k: {"changes": untrained[k], "current": current[k]}
                      for k in MODEL_SEGMENTERS if k in names},
    }
