"""Answers of the lookup API (``GET /customers/{id}``, ``GET /segments``), from state alone.

Pure functions: ``streamseg.web`` reads the table and routes the request; the
answers are built here, so they are the same whatever transport serves them.
The shapes are ``streamseg/schemas/lookup-customer.schema.json`` and
``streamseg/schemas/lookup-segments.schema.json``.

Examples
--------
>>> from streamseg.config import Settings
>>> from streamseg.engine.events import Event
>>> from streamseg.engine.processor import Engine
>>> eng = Engine(Settings())
>>> s = eng.apply(None, Event("purchase", "purchase", "e1", "c1", 0.0, amount=20.0)).state
>>> status, body = customer_answer(eng, s, 86400.0)
>>> status, body["suppressed"], body["segments"]["lifecycle"]["name"]
(200, False, 'New customer')
>>> body["features"]["days_since_last_purchase"], body["as_of"], body["attributes"]
(1.0, '1970-01-02T00:00:00Z', {})
>>> customer_answer(eng, None, 0.0)
(404, {'error': 'unknown_customer'})
>>> sizes = segment_sizes([s])
>>> sizes["segmenters"]["frequency"], sizes["customers"]
({'one_time': 1}, 1)
>>> merge_sizes([sizes, sizes])["segmenters"]["frequency"]
{'one_time': 2}
>>> part = segments_answer(eng, [s], 0.0)
>>> part["kpis"]["frequency"]["none"]["revenue"], part["kpis"]["frequency"]["none"]["aov"]
(20.0, 20.0)
>>> merge_sizes([part, part])["kpis"]["lifecycle"]["none"]["orders"]
2
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from streamseg.engine import kpis
from streamseg.engine.events import format_ts
from streamseg.engine.features import CustomerState, summary
from streamseg.engine.processor import Engine

UNKNOWN: dict[str, Any] = {"error": "unknown_customer"}


def customer_answer(
    engine: Engine, state: CustomerState | None, now: float
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of ``GET /customers/{id}`` for ``state`` at event time ``now``.

    * unknown or erased: 404 ``{"error": "unknown_customer"}`` (the same answer,
      so the API does not reveal who asked to be erased);
    * consent withdrawn: 200 with ``suppressed: true``, no segments and no
      features (the customer is not to be targeted; the profile is frozen);
    * otherwise: 200 with the current segments (names, since when), the
      feature summary as of ``as_of`` = max(``now``, the customer's last event),
      and the profile ``attributes`` (``{}`` when none).
    """
    if state is None or state.erased:
        return 404, dict(UNKNOWN)
    if state.withdrawn:
        return 200, {"customer_id": state.customer_id, "suppressed": True, "as_of": None,
                     "segments": {}, "features": None, "attributes": None}
    at = max(now, state.last_seen)
    cfg = engine.settings
    return 200, {
        "customer_id": state.customer_id,
        "suppressed": False,
        "as_of": format_ts(at),
        "segments": engine.segment_views(state),
        "features": summary(state, at, cfg.half_life_days, cfg.base_currency),
        "attributes": dict(state.attributes),
    }


def segment_sizes(states: Iterable[CustomerState]) -> dict[str, Any]:
    """Customers per segment per segmenter over ``states`` (one worker's share).

    Suppressed (withdrawn) customers are counted apart and in no segment;
    erasure markers are not counted at all.
    """
    counts: dict[str, dict[str, int]] = {}
    customers = suppressed = 0
    for state in states:
        if state.erased:
            continue
        if state.withdrawn:
            suppressed += 1
            continue
        customers += 1
        for name, current in state.segments.items():
            per = counts.setdefault(name, {})
            per[current[0]] = per.get(current[0], 0) + 1
    return {"customers": customers, "suppressed": suppressed, "segmenters": counts,
            "workers": 1, "complete": True}


def segments_answer(engine: Engine, states: Iterable[CustomerState], now: float) -> dict[str, Any]:
    """``GET /segments?scope=local``: :func:`segment_sizes` and this worker's KPIs per segment.

    ``kpis``: segmenter -> segment -> the sums of ``engine.kpis`` (this worker's
    events since it started) with their ratios, and the sum and count of
    :meth:`Engine.predicted` at ``now`` over the segment's current customers
    (left out while the engine predicts nothing).
    """
    held = list(states)
    out = segment_sizes(held)
    current = ((s.segments, engine.predicted(s, now)) for s in held
               if not s.erased and not s.withdrawn)
    out["kpis"] = kpis.report(kpis.merge([engine.kpis.view(), kpis.predicted(current)]))
    return out


def merge_sizes(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Sum the :func:`segment_sizes` of several workers (``complete`` if all were).

    Their ``kpis`` are summed and the ratios recomputed from the sums.
    """
    total: dict[str, Any] = {"customers": 0, "suppressed": 0, "segmenters": {}, "workers": 0,
                             "complete": True}
    views: list[dict[str, Any]] = []
    for part in parts:
        views.append(part.get("kpis", {}))
        for field in ("customers", "suppressed", "workers"):
            total[field] += part[field]
        total["complete"] = total["complete"] and part["complete"]
        for name, per in part["segmenters"].items():
            into = total["segmenters"].setdefault(name, {})
            for segment, n in per.items():
                into[segment] = into.get(segment, 0) + n
    total["kpis"] = kpis.report(kpis.merge(views))
    return total
