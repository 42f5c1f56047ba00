"""KPIs per segment: revenue, orders, sessions, conversion and repeat purchases.

The engine feeds one :class:`Kpis` per worker (or replay) from
:meth:`~streamseg.engine.processor.Engine.apply`: a few dict updates per
purchase or new session, nothing for other events. Each figure goes to the
segments the customer is *published* in at the event's time, before the
event's own changes (the clock-driven moves due before the event come first),
i.e. "revenue from segment X" as a marketer means it. A customer not (yet)
published by a segmenter counts under that segmenter's segment :data:`NONE`,
so the segments of one segmenter always add up to the whole.

Definitions (README "KPIs per segment"):

* ``revenue``: paid amounts in the base currency; ``orders``: purchases;
  ``aov`` = revenue / orders.
* ``sessions``: the sessions of the session feature (``sessions_total``): an
  event with a ``session_id`` opens one if the id is not among the customer's
  recent session ids (the current session's and those of the
  ``SESSIONS_KEPT`` = 8 sessions with an id before it); one without an id if it
  is a ``session_start``, the customer's first event, or comes more than
  ``STREAMSEG_SESSION_GAP_MINUTES`` after the customer's last event;
  attributed when it opens. ``converted``: sessions with at least one purchase
  (the purchase carries the session's id or falls within it), counted once, at
  their first purchase; ``conversion`` = converted / sessions.
* ``repeat_orders``: purchases made at most ``STREAMSEG_KPI_REPEAT_DAYS``
  after the customer's previous purchase (the latest purchase time seen
  before); ``repeat_rate`` = repeat_orders / orders. It is known at the
  purchase itself; over a closed period it counts the same consecutive
  purchase pairs as "purchases followed by another within N days" (only the
  segment credited differs: the later purchase's).

Aggregates only (no customer id); an erasure does not take back revenue
already counted. Several workers each hold their partitions' share since they
started: sums add up, ratios are recomputed from the sums (:func:`ratios`).

Examples
--------
>>> k = Kpis()
>>> k.add({"frequency": ["one_time", 0.0, 1, None]}, ("frequency", "rfm"), 30.0, True, True,
...       False, False)
>>> k.add({}, ("frequency", "rfm"), 10.0, True, False, True, False)
>>> view = k.view()
>>> view["frequency"]["one_time"]["revenue"], view["rfm"]["none"]["orders"]
(30.0, 2)
>>> ratios(view["rfm"]["none"])["aov"], ratios(view["rfm"]["none"])["repeat_rate"]
(20.0, 0.5)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from streamseg.engine.features import convert

if TYPE_CHECKING:
    from streamseg.engine.events import Event
    from streamseg.engine.features import CustomerState

NONE = "none"  # the segment of a customer a segmenter has not published (yet)
# the additive fields of a cell, in storage order
FIELDS = ("revenue", "orders", "repeat_orders", "sessions", "converted")
REVENUE, ORDERS, REPEATS, SESSIONS, CONVERTED = range(5)
# fields summed over workers (the ratios are recomputed from them)
ADDITIVE = frozenset((*FIELDS, "predicted_sum", "predicted_customers"))


class Kpis:
    """Sums per (segmenter, segment) of one worker's events since it started."""

    __slots__ = ("cells",)

    def __init__(self) -> None:
        self.cells: dict[str, dict[str, list[float]]] = {}

    def add(
        self,
        segments: Mapping[str, list[Any]],
        names: Iterable[str],
        revenue: float,
        order: bool,
        repeat: bool,
        session: bool,
        converted: bool,
    ) -> None:
        """Credit one event to the published ``segments`` of every segmenter in ``names``.

        ``segments`` is ``CustomerState.segments`` (segmenter -> [segment, ...]);
        a segmenter in ``names`` that is not in it gets :data:`NONE`.
        """
        cells = self.cells
        for name in names:
            current = segments.get(name)
            segment = NONE if current is None else current[0]
            per = cells.get(name)
            if per is None:
                per = cells[name] = {}
            cell = per.get(segment)
            if cell is None:
                cell = per[segment] = [0.0, 0, 0, 0, 0]
            if order:
                cell[REVENUE] += revenue
                cell[ORDERS] += 1
                if repeat:
                    cell[REPEATS] += 1
            if session:
                cell[SESSIONS] += 1
            if converted:
                cell[CONVERTED] += 1

    def credit(
        self,
        state: CustomerState,
        names: Iterable[str],
        event: Event,
        session: bool,
        last: float | None,
        repeat_s: float,
    ) -> None:
        """Credit a purchase, or a click that opened a session (``session``), to the
        published segments of ``state`` (before the event's own changes); any other
        event credits nothing.

        ``last`` is the customer's latest purchase time before ``event``; a purchase
        at most ``repeat_s`` after it is a repeat. A purchase is a conversion of
        its session once (:func:`~streamseg.engine.features.convert`: the current
        session, or the earlier one its id names).
        """
        if event.kind != "purchase":
            if session and event.kind == "click":
                self.add(state.segments, names, 0.0, False, False, True, False)
            return
        repeat = last is not None and 0.0 <= event.ts - last <= repeat_s
        converted = convert(state, event.session_id)
        self.add(state.segments, names, event.amount, True, repeat, session, converted)

    def view(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Segmenter -> segment -> {revenue, orders, repeat_orders, sessions, converted}."""
        # list(...) copies under the GIL: a scrape thread may read while events are applied
        return {
            name: {
                seg: dict(zip(FIELDS, list(cell), strict=True)) for seg, cell in list(per.items())
            }
            for name, per in list(self.cells.items())
        }


def ratios(cell: Mapping[str, Any]) -> dict[str, Any]:
    """``cell`` with its ratios recomputed from its sums (None where the base is 0).

    ``predicted_sum`` / ``predicted_customers`` (when present) give
    ``predicted_value_mean``.

    >>> ratios({"revenue": 9.0, "orders": 3, "repeat_orders": 1, "sessions": 0, "converted": 0})
    {'revenue': 9.0, 'orders': 3, 'repeat_orders': 1, 'sessions': 0, 'converted': 0, \
'aov': 3.0, 'repeat_rate': 0.3333333333333333, 'conversion': None}
    """
    out = dict(cell)
    orders, sessions = cell.get("orders", 0), cell.get("sessions", 0)
    out["aov"] = cell["revenue"] / orders if orders else None
    out["repeat_rate"] = cell["repeat_orders"] / orders if orders else None
    out["conversion"] = cell["converted"] / sessions if sessions else None
    if "predicted_customers" in cell:
        n = cell["predicted_customers"]
        out["predicted_value_mean"] = cell["predicted_sum"] / n if n else None
    return out


def merge(parts: Iterable[Mapping[str, Mapping[str, Mapping[str, Any]]]]) -> dict[str, Any]:
    """Sum the additive fields of several workers' KPI views (ratios are dropped).

    >>> a = {"rfm": {"none": {"revenue": 1.0, "orders": 1, "aov": 1.0}}}
    >>> merge([a, a])
    {'rfm': {'none': {'revenue': 2.0, 'orders': 2}}}
    """
    total: dict[str, dict[str, dict[str, Any]]] = {}
    for part in parts:
        for name, per in part.items():
            into = total.setdefault(name, {})
            for segment, cell in per.items():
                acc = into.setdefault(segment, {})
                for key, value in cell.items():
                    if key in ADDITIVE and value is not None:
                        acc[key] = acc.get(key, 0) + value
    return total


def predicted(
    values: Iterable[tuple[Mapping[str, list[Any]], float | None]],
) -> dict[str, dict[str, dict[str, Any]]]:
    """Sum and count of predicted values per current segment.

    ``values`` are (``CustomerState.segments``, predicted value or None) of the
    current customers; customers without a prediction are left out.

    >>> predicted([({"rfm": ["champions", 0.0, 1, 1]}, 2.0), ({"rfm": ["champions"]}, None)])
    {'rfm': {'champions': {'predicted_sum': 2.0, 'predicted_customers': 1}}}
    """
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for segments, value in values:
        if value is None:
            continue
        for name, current in segments.items():
            cell = out.setdefault(name, {}).setdefault(
                str(current[0]), {"predicted_sum": 0.0, "predicted_customers": 0})
            cell["predicted_sum"] += value
            cell["predicted_customers"] += 1
    return out


def report(view: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Every cell of a (merged) view with zeros filled in and its ratios.

    >>> report({"rfm": {"none": {"orders": 2, "revenue": 5.0}}})["rfm"]["none"]["aov"]
    2.5
    """
    return {
        name: {
            segment: ratios({**dict.fromkeys(FIELDS, 0), **cell}) for segment, cell in per.items()
        }
        for name, per in view.items()
    }
