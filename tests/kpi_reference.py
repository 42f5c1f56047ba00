"""A batch reference of the KPIs per segment, over raw events and the published changes.

Written from the definitions (README "KPIs per segment"), not from the engine:
walk the inputs in order; for each applied click or purchase event, the
customer's published segment per segmenter is the ``to_segment`` of the latest
``segment-changes`` record of (customer, segmenter) published for an earlier
input, or for this input and dated before the event (the clock moves due before
it); ``none`` if there is none. Sessions, conversions and repeat purchases are
recomputed here from the raw events. Which inputs were applied: valid (the
replay did not reject the line), first copy of an event id per customer, and no
consent withdrawal in force.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from streamseg.config import DAY, Settings
from streamseg.engine.events import kind_of, parse_ts
from streamseg.engine.validate import Invalid
from streamseg.replay import Replayer

Cell = dict[str, float]
FIELDS = ("revenue", "orders", "repeat_orders", "sessions", "converted")


def run(lines: Iterable[bytes], settings: Settings) -> tuple[Replayer, list[Any]]:
    """Replay ``lines``; per line, (decoded record or None if rejected, changes published)."""
    import orjson

    rep = Replayer(settings)
    out: list[Any] = []
    for raw in lines:
        got = rep.feed(raw)
        out.append((None, []) if isinstance(got, Invalid) else (orjson.loads(raw), got))
    return rep, out


def batch_kpis(
    inputs: Iterable[tuple[dict[str, Any] | None, list[dict[str, Any]]]],
    segmenters: Iterable[str],
    settings: Settings,
) -> dict[str, dict[str, Cell]]:
    """Segmenter -> segment -> sums, from (record, changes published for it) in input order."""
    names = tuple(segmenters)
    gap_s = settings.session_gap_minutes * 60.0
    repeat_s = settings.kpi_repeat_days * DAY
    published: dict[tuple[str, str], str] = {}
    seen: set[tuple[str, str]] = set()
    withdrawn: set[str] = set()
    # per customer: [(session id, session no) of the sessions with an id, max event time,
    #                 events, sessions, session nos converted, max purchase time]
    cust: dict[str, list[Any]] = {}
    out: dict[str, dict[str, Cell]] = {}

    def publish(changes: Iterable[dict[str, Any]]) -> None:
        for c in changes:
            if c["kind"] == "change":
                published[(c["customer_id"], c["segmenter"])] = c["to_segment"]

    for record, changes in inputs:
        if record is None:
            continue
        kind = kind_of(record)
        cid = str(record["customer_id"])
        ts = parse_ts(str(record["ts"]))
        if kind == "consent":
            if record["type"] == "consent_withdrawn":
                withdrawn.add(cid)
            elif record["type"] == "consent_granted":
                withdrawn.discard(cid)
            publish(changes)
            continue
        publish(c for c in changes if c["customer_id"] == cid and parse_ts(c["event_time"]) < ts)
        later = [c for c in changes if not (c["customer_id"] == cid
                                            and parse_ts(c["event_time"]) < ts)]
        if cid in withdrawn or (cid, record["event_id"]) in seen:
            publish(later)
            continue
        seen.add((cid, record["event_id"]))
        c = cust.setdefault(cid, [[], None, 0, 0, set(), None])
        sid = record.get("session_id")
        # the ids known: the current session's and those of the 8 sessions with an id before it
        with_id = c[0][-9:] if c[0] and c[0][-1][1] == c[3] else c[0][-8:]
        known = {k: n for k, n in with_id}
        new_session = (
            (sid is not None and sid not in known)
            or (sid is None and (record.get("type") == "session_start"
                                 or c[2] == 0 or ts - c[1] > gap_s))
        )
        if new_session:
            c[3] += 1
            if sid is not None:
                c[0].append((sid, c[3]))
                known[sid] = c[3]
        c[1] = ts if c[1] is None else max(c[1], ts)
        c[2] += 1
        purchase = kind == "purchase"
        add = dict.fromkeys(FIELDS, 0.0)
        add["sessions"] = float(new_session)
        if purchase:
            add["revenue"] = float(record["amount"]) * settings.fx_table()[record["currency"]]
            add["orders"] = 1.0
            add["repeat_orders"] = float(c[5] is not None and 0.0 <= ts - c[5] <= repeat_s)
            session = c[3] if sid is None else known[sid]  # no id: the current session
            add["converted"] = float(session not in c[4])
            c[4].add(session)
            c[5] = ts if c[5] is None else max(c[5], ts)
        if purchase or new_session:
            for name in names:
                cell = out.setdefault(name, {}).setdefault(
                    published.get((cid, name), "none"), dict.fromkeys(FIELDS, 0.0))
                for k, v in add.items():
                    cell[k] += v
        publish(later)
    return out
