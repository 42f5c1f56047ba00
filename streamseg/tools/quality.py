"""``streamseg quality``: the engine's published labels against an independent batch reference.

:func:`streamseg.tools.qualityrun.run_engine` replays an events file exactly like
``streamseg replay`` and keeps what the quality figures need (an
:class:`~streamseg.tools.qualityrun.EngineRun`: every change record, the final states,
the accepted events, and for each purchase the moves it earned). :func:`measure`
compares the labels published at the end with
:func:`streamseg.tools.reference.reference` at the final event clock and adds
the engine-side figures (stale labels, flaps, changes per customer, labels from
untrained models, purchase-to-change latency). :mod:`streamseg.tools.report`
prints them.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pandas as pd

from streamseg.config import Settings
from streamseg.engine.features import CustomerState
from streamseg.engine.flaps import flap_rate
from streamseg.engine.processor import Engine
from streamseg.tools.qualityrun import EngineRun, verdict
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
    rejected = {"dead_letter_reasons": dict(run.rejected.most_common()),
                "first_dead_letters": [{"line": n, "reason": r, "field": f, "message": m}
                                       for n, r, f, m in run.first_rejected]}
    if run.now is None:
        return {"lines": run.lines, "dead_letters": run.dead_letters, "customers": 0,
                **rejected}
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
        "lines": run.lines, "dead_letters": run.dead_letters, **rejected,
        "customers": len(ref),
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
    failed = int(getattr(seg, "failed", 0))
    span = getattr(seg, "span", None)
    why = None
    if version is None:
        why = ("every fit rejected: a repeat purchase lowered the expected purchases "
               f"(almost no repeat buyers; {rejected} fits)" if rejected else
               "every fit failed: the BG/NBD fit raised or gave parameters or scores the "
               f"closed form cannot evaluate ({failed} fits)" if failed else
               "warming up: STREAMSEG_VALUE_WARMUP_DAYS of purchases from "
               "STREAMSEG_VALUE_MIN_CUSTOMERS buyers not reached"
               if span is not None and not span.warm else
               "no fit yet: fewer than STREAMSEG_VALUE_MIN_CUSTOMERS buyers")
    return {"value_model": {"version": version, "rejected_fits": rejected,
                            "failed_fits": failed, "abstains": why}}


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
