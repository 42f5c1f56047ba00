"""Batch reference of ``streamseg quality``: the target segment definitions in plain pandas.

Computed from the accepted events alone at one event-time clock ``now``, never
by calling the segmenters, so that it can catch them out. Each function below
quotes its definition (README, "Segment definitions") and implements it in a
few lines. Times before ``now`` count in days; a purchase after ``now`` (inside
the allowed lateness) counts as "0 days ago".

Examples
--------
>>> ev = events_frame([
...     ("a", "purchase", 0 * DAY, 10.0), ("a", "purchase", 10 * DAY, 30.0),
...     ("b", "purchase", 5 * DAY, 30.0), ("c", "page_view", 9 * DAY, 0.0)])
>>> ref = reference(ev, Settings(), now=20 * DAY, warmup_days=5, min_samples=2)
>>> for row in ref[["frequency", "lifecycle", "r", "f", "m", "rfm"]].itertuples():
...     print(*row)
a medium new 3 3 3 need_attention
b one_time new 1 1 1 lost
c prospect prospect <NA> <NA> <NA> <NA>
>>> rfm_warmup(ev, Settings(), warmup_days=5)["reason"]  # 2 buyers, default 20
'2 buyers < 20 (STREAMSEG_RFM_MIN_SAMPLES)'
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from sortedcontainers import SortedList

from streamseg.config import DAY, Settings
from streamseg.engine.consentlog import UNDATED_S
from streamseg.engine.events import RESTRICTIVE, Event
from streamseg.engine.segmenters.rfm import segment_of

COLUMNS = ["customer_id", "type", "ts", "amount"]


def events_frame(rows: Iterable[tuple[str, str, float, float]]) -> pd.DataFrame:
    """(customer_id, type, ts in epoch seconds, amount in the base currency) rows."""
    return pd.DataFrame(list(rows), columns=COLUMNS)


def _row(e: Event) -> tuple[str, str, float, float]:
    """An event as a reference input row: a purchase, or its click or consent type."""
    return e.customer_id, e.kind if e.kind == "purchase" else e.type, e.ts, e.amount


def activity_rows(events: list[Event], skip: set[str]) -> Iterable[tuple[str, str, float, float]]:
    """The reference's input rows from accepted engine events: each (customer, event id)
    once, no consent or profile records (not activity), no ``skip``."""
    seen: set[tuple[str, str]] = set()
    for e in events:
        if (e.kind in ("consent", "profile") or e.customer_id in skip
                or (e.customer_id, e.event_id) in seen):
            continue
        seen.add((e.customer_id, e.event_id))
        yield _row(e)


def history_rows(events: list[Event]) -> Iterable[tuple[str, str, float, float]]:
    """Every accepted event in arrival order, consent records (their type) and withdrawn
    customers included, profile records aside: the input of the reference's RFM warm-up."""
    for e in events:
        if e.kind != "profile":
            yield _row(e)


def customers(events: pd.DataFrame, now: float, s: Settings) -> pd.DataFrame:
    """One row per customer: purchases, first/last purchase, total spend, days since each."""
    buys = events[events["type"] == "purchase"].sort_values(["customer_id", "ts"], kind="stable")
    per = buys.groupby("customer_id")
    c = pd.DataFrame({"last_activity": events.groupby("customer_id")["ts"].max()})
    c["purchases"] = per.size().reindex(c.index, fill_value=0)
    # buying days: distinct days with a purchase, each day starting at buying_day_start_h UTC
    day = (buys["ts"] - getattr(s, "buying_day_start_h", 0.0) * 3600.0) // DAY
    c["buying_days"] = day.groupby(buys["customer_id"]).nunique().reindex(c.index, fill_value=0)
    c["first"] = per["ts"].min()
    c["last"] = per["ts"].max()
    # the exact sum of the amounts (order-independent), to 6 decimals as the engine keeps it
    c["total"] = per["amount"].agg(math.fsum).round(6)
    # reactivation: a purchase made more than at_risk_days after the previous one
    gap_days = (buys["ts"] - per["ts"].shift()) / DAY
    c["reactivated_at"] = buys[gap_days > s.at_risk_days].groupby("customer_id")["ts"].max()
    for col, ref in (("last", "since_last"), ("first", "since_first"),
                     ("last_activity", "idle"), ("reactivated_at", "since_reactivated")):
        c[f"days_{ref}"] = ((now - c[col]) / DAY).clip(lower=0.0)
    return c


def frequency(c: pd.DataFrame, s: Settings) -> pd.Series:
    """``prospect`` (no purchase); ``lapsed`` (last purchase > lapsed_days ago at the clock);
    ``one_time`` (purchases on one buying day only, not lapsed); else interval = max(mean gap =
    (last - first purchase time)/(buying days - 1), tenure interval = (clock - first purchase
    time)/buying days) in days, buying days = distinct days with a purchase (days start at
    ``buying_day_start_h`` UTC); ``high`` if
    interval <= freq_high_max_days and buying days >= freq_high_min_days, ``medium`` if
    <= freq_medium_max_days, else ``low``.
    """
    n = c["buying_days"]
    mean_gap = (c["last"] - c["first"]) / DAY / (n - 1)
    tenure = c["days_since_first"] / n
    interval = np.maximum(mean_gap, tenure)
    return _select(c, [
        (c["purchases"] == 0, "prospect"),
        (c["days_since_last"] > s.lapsed_days, "lapsed"),
        (n == 1, "one_time"),
        ((interval <= s.freq_high_max_days) & (n >= s.freq_high_min_days), "high"),
        (interval <= s.freq_medium_max_days, "medium"),
    ], "low")


def lifecycle(c: pd.DataFrame, s: Settings) -> pd.Series:
    """Buyers: ``lapsed`` (since last purchase > lapsed_days) > ``at_risk`` (> at_risk_days) >
    ``reactivated`` (latest purchase that followed a gap > at_risk_days since the previous
    purchase, made <= reactivated_days ago) > ``new`` (first purchase <= new_days ago) >
    ``active``. Never-purchased visitors: ``prospect`` (last activity <= at_risk_days ago),
    ``inactive_prospect`` (older).
    """
    buyer = c["purchases"] > 0
    return _select(c, [
        (~buyer & (c["days_idle"] <= s.at_risk_days), "prospect"),
        (~buyer, "inactive_prospect"),
        (c["days_since_last"] > s.lapsed_days, "lapsed"),
        (c["days_since_last"] > s.at_risk_days, "at_risk"),
        (c["days_since_reactivated"] <= s.reactivated_days, "reactivated"),
        (c["days_since_first"] <= s.new_days, "new"),
    ], "active")


def score(values: pd.Series) -> pd.Series:
    """Score of a value v among N customers = 1 + floor(5 * below / N), below = number of
    customers with a strictly worse value (ties share the lowest score).

    >>> score(pd.Series([10.0, 20.0, 20.0, 30.0, 40.0])).tolist()
    [1, 2, 2, 4, 5]
    """
    below = values.rank(method="min") - 1
    return (1 + np.floor(5 * below / len(values))).astype("Int64")


def recency_bands(days: pd.Series, bands: list[float]) -> pd.Series:
    """``rfm_recency="bands"``: R5 if days since the last purchase <= bands[0], R4 if <=
    bands[1], R3 if <= bands[2], R2 if <= bands[3], else R1.

    >>> recency_bands(pd.Series([0.0, 14.0, 14.5, 180.0, 181.0]), [14, 30, 90, 180]).tolist()
    [5, 5, 4, 2, 1]
    """
    r = pd.Series(1, index=days.index, dtype="Int64")
    for r_score, upper in zip((2, 3, 4, 5), reversed(bands), strict=True):
        r[days <= upper] = r_score
    return r


def rfm_warmup(
    events: pd.DataFrame, s: Settings, warmup_days: float | None = None,
    min_samples: int | None = None, history: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """RFM's warm-up: RFM abstains *until* the purchases seen span ``rfm_warmup_days`` AND
    there are ``rfm_min_samples`` buyers (customers with >= 1 purchase); once warm it
    stays warm. The span runs from the ``rfm_min_samples``-th earliest first purchase
    (one per customer) to the newest purchase: one stray old order does not make it.
    ``buyers`` and ``span_days`` are counted at the final clock from ``events``;
    ``reason`` says why RFM abstains (None when warm).

    Without consent changes both counts only grow, so "warm at the final clock" is
    "was ever warm". ``history`` (every accepted event in arrival order, consent
    records and withdrawn customers included, ``type`` = the consent type) settles
    the rest (:func:`ever_warm`): a buyer who withdrew after the warm-up does not end it.

    >>> ev = events_frame([("a", "purchase", 0.0, 1.0), ("b", "purchase", 0.0, 1.0),
    ...                    ("b", "purchase", 2 * DAY, 1.0)])
    >>> w = rfm_warmup(ev, Settings(), warmup_days=2, min_samples=2)
    >>> w["buyers"], w["span_days"], w["warm"], w["reason"]
    (2, 2.0, True, None)
    >>> late = events_frame([("old", "purchase", -100 * DAY, 1.0), ("b", "purchase", 0.0, 1.0)])
    >>> rfm_warmup(late, Settings(), warmup_days=2, min_samples=2)["span_days"]  # not 100
    0.0
    >>> for why in rfm_warmup(ev, Settings(), min_samples=3)["reason"].split("; "):
    ...     print(why)
    purchases span 2.0 d < 90 d (STREAMSEG_RFM_WARMUP_DAYS)
    2 buyers < 3 (STREAMSEG_RFM_MIN_SAMPLES)
    """
    warmup = float(getattr(s, "rfm_warmup_days", 90.0) if warmup_days is None else warmup_days)
    least = int(getattr(s, "rfm_min_samples", 20) if min_samples is None else min_samples)
    buys = events.loc[events["type"] == "purchase"]
    firsts = buys.groupby("customer_id")["ts"].min().sort_values()
    buyers = len(firsts)
    span_days = (float((buys["ts"].max() - firsts.iloc[min(least, buyers) - 1]) / DAY)
                 if buyers else 0.0)
    why = []
    if span_days < warmup:
        why.append(f"purchases span {span_days:.1f} d < {warmup:g} d (STREAMSEG_RFM_WARMUP_DAYS)")
    if buyers < least:
        why.append(f"{buyers} buyers < {least} (STREAMSEG_RFM_MIN_SAMPLES)")
    warm = not why
    if history is not None and history["type"].isin(CONSENT).any():
        warm = ever_warm(history, warmup * DAY, least)
        why = [] if warm else why or ["never warm in arrival order (consent changes)"]
    return {"buyers": buyers, "min_samples": least, "span_days": round(span_days, 3),
            "warmup_days": warmup, "warm": warm, "reason": "; ".join(why) or None}


CONSENT = ("consent_withdrawn", "consent_granted", "erasure_requested")


def stale_grants(history: pd.DataFrame) -> pd.Series:
    """Rows of ``history`` (arrival order) that are grants dated at or before an earlier
    row's withdrawal or erasure of the same customer: the engine does not apply them.

    >>> h = events_frame([("a", "consent_withdrawn", 3.0, 0.0), ("a", "consent_granted", 2.0, 0.0),
    ...                   ("a", "consent_granted", 4.0, 0.0)])
    >>> stale_grants(h).tolist()
    [False, True, False]
    """
    restrictive = history["type"].isin(RESTRICTIVE)
    by = history["customer_id"]
    # a restriction dated more than UNDATED_S behind the latest time read so far counts
    # from that time (streamseg.engine.consentlog.counted_from); the latest so far per
    # customer (cummax leaves the other rows empty)
    reached = history["ts"].cummax()
    applied = reached.where(reached - history["ts"] > UNDATED_S, history["ts"])
    latest = applied.where(restrictive).groupby(by).cummax().groupby(by).ffill()
    return (history["type"] == "consent_granted") & (history["ts"] <= latest)


def ever_warm(history: pd.DataFrame, warmup_s: float, least: int) -> bool:
    """Whether, after some event of ``history`` (arrival order), the purchases seen span
    ``warmup_s`` (from the ``least``-th earliest first purchase of a customer in the
    population) and ``least`` consenting buyers are in the population. A withdrawal takes
    a buyer and its first purchase out (its later events are ignored) until consent is
    granted again; an erasure also deletes its purchases (a fresh profile's first
    purchase is the customer's).

    >>> h = events_frame([("a", "purchase", 0.0, 1.0), ("b", "purchase", 0.0, 1.0),
    ...                   ("b", "consent_withdrawn", DAY, 0.0), ("a", "purchase", 2 * DAY, 1.0)])
    >>> ever_warm(h, 2 * DAY, 2), ever_warm(h, 2 * DAY, 1)  # b withdrew before the span
    (False, True)
    """
    population: set[str] = set()
    bought: set[str] = set()  # customers with purchases in their current profile
    out: set[str] = set()  # consent withdrawn (or erased) and not granted again
    kept: dict[str, float] = {}  # customer -> first purchase of its current profile
    firsts: SortedList[float] = SortedList()  # those of the customers in the population
    last = None
    history = history.loc[~stale_grants(history)]  # not applied by the engine either
    for cid, kind, ts in zip(history["customer_id"], history["type"], history["ts"],
                             strict=True):
        if kind in ("consent_withdrawn", "erasure_requested"):
            out.add(cid)
            if cid in population:
                population.discard(cid)
                firsts.remove(kept[cid])
            if kind == "erasure_requested":
                bought.discard(cid)
                kept.pop(cid, None)
            continue
        if kind == "consent_granted":
            out.discard(cid)
            if cid in bought and cid not in population:
                population.add(cid)
                firsts.add(kept[cid])
        elif kind != "purchase" or cid in out:
            continue
        else:
            bought.add(cid)
            old = kept.get(cid)
            first = ts if old is None else min(old, ts)
            if cid in population:
                if first != old:
                    firsts.remove(old)
                    firsts.add(first)
            else:
                population.add(cid)
                firsts.add(first)
            kept[cid] = first
            last = ts if last is None else max(last, ts)
        if (last is not None and len(firsts) >= least and last - firsts[least - 1] >= warmup_s
                and len(population) >= least):
            return True
    return False


def rfm(c: pd.DataFrame, warmup_ok: bool, bands: list[float] | None = None) -> pd.DataFrame:
    """Over the current customers (>= 1 purchase, counted once, today's value): R ranks the
    last-purchase time (more recent is better), F = number of purchases, M = total spend in
    the base currency; named segment = ``segment_of(R, (F + M) // 2)``. Abstains (all
    missing) unless ``warmup_ok`` (:func:`rfm_warmup`). With ``bands`` R comes from
    :func:`recency_bands` instead.
    """
    out = pd.DataFrame(index=c.index, columns=["r", "f", "m"], dtype="Int64")
    out["rfm"] = pd.Series(pd.NA, index=c.index, dtype="object")
    buyers = c[c["purchases"] > 0]
    if not warmup_ok or buyers.empty:
        return out
    out.loc[buyers.index, "r"] = (score(buyers["last"]) if bands is None
                                  else recency_bands(buyers["days_since_last"], bands))
    out.loc[buyers.index, "f"] = score(buyers["purchases"].astype(float))
    out.loc[buyers.index, "m"] = score(buyers["total"])
    scored = out.loc[buyers.index]
    out.loc[buyers.index, "rfm"] = [
        segment_of(int(r), (int(f) + int(m)) // 2)
        for r, f, m in zip(scored["r"], scored["f"], scored["m"], strict=True)
    ]
    return out


def reference(
    events: pd.DataFrame, s: Settings, now: float, warmup_days: float | None = None,
    min_samples: int | None = None, history: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every customer's reference labels at ``now``: frequency, lifecycle, r, f, m, rfm
    (``warmup_days`` / ``min_samples`` override the settings' RFM warm-up; ``history``:
    see :func:`rfm_warmup`)."""
    c = customers(events, now, s)
    warm = rfm_warmup(events, s, warmup_days, min_samples, history)["warm"]
    out = pd.DataFrame({"frequency": frequency(c, s), "lifecycle": lifecycle(c, s)})
    parse_bands = getattr(s, "rfm_bands", None)  # settings of engines with recency bands
    bands = parse_bands() if getattr(s, "rfm_recency", "ranks") == "bands" and parse_bands else None
    return out.join(rfm(c, warm, bands))


def _select(c: pd.DataFrame, rules: list[tuple[Any, str]], default: str) -> pd.Series:
    """The label of the first rule that holds (NaN comparisons are false), else ``default``."""
    labels = np.select([np.asarray(cond, dtype=bool) for cond, _ in rules],
                       [label for _, label in rules], default)
    return pd.Series(labels, index=c.index, dtype="object")
