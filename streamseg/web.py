"""The lookup API on Faust's web server (transport edge; answers from ``engine.lookup``).

* ``GET /customers/{customer_id}``: the customer's current segments, since
  when, and a feature summary. Any worker answers for any customer: Faust's
  router (``app.router.key_store``: the partition assignor's map of table
  partitions to workers) names the worker that owns the customer's partition
  of the state table; the request is forwarded there with ``?scope=local``
  and the owner answers from its local state (one hop, never a loop even
  while two workers' views of the assignment differ during a rebalance).
  ``?scope=local`` asks a worker for its own state only: 421 ``not_owner``
  if the customer's partition is not one it owns (standby copies are never
  served). 503 while no assignment is known, while two workers disagree on
  it (rebalancing), or when the owner does not answer.
* ``GET /segments``: customers per segment per segmenter, summed over the
  workers (this worker's share plus ``/segments?scope=local`` of every other
  worker the partition assignor lists).

Routing assumption: Faust's router picks the partition of the *raw customer
id* (the message key) with the Kafka client's default partitioner (murmur2,
as Java clients and aiokafka do). That is where the customer's state lives
when producers key input with the customer id and use that partitioner. A
producer that partitions otherwise (librdkafka's CRC32 default, explicit
partitions) puts the state elsewhere and the routed worker answers 404 (see
README, "For integrators"). With ``STREAMSEG_PSEUDONYMISE_KEY`` the path
carries the raw id; it routes by the raw id (the key the producer partitioned
by) and the owner looks up its keyed hash.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
from yarl import URL

from streamseg import codec
from streamseg.app import Streamseg
from streamseg.engine.features import CustomerState
from streamseg.engine.lookup import customer_answer, merge_sizes, segment_sizes
from streamseg.engine.processor import Engine
from streamseg.engine.validate import pseudonymise
from streamseg.punctuator import COPY

log = logging.getLogger(__name__)
JSON = "application/json"
PEER_TIMEOUT_S = 10.0


def route_key(customer_id: str) -> str:
    """The key Faust's router hashes to find a customer's partition: the raw id.

    It is the message key producers partition input by (before any
    pseudonymisation); if state placement ever moves to another key, this is
    the one place to change.
    """
    return customer_id


def table_key(secret: str, customer_id: str) -> bytes:
    """The state-table key of a raw customer id (its keyed hash when pseudonymising).

    >>> table_key("", "c1"), table_key("k", "42")
    (b'c1', b'7955074f51169f1f64053d8b2c403d7f')
    """
    return (pseudonymise(secret, customer_id) if secret else customer_id).encode()


def _ident(url: URL | str) -> tuple[str, int]:
    url = URL(str(url))
    return (url.host or "", url.port or 80)


def register_web(ss: Streamseg, engine: Engine, clock: Callable[[], float | None]) -> None:
    """Add the lookup views to the app (call before the worker starts).

    ``clock`` returns this worker's event-time clock (None before any event):
    feature summaries are reported as of it.
    """
    app = ss.app
    secret = ss.settings.pseudonymise_key

    def respond(view: Any, status: int, body: dict[str, Any]) -> Any:
        return view.bytes(codec.dumps(body), content_type=JSON, status=status)

    def local_states() -> list[CustomerState]:
        # the table iterates the partitions this worker owns (RocksDB store)
        # a marker a consent copy left on a partition that never saw the customer
        # is not a customer (streamseg.punctuator.COPY)
        values = (codec.loads(raw) for raw in ss.state.values())
        return [CustomerState.from_dict(v) for v in values if not v.get(COPY)]

    async def forward(url: URL) -> tuple[int, dict[str, Any]]:
        """GET ``url`` on another worker: (status, JSON body); 503 if it does not answer."""
        try:
            async with app.http_client.get(
                url, timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
            ) as resp:
                return resp.status, codec.loads(await resp.read())
        except (aiohttp.ClientError, TimeoutError, codec.DecodeError) as exc:
            log.warning("lookup via %s: %s", url, exc)
            return 503, {"error": "owner_unavailable"}

    @app.page("/customers/{customer_id}")
    async def customer(view: Any, request: Any, customer_id: str) -> Any:
        try:
            owner = app.router.key_store(ss.state.name, route_key(customer_id))
        except KeyError:  # no assignment yet (starting, rebalancing)
            return respond(view, 503, {"error": "not_assigned"})
        if _ident(owner) != _ident(app.conf.canonical_url):
            if request.query.get("scope") == "local":
                # not ours (a standby or stale copy is never served): 421
                return respond(view, 421, {"error": "not_owner"})
            # the owner answers from its own state (scope=local: no second hop)
            target = owner.with_path(request.url.raw_path, encoded=True).with_query(
                scope="local")
            status, body = await forward(target)
            if status == 421:  # the two workers' views of the assignment differ
                status, body = 503, {"error": "not_assigned"}
            return respond(view, status, body)
        raw = ss.state.get(table_key(secret, customer_id))
        state = None if raw is None else CustomerState.from_dict(codec.loads(raw))
        status, body = customer_answer(engine, state, clock() or 0.0)
        return respond(view, status, body)

    async def peer_sizes(url: str) -> dict[str, Any]:
        target = URL(url).with_path("/segments").with_query(scope="local")
        try:
            async with app.http_client.get(
                target, timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
            ) as resp:
                if resp.status == 200:
                    part: dict[str, Any] = codec.loads(await resp.read())
                    return part
                log.warning("segments from %s: HTTP %s", url, resp.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("segments from %s: %s", url, exc)
        return {"customers": 0, "suppressed": 0, "segmenters": {}, "workers": 0,
                "complete": False}

    @app.page("/segments")
    async def segments(view: Any, request: Any) -> Any:
        local = segment_sizes(local_states())
        if request.query.get("scope") == "local":
            return respond(view, 200, local)
        me = _ident(app.conf.canonical_url)
        peers = [url for url in app.router.tables_metadata() if _ident(url) != me]
        parts = await asyncio.gather(*(peer_sizes(url) for url in peers))
        return respond(view, 200, merge_sizes([local, *parts]))
