"""Acceptance of rule audiences: a batch evaluation of the audiences file in pandas.

:func:`batch_members` reads the audiences file's JSON conditions itself and
evaluates them over the raw accepted events, never calling the engine's
compiled conditions (:mod:`streamseg.engine.audiencerules`), so that it can
catch them out. Each customer is evaluated at the final event clock, or at its
own last event when that is later (inside the allowed lateness: the worker
evaluated it there last). :func:`compare` sets the published membership at the
end of a replay (last ``audience:<name>`` change per customer is ``in``)
against it.

Definitions, written from docs/AUDIENCES.md:

* a window of N days at time t covers the events of days
  ``floor((t - h) / 86400) - N + 1`` .. ``floor((t - h) / 86400)``, with ``h`` the
  buying-day start (``STREAMSEG_BUYING_DAY_START_H`` x 3600; 0: UTC days);
* ``days_since_*`` = (t - that time) / 86400; ``mobile_share`` = the decayed weight
  (0.5 ^ (age / half-life)) of the events from a mobile device over that of all
  events with a device; money in the base currency;
* a missing value makes a comparison false; ``segment`` atoms use the batch
  reference's own lifecycle / frequency (:mod:`streamseg.tools.reference`).

Examples
--------
>>> from streamseg.config import Settings
>>> ev = pd.DataFrame({"customer_id": ["a", "a", "b"], "type": ["add_to_cart", "purchase",
...                    "add_to_cart"], "ts": [0.0, 3 * DAY, 5 * DAY], "amount": [0.0, 20.0, 0.0],
...                    "device": [None, None, None]})
>>> doc = {"audiences": {"cart": {"when": {"and": [
...     {"count": "add_to_cart", "days": 7, ">=": 1}, {"count": "purchase", "days": 7, "=": 0}]}}}}
>>> batch_members(doc, ev, 6 * DAY, Settings(), {})["cart"].to_dict()
{'a': False, 'b': True}
"""

from __future__ import annotations

import json
import math
import numbers
import operator
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from streamseg import codec
from streamseg.config import DAY, Settings
from streamseg.engine.consentlog import applies
from streamseg.engine.events import Event, format_ts, kind_of
from streamseg.engine.validate import Invalid, Valid
from streamseg.replay import Replayer
from streamseg.tools import reference

_OPS: dict[str, Any] = {"=": operator.eq, "!=": operator.ne, "<": operator.lt,
                        "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def events_of(events: Iterable[Event]) -> pd.DataFrame:
    """The accepted click and purchase events as a frame (consent records left out)."""
    rows = [(e.customer_id, e.type, e.ts, e.amount, e.device) for e in events
            if e.kind != "consent"]
    return pd.DataFrame(rows, columns=["customer_id", "type", "ts", "amount", "device"])


def _present(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _kind(v: Any) -> str:
    """JSON kind of a value: Python's ``True == 1`` must not make a boolean equal a number."""
    if isinstance(v, bool | np.bool_):
        return "boolean"
    return "number" if isinstance(v, numbers.Number) else type(v).__name__


def _compare(values: pd.Series, node: Mapping[str, Any]) -> pd.Series:
    """``values OP operand`` per row, a missing value (None, NaN) false."""
    op = next(k for k in (*_OPS, "in") if k in node)
    want = node[op]
    if op == "in":
        def hit(v: Any) -> bool:
            return any(_kind(v) == _kind(w) and v == w for w in want)
    elif op in ("=", "!="):
        same = op == "="

        def hit(v: Any) -> bool:  # a boolean equals only a boolean, a number only a number
            return (_kind(v) == _kind(want) and v == want) == same
    else:
        fn = _OPS[op]
        kind: Any = str if isinstance(want, str) else (int, float)

        def hit(v: Any) -> bool:
            return isinstance(v, kind) and not isinstance(v, bool) and bool(fn(v, want))
    return pd.Series([_present(v) and hit(v) for v in values.tolist()], index=values.index,
                     dtype=bool)


class Batch:
    """Per-customer columns at each customer's evaluation time ``t``."""

    def __init__(self, ev: pd.DataFrame, clock: float, s: Settings,
                 attributes: Mapping[str, Mapping[str, Any]]) -> None:
        self.ev, self.s, self.attributes = ev, s, attributes
        by = ev.groupby("customer_id")
        self.t = by["ts"].max().clip(lower=clock)
        self.index = self.t.index
        buys = ev[ev["type"] == "purchase"].groupby("customer_id")
        self.first_buy, self.last_buy = buys["ts"].min(), buys["ts"].max()
        self.n_buys = buys.size().reindex(self.index, fill_value=0)
        self.spend = buys["amount"].sum().reindex(self.index, fill_value=0.0)
        self.first_seen, self.last_seen = by["ts"].min(), by["ts"].max()

    def feature(self, name: str) -> pd.Series:
        t = self.t
        since = {"days_since_last_purchase": self.last_buy,
                 "days_since_first_purchase": self.first_buy,
                 "days_since_last_seen": self.last_seen,
                 "days_since_first_seen": self.first_seen}
        if name in since:
            return (t - since[name].reindex(self.index)) / DAY
        if name == "purchases_total":
            return self.n_buys
        if name == "total_spend_base":
            return self.spend
        if name == "avg_order_value_base":
            return (self.spend / self.n_buys.replace(0, np.nan)).fillna(0.0)
        if name == "mobile_share":
            dev = self.ev[self.ev["device"].notna()]
            if dev.empty:  # (no device anywhere: an order history)
                return pd.Series(0.0, index=self.index)
            age = (dev["customer_id"].map(self.last_seen).astype(float) - dev["ts"]) / (
                self.s.half_life_days * DAY)
            w = np.power(0.5, age)
            total = w.groupby(dev["customer_id"]).sum()
            mobile = w[dev["device"] == "mobile"].groupby(dev["customer_id"]).sum()
            share = (mobile.reindex(total.index, fill_value=0.0) / total)
            return share.reindex(self.index, fill_value=0.0)
        raise NotImplementedError(f"batch reference has no feature {name!r}")

    def window(self, type_: str, days: int, summed: bool) -> pd.Series:
        ev = self.ev[self.ev["type"] == type_]
        if ev.empty:  # (a type the data never has, e.g. carts in an order history)
            return pd.Series(0.0 if summed else 0, index=self.index)
        at = ev["customer_id"].map(self.t).astype(float)
        h = self.s.buying_day_start_h * 3600.0
        first_day = np.floor((at - h) / DAY) - days + 1
        inside = ev[np.floor((ev["ts"] - h) / DAY) >= first_day]
        per = inside.groupby("customer_id")
        got = per["amount"].sum() if summed else per.size()
        return got.reindex(self.index, fill_value=0)

    def segment(self, name: str) -> pd.Series:
        frame = self.ev[["customer_id", "type", "ts", "amount"]]
        c = reference.customers(frame, self.t, self.s)
        if name == "lifecycle":
            return reference.lifecycle(c, self.s).reindex(self.index)
        if name == "frequency":
            return reference.frequency(c, self.s).reindex(self.index)
        raise NotImplementedError(f"batch reference has no segmenter {name!r}")

    def attribute(self, name: str) -> pd.Series:
        return pd.Series([self.attributes.get(c, {}).get(name) for c in self.index],
                         index=self.index, dtype="object")

    def condition(self, node: Mapping[str, Any], done: Mapping[str, pd.Series]) -> pd.Series:
        if "and" in node:
            parts = [self.condition(c, done) for c in node["and"]]
            return pd.concat(parts, axis=1).all(axis=1)
        if "or" in node:
            parts = [self.condition(c, done) for c in node["or"]]
            return pd.concat(parts, axis=1).any(axis=1)
        if "not" in node:
            return ~self.condition(node["not"], done)
        if "feature" in node:
            return _compare(self.feature(node["feature"]), node)
        if "attribute" in node:
            return _compare(self.attribute(node["attribute"]), node)
        if "segment" in node:
            name = node["segment"]
            if name.startswith("audience:"):
                inside = done[name.removeprefix("audience:")]
                return _compare(inside.map({True: "in", False: None}), node)
            return _compare(self.segment(name), node)
        summed = "sum" in node
        got = self.window(node["sum" if summed else "count"], int(node["days"]), summed)
        return _compare(got, node)


def batch_members(doc: Mapping[str, Any], ev: pd.DataFrame, clock: float, s: Settings,
                  attributes: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Per customer (rows) and audience (columns): whether the rule holds at the end."""
    batch = Batch(ev, clock, s, attributes)
    done: dict[str, pd.Series] = {}
    for name, body in doc["audiences"].items():
        done[name] = batch.condition(body["when"], done).astype(bool)
    return pd.DataFrame(done, index=batch.index)


def published_members(changes: Iterable[Mapping[str, Any]], names: Iterable[str],
                      index: pd.Index) -> pd.DataFrame:
    """Per customer and audience: whether the last published change is ``in``."""
    last: dict[tuple[str, str], str] = {}
    for c in changes:
        if str(c.get("segmenter", "")).startswith("audience:"):
            last[(c["customer_id"], c["segmenter"])] = c["to_segment"]
    return pd.DataFrame({n: [last.get((cid, f"audience:{n}")) == "in" for cid in index]
                         for n in names}, index=index)


def compare(published: pd.DataFrame, batch: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per audience: customers, members on each side, agreement % and a few mismatches."""
    out: dict[str, dict[str, Any]] = {}
    for name in batch.columns:
        b, p = batch[name], published[name].reindex(batch.index, fill_value=False)
        diff = b.index[b != p]
        out[name] = {"customers": len(b), "batch_members": int(b.sum()),
                     "published_members": int(p.sum()), "mismatches": len(diff),
                     "agreement_pct": round(100.0 * (len(b) - len(diff)) / max(1, len(b)), 4),
                     "examples": [str(x) for x in diff[:5]]}
    return out


def replay_events(lines: Iterable[bytes], settings: Settings,
                  attributes: Mapping[str, Mapping[str, Any]] | None = None,
                  ) -> tuple[list[dict[str, Any]], list[Event], float]:
    """Replay ``lines`` like ``streamseg replay``: (every change, the accepted events, the
    final event clock). ``attributes`` (customer -> profile attributes) are fed as a
    ``customer-profiles`` record of each customer just before its first event, same time."""
    rep = Replayer(settings)
    attrs = attributes or {}
    changes: list[dict[str, Any]] = []
    accepted: list[Event] = []
    given: set[str] = set()  # customers whose profile record was fed
    for raw in lines:
        raw = raw.strip()
        if not raw:
            continue
        record = rep.validator.decode(raw)
        checked = record if isinstance(record, Invalid) else rep.validator.check_record(
            kind_of(record) if isinstance(record, dict) else "click", None, record)
        if isinstance(checked, Valid):
            ev = checked.event
            # before the customer's first event accepted at its time (a withdrawal dated
            # where no event is accepted is moved to the clock, Engine.admit: a profile at
            # its date was refused, and the tool stopped; review 31)
            if ev.customer_id in attrs and ev.customer_id not in given:
                profile = {"event_id": f"profile-{ev.customer_id}", "type": "profile",
                           "customer_id": ev.customer_id, "ts": format_ts(ev.ts),
                           "attributes": dict(attrs[ev.customer_id])}
                # (not applied, for consent at its time: fed again with a later event)
                taken = applies(rep.states.get(ev.customer_id), ev.ts)
                done = rep.feed(codec.dumps(profile))
                if isinstance(done, Invalid) and done.reason != "timestamp_out_of_range":
                    raise ValueError(f"profile of {ev.customer_id}: {done.message}")
                if not isinstance(done, Invalid):
                    changes += done
                    if taken:
                        given.add(ev.customer_id)
        result = rep.feed(raw)
        if isinstance(result, Invalid) or rep.admitted is None:
            continue
        accepted.append(rep.admitted)  # at the time the engine took it
        changes += result
    clock = rep.clock.now()
    return changes, accepted, 0.0 if clock is None else clock


def accept(lines: Iterable[bytes], settings: Settings,
           attributes: Mapping[str, Mapping[str, Any]] | None = None,
           ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Replay ``lines`` with ``settings.audiences_file`` (:func:`replay_events`) and compare
    the published membership with :func:`batch_members`: (per-audience figures, changes)."""
    changes, accepted, clock = replay_events(lines, settings, attributes)
    doc = json.loads(Path(settings.audiences_file).read_text(encoding="utf-8"))
    batch = batch_members(doc, events_of(accepted), clock, settings, attributes or {})
    return compare(published_members(changes, batch.columns, batch.index), batch), changes
