"""Seeded clickstream and purchase events for personas with known ground truth.

Every customer follows one persona (loyal frequent buyer, bargain hunter,
seasonal gift buyer, browser, mobile-first shopper, lapsing customer). Sessions
arrive as a Poisson process in event time; a session is a ``session_start``,
some views and searches, perhaps a cart, a checkout and a purchase. The
events carry no hint of the persona: the ground truth (customer id ->
persona) is kept apart, in :attr:`Simulation.truth`.

The output is deterministic for a seed (one :class:`random.Random`, no global
random state, no wall clock) and sorted by event time. Where the events go (a
JSON-lines file, Kafka): :mod:`streamseg.simulatecli`.

Examples
--------
>>> sim = Simulation(SimConfig(customers=3, days=14, seed=7))
>>> sim.truth
{'c000000': 'seasonal_gift', 'c000001': 'bargain_hunter', 'c000002': 'browser'}
>>> events = list(sim.events())
>>> len(events), events[0]["type"], events[0]["ts"]
(59, 'session_start', '2025-09-01T15:02:19Z')
>>> all(a["ts"] <= b["ts"] for a, b in zip(events, events[1:]))
True
>>> events == list(Simulation(SimConfig(customers=3, days=14, seed=7)).events())
True
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from streamseg.config import DAY
from streamseg.engine.events import format_ts, parse_ts


@dataclass(frozen=True, slots=True)
class Persona:
    """How one kind of customer behaves (rates per day, money in EUR)."""

    name: str
    sessions_per_day: float
    buy_prob: float  # chance that a session ends in a purchase
    basket_eur: float  # median amount paid per order
    discount_share: float  # discount / list price of an order
    mobile_share: float
    channels: tuple[tuple[str, float], ...]
    views: tuple[int, int] = (1, 5)  # page/product views and searches per session
    cart_abandon: float = 0.1  # chance that a session without purchase still fills a cart
    season_boost: float = 1.0  # rate multiplier from 15 Nov to 24 Dec
    lapse_after: tuple[float, float] | None = None  # stops after this share of the period


PERSONAS: dict[str, Persona] = {
    p.name: p
    for p in (
        Persona("loyal_frequent", 0.2, 0.6, 70.0, 0.02, 0.35,
                (("web", 0.5), ("app", 0.3), ("email", 0.2))),
        Persona("bargain_hunter", 0.12, 0.25, 22.0, 0.4, 0.2,
                (("email", 0.4), ("ads", 0.3), ("search", 0.3)), views=(4, 9),
                cart_abandon=0.7),
        Persona("seasonal_gift", 0.012, 0.5, 160.0, 0.05, 0.2,
                (("search", 0.6), ("ads", 0.4)), season_boost=15.0),
        Persona("browser", 0.25, 0.01, 40.0, 0.05, 0.4,
                (("web", 0.5), ("social", 0.5)), views=(5, 12)),
        Persona("mobile_first", 0.15, 0.25, 45.0, 0.08, 0.95,
                (("app", 0.8), ("social", 0.2))),
        Persona("lapsing", 0.15, 0.5, 60.0, 0.05, 0.35,
                (("web", 0.6), ("email", 0.4)), lapse_after=(0.2, 0.45)),
    )
}
CURRENCIES = (("EUR", 1.0, 0.9), ("USD", 0.92, 0.06), ("GBP", 1.17, 0.04))
BROWSE = ("page_view", "product_view", "search")
CORRUPTIONS = ("negative_amount", "bad_ts", "unknown_type", "bad_currency", "empty_customer")


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What to simulate; ``start`` is epoch seconds (default 2025-09-01T00:00:00Z)."""

    customers: int = 1000
    days: float = 180.0
    seed: int = 0
    start: float = 1_756_684_800.0
    invalid_share: float = 0.0
    personas: tuple[str, ...] = tuple(PERSONAS)


def _season_windows(start: float, end: float) -> list[tuple[float, float]]:
    """15 Nov .. 25 Dec of every year the period touches, in epoch seconds."""
    first = datetime.fromtimestamp(start, tz=UTC).year
    last = datetime.fromtimestamp(end, tz=UTC).year
    return [
        (datetime(y, 11, 15, tzinfo=UTC).timestamp(), datetime(y, 12, 25, tzinfo=UTC).timestamp())
        for y in range(first, last + 1)
    ]


class Simulation:
    """The customers of one run, their personas and a lazy, time-sorted event stream."""

    def __init__(self, cfg: SimConfig) -> None:
        unknown = set(cfg.personas) - set(PERSONAS)
        if unknown or not cfg.personas:
            raise ValueError(f"unknown personas: {sorted(unknown)}")
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.end = cfg.start + cfg.days * DAY
        self.seasons = _season_windows(cfg.start, self.end)
        width = max(6, len(str(max(cfg.customers - 1, 0))))
        self.ids = [f"c{i:0{width}d}" for i in range(cfg.customers)]
        self.personas = [PERSONAS[self.rng.choice(cfg.personas)] for _ in self.ids]
        self.truth = {cid: p.name for cid, p in zip(self.ids, self.personas, strict=True)}
        self.stops = [self._stop(p) for p in self.personas]
        self.seq = 0

    def _stop(self, p: Persona) -> float:
        if p.lapse_after is None:
            return self.end
        lo, hi = p.lapse_after
        return self.cfg.start + self.rng.uniform(lo, hi) * self.cfg.days * DAY

    def _in_season(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.seasons)

    def events(self) -> Iterator[dict[str, Any]]:
        """Every event of the run, sorted by event time (ties in generation order)."""
        rng = self.rng
        sessions: list[tuple[float, int]] = []
        for i, p in enumerate(self.personas):
            t = self.cfg.start + rng.expovariate(p.sessions_per_day * p.season_boost) * DAY
            if t < self.stops[i]:
                sessions.append((t, i))
        heapq.heapify(sessions)
        pending: list[tuple[int, int, dict[str, Any]]] = []
        share = self.cfg.invalid_share
        n = 0
        while sessions:
            t, i = heapq.heappop(sessions)
            while pending and pending[0][0] <= t:
                yield heapq.heappop(pending)[2]
            p = self.personas[i]
            # thinning: arrivals at the peak rate, kept off-season with 1/boost
            if p.season_boost == 1.0 or self._in_season(t) or rng.random() < 1 / p.season_boost:
                for ev in self._session(i, p, int(t)):
                    key = int(parse_ts(ev["ts"]))
                    if share > 0.0 and rng.random() < share:
                        ev = self._corrupt(ev)
                    n += 1
                    heapq.heappush(pending, (key, n, ev))
            nxt = t + rng.expovariate(p.sessions_per_day * p.season_boost) * DAY
            if nxt < self.stops[i]:
                heapq.heappush(sessions, (nxt, i))
        while pending:
            yield heapq.heappop(pending)[2]

    def _session(self, i: int, p: Persona, t: int) -> list[dict[str, Any]]:
        rng = self.rng
        cid = self.ids[i]
        base = {
            "customer_id": cid,
            "session_id": f"s{i}-{t}",
            "channel": _pick(rng, p.channels),
            "device": "mobile" if rng.random() < p.mobile_share else (
                "desktop" if rng.random() < 0.8 else "tablet"),
        }
        out = [self._click(base, "session_start", t)]
        for _ in range(rng.randint(*p.views)):
            t += rng.randint(5, 120)
            kind = rng.choice(BROWSE)
            extra: dict[str, Any] = {"query": f"q{rng.randint(1, 50)}"} if kind == "search" else {
                "product_id": f"p{rng.randint(1, 500)}"}
            out.append(self._click(base, kind, t, **extra))
        buys = rng.random() < p.buy_prob
        if buys or rng.random() < p.cart_abandon:
            products = [f"p{rng.randint(1, 500)}" for _ in range(rng.randint(1, 3))]
            for prod in products:
                t += rng.randint(5, 60)
                out.append(self._click(base, "add_to_cart", t, product_id=prod, quantity=1))
            if len(products) > 1 and rng.random() < 0.1:
                t += rng.randint(5, 60)
                out.append(self._click(base, "remove_from_cart", t, product_id=products.pop()))
            if buys:
                t += rng.randint(10, 90)
                out.append(self._click(base, "checkout_start", t))
                t += rng.randint(30, 300)
                out.append(self._purchase(base, p, products, t, i))
        return out

    def _next_id(self) -> str:
        self.seq += 1
        return f"ev{self.seq:010d}"

    def _click(self, base: dict[str, Any], kind: str, t: int, **extra: Any) -> dict[str, Any]:
        return {"event_id": self._next_id(), "type": kind, "ts": format_ts(t), **base, **extra}

    def _purchase(
        self, base: dict[str, Any], p: Persona, products: list[str], t: int, i: int
    ) -> dict[str, Any]:
        rng = self.rng
        paid_eur = p.basket_eur * math.exp(rng.gauss(0.0, 0.25))
        discount_eur = paid_eur * p.discount_share * rng.uniform(0.8, 1.2) / (1 - p.discount_share)
        currency, rate = _currency(rng)
        prices = [rng.uniform(0.5, 1.5) for _ in products]
        scale = (paid_eur + discount_eur) / rate / sum(prices)
        items = [
            {"product_id": prod, "quantity": 1, "price": round(w * scale, 2),
             "category": f"cat{int(prod[1:]) % 12}"}
            for prod, w in zip(products, prices, strict=True)
        ]
        return {
            "event_id": self._next_id(), "type": "purchase", "ts": format_ts(t),
            **base, "order_id": f"o{i}-{t}", "amount": round(paid_eur / rate, 2),
            "currency": currency, "discount": round(discount_eur / rate, 2), "items": items,
        }

    def _corrupt(self, ev: dict[str, Any]) -> dict[str, Any]:
        bad = dict(ev)
        how = self.rng.choice(CORRUPTIONS)
        if how == "negative_amount" and "amount" in bad:
            bad["amount"] = -bad["amount"] - 1.0
        elif how == "bad_currency" and "currency" in bad:
            bad["currency"] = "XXX"
        elif how == "unknown_type":
            bad["type"] = "teleport"
        elif how == "empty_customer":
            bad["customer_id"] = ""
        else:
            bad["ts"] = "yesterday"
        return bad


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    names = [n for n, _ in weighted]
    return rng.choices(names, weights=[w for _, w in weighted])[0]


def _currency(rng: random.Random) -> tuple[str, float]:
    cur, rate, _ = rng.choices(CURRENCIES, weights=[w for *_, w in CURRENCIES])[0]
    return cur, rate
