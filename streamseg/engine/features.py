"""``CustomerState`` and its update from one event: online features with event-time decay.

Decayed quantities are exponentially weighted by *event time*, with a
half-life from settings, so a replay gives the same numbers as the worker.
An event older than the state's decay reference is added with a smaller
weight instead of rewinding the clock.

Examples
--------
>>> from streamseg.config import Settings
>>> from streamseg.engine.events import Event
>>> cfg = Settings(half_life_days=30)
>>> s = CustomerState.new("c1", 0.0)
>>> update(s, Event("purchase", "purchase", "e1", "c1", 0.0, amount=100.0), cfg)
>>> update(s, Event("purchase", "purchase", "e2", "c1", 30 * 86400.0, amount=50.0), cfg)
>>> s.purchases, s.monetary, round(s.d_monetary, 6), mean_gap_days(s)
(2, 150.0, 100.0, 30.0)

The feature summary reported with segment changes is :mod:`streamseg.engine.summary`;
the duplicate filter over ``CustomerState.recent_ids`` is :mod:`streamseg.engine.dedup`.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, fields
from typing import Any

from streamseg.config import DAY, Settings
from streamseg.engine.buyingdays import count_day
from streamseg.engine.events import Event

SESSIONS_KEPT = 8  # earlier session ids a state keeps besides the current one
NEVER = 1e18  # ``due_hint`` of a customer with no due time (finite: JSON has no infinity)
CHANNELS = ("web", "app", "email", "social", "search", "ads", "store", "other")
DEVICES = ("mobile", "desktop", "tablet", "other")
MONEY_DIGITS = 6  # decimals a customer's total spend is kept to (RFM's M ties exactly)


@dataclass(slots=True)
class CustomerState:
    """Everything streamseg keeps about one customer (serialised into the Faust table)."""

    customer_id: str
    first_seen: float
    last_seen: float
    decay_ts: float
    events: int = 0
    purchases: int = 0
    monetary: float = 0.0
    first_purchase: float | None = None
    last_purchase: float | None = None
    # buying days: distinct days with a purchase, each starting at STREAMSEG_BUYING_DAY_START_H
    # UTC (BG/NBD repeat purchases = purchase_days - 1; frequency tiers), :func:`count_day`
    purchase_days: int = 0
    # the latest buying days (day numbers, ascending, at most RECENT_DAYS): a late purchase
    # on one of them, or on the first buying day, is not a new buying day
    recent_days: list[int] = field(default_factory=list)
    gap_days: float | None = None  # the exact mean gap, :func:`mean_gap_days`, kept for readers
    # the latest purchase that followed a gap > at_risk_days, and the purchase before it
    reactivated_at: float | None = None
    reactivated_from: float | None = None
    sessions: int = 0
    last_session: str | None = None  # the id of the current session (None: it has none)
    converted_session: int = 0  # ordinal (``sessions``) of the latest session with a purchase
    # the sessions with an id before the current one (the latest SESSIONS_KEPT, oldest
    # first), each [id, converted: had a purchase]: a late or interleaved event of one of
    # them opens no session (states saved before this field start with none)
    earlier_sessions: list[list[Any]] = field(default_factory=list)
    d_events: float = 0.0
    d_purchases: float = 0.0
    d_monetary: float = 0.0
    d_sessions: float = 0.0
    d_page_views: float = 0.0
    d_cart_adds: float = 0.0
    d_channels: list[float] = field(default_factory=lambda: [0.0] * len(CHANNELS))
    d_devices: list[float] = field(default_factory=lambda: [0.0] * len(DEVICES))
    recent_ids: list[int] = field(default_factory=list)
    # event type -> [[UTC day, count, amount], ...] ascending, the trailing windows of rule
    # audiences (:mod:`streamseg.engine.history`); empty unless an audiences file needs it
    history: dict[str, list[list[Any]]] = field(default_factory=dict)
    withdrawn: bool = False
    # a lower bound of the next due time (``NEVER``: none), set when the engine plans
    # it after an event or a change; None: unknown. It lets an event skip the catch-up.
    due_hint: float | None = None
    epoch: int = 0  # erasures so far: a fresh profile after an erasure gets new change ids
    suppressions: int = 0  # consent withdrawals and re-grants notified (suppression change ids)
    erased: bool = False  # an erasure marker: no profile (until consent is granted again)
    # the consent records applied, [event time, type] by time (streamseg.engine.consentlog):
    # an input dated while consent was withdrawn, or before an erasure, is not profiled
    consent_log: list[list[Any]] = field(default_factory=list)
    # segmenter -> [segment, since, sequence, model_version]
    segments: dict[str, list[Any]] = field(default_factory=dict)
    # segmenter -> [candidate segment, first seen at]
    pending: dict[str, list[Any]] = field(default_factory=dict)
    # profile attributes (streamseg.engine.profile): name -> JSON scalar, and name ->
    # event time of the value kept (or of its removal: then the name is not in attributes)
    attributes: dict[str, Any] = field(default_factory=dict)
    attributes_ts: dict[str, float] = field(default_factory=dict)
    # the settings' definition hash (Settings.definition) the state was last evaluated
    # under: another one (changed thresholds, an audiences file) re-evaluates it once
    definition: str = ""
    # the event clock a late event was evaluated at (Engine.apply): the labels account
    # for time up to here, so no later walk starts before it (scheduler.floor)
    looked: float | None = None

    @classmethod
    def new(cls, customer_id: str, ts: float, definition: str = "") -> CustomerState:
        """A customer first seen at event time ``ts``, evaluated under the settings whose
        hash is ``definition`` (``Engine.definition``; "" for none yet)."""
        return cls(customer_id=customer_id, first_seen=ts, last_seen=ts, decay_ts=ts,
                   definition=definition)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for the codec (table values, snapshots).

        A shallow mapping of the fields, in declaration order (the same JSON as
        ``dataclasses.asdict``, without its deep copy): the lists and dicts are
        the state's own, so serialise the result before the state changes again.

        >>> s = CustomerState.new("c1", 5.0)
        >>> list(s.to_dict())[:4], s.to_dict()["segments"] is s.segments
        (['customer_id', 'first_seen', 'last_seen', 'decay_ts'], True)
        """
        return dict(zip(_FIELDS, _GET(self), strict=True))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerState:
        """Inverse of :meth:`to_dict`; unknown keys are ignored (forward compatible)."""
        if _NAMES.issuperset(data):
            return cls(**data)
        return cls(**{k: v for k, v in data.items() if k in _NAMES})


_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(CustomerState))
_NAMES = frozenset(_FIELDS)
_GET = operator.attrgetter(*_FIELDS)


def decay_to(state: CustomerState, ts: float, half_life_days: float) -> None:
    """Move the decayed features forward to event time ``ts`` (never backward)."""
    if ts <= state.decay_ts:
        return
    factor = 0.5 ** ((ts - state.decay_ts) / (half_life_days * DAY))
    state.d_events *= factor
    state.d_purchases *= factor
    state.d_monetary *= factor
    state.d_sessions *= factor
    state.d_page_views *= factor
    state.d_cart_adds *= factor
    if any(state.d_channels):  # (all zero for customers seen only through purchases)
        state.d_channels = [v * factor for v in state.d_channels]
    if any(state.d_devices):
        state.d_devices = [v * factor for v in state.d_devices]
    state.decay_ts = ts


def _is_new_session(state: CustomerState, event: Event, gap_s: float) -> bool:
    sid = event.session_id
    if sid is not None:
        return sid != state.last_session and all(sid != e[0] for e in state.earlier_sessions)
    if event.type == "session_start":
        return True
    return state.events == 0 or event.ts - state.last_seen > gap_s


def _open_session(state: CustomerState, session_id: str | None) -> None:
    """Before a new session (its id, None: none) is counted: keep the current one's id."""
    if state.last_session is not None:
        earlier = state.earlier_sessions
        earlier.append([state.last_session, state.converted_session == state.sessions])
        if len(earlier) > SESSIONS_KEPT:
            del earlier[: len(earlier) - SESSIONS_KEPT]
    state.last_session = session_id


def convert(state: CustomerState, session_id: str | None) -> bool:
    """Record a purchase in session ``session_id`` (None: the current session); whether it
    is that session's first (a converted session for the KPIs).

    A late purchase of a kept earlier session converts that session, not the current one.

    >>> cfg = Settings()
    >>> s = CustomerState.new("c", 0.0)
    >>> for i, sid in enumerate(("s1", "s2")):
    ...     update(s, Event("click", "page_view", f"e{i}", "c", i * 3600.0, session_id=sid), cfg)
    >>> convert(s, "s1"), convert(s, "s2"), convert(s, "s1"), convert(s, None)
    (True, True, False, False)
    """
    for entry in state.earlier_sessions:
        if entry[0] == session_id:
            first = not entry[1]
            entry[1] = True
            return first
    first = state.converted_session != state.sessions
    state.converted_session = state.sessions
    return first


def update(state: CustomerState, event: Event, cfg: Settings) -> None:
    """Fold one valid click or purchase event into ``state`` (in place).

    The first one of a state created by a profile or consent record (no event
    yet) sets ``first_seen``, ``last_seen`` and the decay reference: those
    records are not activity.
    """
    if state.events == 0:
        state.first_seen = state.last_seen = state.decay_ts = event.ts
    decay_to(state, event.ts, cfg.half_life_days)
    late = state.decay_ts - event.ts
    w = 1.0 if late <= 0.0 else 0.5 ** (late / (cfg.half_life_days * DAY))
    if _is_new_session(state, event, cfg.session_gap_minutes * 60.0):
        _open_session(state, event.session_id)
        state.sessions += 1
        state.d_sessions += w
    state.events += 1
    state.d_events += w
    state.first_seen = min(state.first_seen, event.ts)
    state.last_seen = max(state.last_seen, event.ts)
    if event.channel is not None:
        state.d_channels[CHANNELS.index(event.channel)] += w
    if event.device is not None:
        state.d_devices[DEVICES.index(event.device)] += w
    if event.type in ("page_view", "product_view"):
        state.d_page_views += w
    elif event.type == "add_to_cart":
        state.d_cart_adds += w
    elif event.kind == "purchase":
        _purchase(state, event, w, cfg)


def _purchase(state: CustomerState, event: Event, w: float, cfg: Settings) -> None:
    _reactivation(state, event.ts, cfg.at_risk_days * DAY)
    last = state.last_purchase
    state.purchases += 1
    # to the micro-unit: equal spends tie whatever the order of the purchases (summed in
    # binary, 0.1 + 0.2 + 0.3 and 0.3 + 0.2 + 0.1 differ in the last bit: RFM's M
    # ranked one above the other, review 18)
    state.monetary = round(state.monetary + event.amount, MONEY_DIGITS)
    state.d_purchases += w
    state.d_monetary += w * event.amount
    first = state.first_purchase
    count_day(state, event.ts, first, last, cfg.buying_day_start_s)
    state.first_purchase = event.ts if first is None else min(first, event.ts)
    state.last_purchase = event.ts if last is None else max(last, event.ts)
    state.gap_days = mean_gap_days(state)


def _reactivation(state: CustomerState, ts: float, at_risk_s: float) -> None:
    """Keep ``reactivated_at`` = the latest purchase after a gap > ``at_risk_s``.

    In order, a purchase more than ``at_risk_s`` after the last one is the new
    reactivation. A late purchase can only shorten gaps: one inside the gap
    before the reactivation may cancel it (the late purchase itself becomes the
    reactivation if its own gap is still long), one before the first purchase
    may make the first purchase a reactivation. Earlier reactivations are not
    kept, so a late purchase that cancels the latest one leaves none (documented
    approximation; exact for in-order purchases).

    >>> s = CustomerState.new("c", 0.0)
    >>> for d in (0, 100, 110):
    ...     _reactivation(s, d * DAY, 90 * DAY); s.last_purchase = d * DAY
    ...     s.first_purchase = s.first_purchase if s.first_purchase is not None else d * DAY
    >>> s.reactivated_at / DAY, s.reactivated_from / DAY
    (100.0, 0.0)
    >>> _reactivation(s, 50 * DAY, 90 * DAY); s.reactivated_at  # both gaps now 50 days
    """
    last, first = state.last_purchase, state.first_purchase
    if last is None or first is None:
        return
    if ts > last:
        if ts - last > at_risk_s:
            state.reactivated_at, state.reactivated_from = ts, last
        return
    react, since = state.reactivated_at, state.reactivated_from
    if react is not None and since is not None:
        if since < ts < react:
            if react - ts > at_risk_s:
                state.reactivated_from = ts
            elif ts - since > at_risk_s:
                state.reactivated_at = ts
            else:
                state.reactivated_at = state.reactivated_from = None
        return
    if ts < first and first - ts > at_risk_s:
        state.reactivated_at, state.reactivated_from = first, ts


def mean_gap_days(state: CustomerState) -> float | None:
    """(last - first purchase time) / (purchases - 1) in days; None below two purchases.

    >>> s = CustomerState.new("c", 0.0)
    >>> s.purchases, s.first_purchase, s.last_purchase = 3, 0.0, 10 * DAY
    >>> mean_gap_days(s)
    5.0
    """
    n = state.purchases
    first, last = state.first_purchase, state.last_purchase
    if n < 2 or first is None or last is None:
        return None
    return (last - first) / DAY / (n - 1)
