"""The minimal stateful job every system of ``streamseg bench --peers`` runs.

Decode the event with orjson; for a purchase, update the customer's purchase
count, first and last purchase time and mean interval; emit a record when the
customer's frequency tier changes (``one_time``, then ``high`` / ``medium`` /
``low`` by the mean interval in days, with the worker's default thresholds).
Clicks are decoded and counted, nothing more. No clock, no lapse: the job is a
floor for "decode, keyed state, conditional emit", not a second segmenter.

The adapters below put the same :func:`step` behind the state API of each
system (a mutable mapping, a Quix Streams ``State``, a Bytewax
``stateful_map`` mapper), so every peer computes the same outputs.

>>> raw = [b'{"customer_id":"c1","type":"purchase","ts":"2026-01-01T00:00:00Z"}',
...        b'{"customer_id":"c1","type":"page_view","ts":"2026-01-02T00:00:00Z"}',
...        b'{"customer_id":"c1","type":"purchase","ts":"2026-01-04T00:00:00Z"}']
>>> [codec.loads(o)["tier"] for o in reference(raw)]
['one_time', 'high']
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from streamseg import codec

DAY = 86_400.0
HIGH_MAX_DAYS = 7.0  # Settings.freq_high_max_days default
MEDIUM_MAX_DAYS = 28.0  # Settings.freq_medium_max_days default

JobState = dict[str, Any]  # {"n": purchases, "first": ts, "last": ts, "tier": str}


def tier_of(n: int, mean_days: float | None) -> str:
    """Frequency tier of ``n`` purchases with ``mean_days`` between them.

    >>> tier_of(1, None), tier_of(3, 5.0), tier_of(3, 20.0), tier_of(3, 60.0)
    ('one_time', 'high', 'medium', 'low')
    """
    if n <= 1 or mean_days is None:
        return "one_time"
    if mean_days <= HIGH_MAX_DAYS:
        return "high"
    return "medium" if mean_days <= MEDIUM_MAX_DAYS else "low"


def step(state: JobState | None, event: dict[str, Any]) -> tuple[JobState | None, bytes | None]:
    """Fold one decoded event into the customer's state; the record to emit, if any.

    A non-purchase leaves the state as it is and emits nothing.
    """
    if event.get("type") != "purchase":
        return state, None
    ts = datetime.fromisoformat(event["ts"]).timestamp()
    if state is None:
        new: JobState = {"n": 1, "first": ts, "last": ts, "tier": None}
    else:
        new = {"n": state["n"] + 1, "first": state["first"], "last": max(ts, state["last"]),
               "tier": state["tier"]}
    mean = (new["last"] - new["first"]) / (new["n"] - 1) / DAY if new["n"] > 1 else None
    tier = tier_of(new["n"], mean)
    if tier == new["tier"]:
        return new, None
    out = codec.dumps({"customer_id": event["customer_id"], "from": new["tier"], "tier": tier,
                       "purchases": new["n"], "mean_interval_days": mean,
                       "last_purchase": new["last"]})
    new["tier"] = tier
    return new, out


class Store(Protocol):
    """A dict-like per-customer store: ``get`` and item assignment."""

    def get(self, key: str, /) -> JobState | None: ...

    def __setitem__(self, key: str, value: JobState, /) -> None: ...


def on_mapping(table: Store, raw: bytes) -> bytes | None:
    """The job over a dict-like store keyed by customer id (raw aiokafka loop, Faust table)."""
    event = codec.loads(raw)
    if event.get("type") != "purchase":
        return None
    key = event["customer_id"]
    new, out = step(table.get(key), event)
    if new is not None:
        table[key] = new
    return out


class StateLike(Protocol):
    """The part of Quix Streams' ``State`` the job uses."""

    def get(self, key: Any, default: Any = None) -> Any: ...

    def set(self, key: Any, value: Any) -> None: ...


def on_quix_state(raw: bytes, state: StateLike) -> bytes | None:
    """The job as a Quix Streams stateful ``apply`` (the state is already per message key)."""
    event = codec.loads(raw)
    if event.get("type") != "purchase":
        return None
    new, out = step(state.get("job"), event)
    if new is not None:
        state.set("job", new)
    return out


def on_bytewax(state: JobState | None, raw: bytes) -> tuple[JobState | None, bytes | None]:
    """The job as a Bytewax ``stateful_map`` mapper (Bytewax keeps the state per key)."""
    return step(state, codec.loads(raw))


def reference(lines: Iterable[bytes]) -> list[bytes]:
    """Outputs of the job over ``lines`` in order (one process, one dict)."""
    table: dict[str, JobState] = {}
    return [out for raw in lines if (out := on_mapping(table, raw)) is not None]
