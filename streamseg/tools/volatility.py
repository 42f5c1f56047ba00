"""How much the RFM (or frequency) definition itself moves: the batch reference at every
day's end.

``streamseg quality EVENTS --rfm-daily`` recomputes the batch reference's named RFM
segment (:func:`streamseg.tools.reference.rfm`, the definition the stream is checked
against) at the end of every buying day of the file, from the purchases before it,
without running the engine. Read as the label sequence a marketer would get from a
daily batch job, it shows how volatile the definition is on this data, before any
streaming: how many buyers change segment per day, and how many of those changes a
later day undoes within ``STREAMSEG_FLAP_WINDOW_S`` (the flap rate of
:func:`streamseg.engine.flaps.flap_rate`).

It also prices damping. For a dwell of ``k`` days, a new daily label is published
only once it has held ``k`` further days (k = 0: at once); per dwell the report gives
the flap rate of the published sequence and its agreement with the definition
(share of buyers whose published label is the day's batch label: the mean and the
worst day, and the last day). A setting that damps the stream (a margin, a dwell)
cannot agree with the definition more often than the definition keeps its labels:
where the daily batch labels themselves flap by tens of percent, a low flap rate
and a high agreement exclude each other.

``--freq-daily`` does the same for the frequency tier
(:func:`streamseg.tools.reference.frequency`, :func:`daily_frequency`): the tier a
daily batch job would publish, with no band. On Complete Journey it flaps 9.0% (526
of 5,832 changes undone within 14 days), on Instacart 8.1% (91 of 1,124): the
stream's bands already keep most of those back (1.33% and 0.32%).

Examples
--------
>>> dwell(["a", "a", "b", "a", "b", "b", "b"], 0)
['a', 'a', 'b', 'a', 'b', 'b', 'b']
>>> dwell(["a", "a", "b", "a", "b", "b", "b"], 1)
['a', 'a', 'a', 'a', 'a', 'b', 'b']
>>> dwell([None, "a", "b", "b"], 2)
[None, 'a', 'a', 'a']
>>> day_changes("c1", [None, "a", "b", "a"], [86400.0, 172800.0, 259200.0, 345600.0])
... # doctest: +NORMALIZE_WHITESPACE
[{'customer_id': 'c1', 'segmenter': 'rfm', 'from_segment': 'a', 'to_segment': 'b',
  'event_time': '1970-01-04T00:00:00Z'},
 {'customer_id': 'c1', 'segmenter': 'rfm', 'from_segment': 'b', 'to_segment': 'a',
  'event_time': '1970-01-05T00:00:00Z'}]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from streamseg.config import DAY, Settings
from streamseg.engine.clock import EventClock
from streamseg.engine.events import Event, format_ts, kind_of
from streamseg.engine.flaps import flap_rate
from streamseg.engine.processor import Engine
from streamseg.engine.validate import Valid, Validator
from streamseg.tools.reference import (
    CONSENT,
    customers,
    events_frame,
    frequency,
    history_rows,
    rfm,
    rfm_warmup,
    stale_grants,
)

DWELLS = (0, 1, 2, 3, 5, 7, 10, 14)
Label = str | None


def read_history(lines: Iterable[bytes], settings: Settings) -> tuple[pd.DataFrame, int]:
    """The valid events of ``lines`` as reference rows (arrival order); how many were bad.

    Valid as the engine takes them (``Engine.accept``, with no segmenter): an event too far
    ahead of the event clock is bad, and a withdrawal or erasure dated where no event is
    accepted is at the event clock (one dated 2150 made every day to 2150 a day end).
    """
    validator = Validator(settings)
    times, clock = Engine(settings, []), EventClock(settings.allowed_lateness_s)
    events, bad = [], 0
    seen: set[tuple[str, str]] = set()  # (customer, event id): a redelivery counts once
    for raw in lines:
        raw = raw.strip()
        if not raw:
            continue
        record = validator.decode(raw)
        checked = (validator.check_record(kind_of(record), None, record)
                   if isinstance(record, dict) else record)
        before = clock.max_seen
        original = checked.event if isinstance(checked, Valid) else None
        admitted = None if original is None else times.accept(original, clock)
        if not isinstance(admitted, Event):
            bad += 1
            continue
        e = admitted
        if before is None and e is not original:  # moved, and no event before it:
            # the engine took it at the wall clock, before what follows; here it is from
            # the start of the history (at the wall clock, a 2011 file got day ends to now)
            e = dataclasses.replace(e, ts=times.window[0])
        if e.kind not in ("consent", "profile"):
            if (e.customer_id, e.event_id) in seen:
                continue
            seen.add((e.customer_id, e.event_id))
        events.append(e)
    return events_frame(history_rows(events)), bad


def day_ends(history: pd.DataFrame, settings: Settings) -> list[float]:
    """Every buying-day end from the first purchase's day to the last event's day."""
    buys = history.loc[history["type"] == "purchase", "ts"]
    if buys.empty:
        return []
    start = settings.buying_day_start_h * 3600.0
    first = math.floor((float(buys.min()) - start) / DAY) + 1
    last = math.floor((float(history["ts"].max()) - start) / DAY) + 1
    return [d * DAY + start for d in range(first, last + 1)]


def daily_labels(history: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Buyers x day ends: the batch named RFM segment from the events before each day end
    (missing before the customer's first purchase, while the reference is warming, and
    while the customer's latest consent record is a withdrawal or an erasure), with the
    settings' recency (ranks, or ``STREAMSEG_RFM_RECENCY=bands``)."""
    consent = history["type"].isin(CONSENT)
    activity, records = history.loc[~consent], history.loc[consent & ~stale_grants(history)]
    parse_bands = getattr(settings, "rfm_bands", None)
    bands = (parse_bands() if getattr(settings, "rfm_recency", "ranks") == "bands"
             and parse_bands else None)
    columns: dict[float, pd.Series] = {}
    warm = False
    for end in day_ends(history, settings):
        before = activity.loc[activity["ts"] < end]
        warm = warm or bool(rfm_warmup(before, settings, history=history.loc[history["ts"] < end])
                            ["warm"])
        if not warm:
            continue
        columns[end] = rfm(_consenting(before, records, end, settings), True, bands)["rfm"]
    return pd.DataFrame(columns)


def _consenting(before: pd.DataFrame, records: pd.DataFrame, end: float,
                settings: Settings) -> pd.DataFrame:
    """:func:`~streamseg.tools.reference.customers` at ``end`` from the activity ``before``
    it, without those whose latest consent record (``records``) before ``end`` is a
    withdrawal or an erasure."""
    latest = records.loc[records["ts"] < end].groupby("customer_id")["type"].last()
    out = set(latest.index[latest != "consent_granted"])  # withdrawn or erased now
    return customers(before.loc[~before["customer_id"].isin(out)], end, settings)


def daily_frequency(history: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Buyers x day ends: the batch frequency tier from the events before each day end
    (missing before the customer's first purchase, and while the customer's latest consent
    record is a withdrawal or an erasure). No warm-up: a tier needs no population."""
    consent = history["type"].isin(CONSENT)
    activity, records = history.loc[~consent], history.loc[consent & ~stale_grants(history)]
    columns: dict[float, pd.Series] = {}
    for end in day_ends(history, settings):
        c = _consenting(activity.loc[activity["ts"] < end], records, end, settings)
        columns[end] = frequency(c, settings).where(c["purchases"] > 0)
    return pd.DataFrame(columns)


def dwell(labels: Sequence[Label], k: int) -> list[Label]:
    """The published sequence when a new label must hold ``k`` more days first."""
    out: list[Label] = []
    published: Label = None
    candidate: Label = None
    held = 0
    for label in labels:
        if label is None:
            pass
        elif published is None:
            published = label
        elif label == published:
            candidate, held = None, 0
        else:
            held = held + 1 if label == candidate else 1
            candidate = label
            if held > k:
                published, candidate, held = label, None, 0
        out.append(published)
    return out


def day_changes(customer_id: str, labels: Sequence[Label], ends: Sequence[float]
                ) -> list[dict[str, Any]]:
    """A label sequence as segment-change records (first assignments left out)."""
    out = []
    prev: Label = None
    for label, end in zip(labels, ends, strict=True):
        if label is not None and prev is not None and label != prev:
            out.append({"customer_id": customer_id, "segmenter": "rfm", "from_segment": prev,
                        "to_segment": label, "event_time": format_ts(end)})
        if label is not None:
            prev = label
    return out


def measure(history: pd.DataFrame, settings: Settings,
            dwells: Sequence[int] = DWELLS, segmenter: str = "rfm") -> dict[str, Any]:
    """The figures of ``--rfm-daily`` (``segmenter`` "frequency": ``--freq-daily``; the
    ``--json`` output)."""
    table = (daily_frequency if segmenter == "frequency" else daily_labels)(history, settings)
    return {"segmenter": segmenter, **measure_labels(table, settings, dwells)}


def measure_labels(table: pd.DataFrame, settings: Settings,
                   dwells: Sequence[int] = DWELLS) -> dict[str, Any]:
    """Changes, flap rate and agreement per dwell of a customers x day-ends label table
    (customers never labelled, who never bought, left out)."""
    table = table.dropna(how="all")
    ends = [float(e) for e in table.columns]
    rows = [[None if pd.isna(v) else str(v) for v in row]
            for row in table.to_numpy(dtype=object)]
    ids = [str(i) for i in table.index]
    have = np.array([[v is not None for v in row] for row in rows], dtype=bool).reshape(
        len(rows), len(ends))
    truth = np.array(rows, dtype=object).reshape(len(rows), len(ends))
    out: dict[str, Any] = {"buyers": len(ids), "days": len(ends),
                           "window_days": settings.flap_window_s / DAY, "dwell": []}
    for k in dwells:
        published = [dwell(row, k) for row in rows]
        records = [c for cid, row in zip(ids, published, strict=True)
                   for c in day_changes(cid, row, ends)]
        flaps = flap_rate(records, settings.flap_window_s)
        pub = np.array(published, dtype=object).reshape(len(rows), len(ends))
        agree = [float((pub[have[:, j], j] == truth[have[:, j], j]).mean() * 100)
                 for j in range(len(ends)) if have[:, j].any()]
        out["dwell"].append({
            "days": k, "changes": flaps.changes, "reverted": flaps.reverted,
            "flap_pct": round(flaps.rate * 100, 2),
            "changes_per_buyer_day": round(flaps.changes / max(1, int(have.sum())), 4),
            "agree_mean_pct": round(float(np.mean(agree)), 2) if agree else None,
            "agree_min_pct": round(min(agree), 2) if agree else None,
            "agree_last_pct": round(agree[-1], 2) if agree else None,
        })
    return out


def render(figures: dict[str, Any]) -> str:
    """The report as text."""
    from streamseg.tools.report import table

    what = ("Frequency tier, batch reference at each of {} day ends"
            if figures.get("segmenter") == "frequency" else
            "RFM named segment, batch reference at each of {} day ends (after the warm-up)")
    head = (f"{what.format(figures['days'])}, {figures['buyers']} buyers; flap = reverted within "
            f"{figures['window_days']:g} days")
    rows = [[d["days"], d["changes"], d["changes_per_buyer_day"], d["flap_pct"],
             d["agree_mean_pct"], d["agree_min_pct"], d["agree_last_pct"]]
            for d in figures["dwell"]]
    return head + "\n" + table(rows, ["dwell (days)", "changes", "per buyer-day", "flap %",
                                      "agree mean %", "agree worst day %", "agree last day %"])
