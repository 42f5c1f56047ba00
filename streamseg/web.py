"""The lookup API on Faust's web server (transport edge; answers from ``engine.lookup``).

* ``GET /customers/{customer_id}``: the customer's current segments, since
  when, and a feature summary. Any worker answers for any customer. Faust's
  router (``app.router.key_store``: the partition assignor's map of table
  partitions to workers) names the worker that owns murmur2(raw id)'s
  partition, where a Java-style producer (murmur2: Java clients, aiokafka)
  put the customer; it answers first (locally, or forwarded with
  ``?scope=local``). If it has no such customer, the producer partitioned
  otherwise (librdkafka's CRC32 default in kcat and confluent-kafka, explicit
  partitions): the customer's state lives on the partition its events arrived
  on, so the receiving worker searches its own partitions and asks every other
  worker with ``?scope=local``, and returns the one found. 404 only when every
  worker answered and none holds the customer; 503 if one did not answer (a
  customer is never declared unknown while a peer is unreachable), while no
  assignment is known, or while two workers disagree on it (rebalancing).
  503 ``{"error": "restoring"}`` while the worker that would answer from its
  own partitions is still restoring its table from the changelog (Faust's
  ``actives_ready``, :func:`streamseg.punctuator.tables_ready`): a half-restored
  table would answer 404 for a known customer, or an older version of one. A
  restoring worker still forwards a lookup routed to a ready worker.
  ``?scope=local`` asks a worker for the states on the partitions it owns
  (each state records its partition; standby copies are never served): the
  answer if it holds the customer, else 404 from the routed owner and 421
  ``not_owner`` from the others. A customer fed through two partitioners has
  one state per partition; the routed owner's is answered, else the first
  found.
* ``GET /segments``: customers and KPIs per segment per segmenter, summed over
  the workers (this worker's share plus ``/segments?scope=local`` of every
  other worker the partition assignor lists); KPI ratios are recomputed from
  the summed numerators and denominators.
* Any other ``?scope=`` value: 400 ``{"error": "bad_scope", "allowed": ["local"]}``.

Cost: a customer not on its murmur2 partition costs one request per worker
(in parallel, ``PEER_TIMEOUT_S``); unknown ids cost the same. With
``STREAMSEG_PSEUDONYMISE_KEY`` the path carries the raw id; it routes by the
raw id (the key the producer partitioned by) and every worker looks up its
keyed hash. Which of the key's values on this worker's partitions is the
customer: :mod:`streamseg.lookupstate`.
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
from streamseg.engine.lookup import UNKNOWN, customer_answer, merge_sizes, segments_answer
from streamseg.engine.processor import Engine
from streamseg.lookupstate import route_key, stored, table_key
from streamseg.partitions import home
from streamseg.punctuator import COPY, tables_ready

log = logging.getLogger(__name__)
JSON = "application/json"
PEER_TIMEOUT_S = 10.0
Answer = tuple[int, dict[str, Any]]
# this worker's tables are being restored from their changelogs (after an assignment)
RESTORING: dict[str, Any] = {"error": "restoring"}


def _ident(url: URL | str) -> tuple[str, int]:
    url = URL(str(url))
    return (url.host or "", url.port or 80)


def _local(base: URL | str, path: str) -> URL:
    """``path`` on the worker at ``base``, asking for its own state (``?scope=local``)."""
    return URL(str(base)).with_path(path, encoded=True).with_query(scope="local")


def pick(answers: list[Answer]) -> Answer:
    """The lookup's answer from the other workers' ``?scope=local`` answers.

    A holder's answer (200) wins; else 503 if a worker did not answer (404 or
    421 are "not here"), so a customer is never declared unknown while a peer
    is unreachable; else 404.

    >>> pick([(404, UNKNOWN), (200, {"customer_id": "c"}), (503, {})])
    (200, {'customer_id': 'c'})
    >>> pick([(421, {}), (503, {"error": "owner_unavailable"})])
    (503, {'error': 'owner_unavailable'})
    >>> pick([(421, {}), (404, UNKNOWN)]), pick([])
    ((404, {'error': 'unknown_customer'}), (404, {'error': 'unknown_customer'}))
    """
    for status, body in answers:
        if status == 200:
            return status, body
    if any(status not in (404, 421) for status, _ in answers):
        return 503, {"error": "owner_unavailable"}
    return 404, dict(UNKNOWN)


SCOPES = ("local",)


def bad_scope(scope: str | None) -> Answer | None:
    """400 for a ``?scope=`` the API does not know (absent: all workers; ``local``).

    >>> bad_scope(None), bad_scope("local")
    (None, None)
    >>> bad_scope("bogus")
    (400, {'error': 'bad_scope', 'allowed': ['local']})
    """
    if scope is None or scope in SCOPES:
        return None
    return 400, {"error": "bad_scope", "allowed": list(SCOPES)}


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

    def owned() -> set[int]:
        """The partitions of the state table this worker owns (actives, not standbys)."""
        topic = ss.state.changelog_topic.get_topic_name()
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}

    def local_answer(customer_id: str) -> Answer | None:
        """This worker's answer if it holds the customer on a partition it owns, else None."""
        data = stored(ss.state, table_key(secret, customer_id), owned(),
                      home(route_key(customer_id).encode(), ss.settings.partitions))
        if data is None:
            return None
        return customer_answer(engine, CustomerState.from_dict(data), clock() or 0.0)

    async def forward(url: URL) -> Answer:
        """GET ``url`` on another worker: (status, JSON body); 503 if it does not answer."""
        try:
            async with app.http_client.get(
                url, timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
            ) as resp:
                return resp.status, codec.loads(await resp.read())
        except (aiohttp.ClientError, TimeoutError, codec.DecodeError) as exc:
            log.warning("lookup via %s: %s", url, exc)
            return 503, {"error": "owner_unavailable"}

    async def search(customer_id: str, path: str, owner: URL) -> Answer:
        """Not on the routed partition: this worker's own partitions, then every other worker."""
        me = _ident(app.conf.canonical_url)
        if _ident(owner) != me:
            found = local_answer(customer_id)
            if found is not None:
                return found
        skip = {me, _ident(owner)}
        peers = [url for url in app.router.tables_metadata() if _ident(url) not in skip]
        return pick(list(await asyncio.gather(*(forward(_local(url, path)) for url in peers))))

    @app.page("/customers/{customer_id}")
    async def customer(view: Any, request: Any, customer_id: str) -> Any:
        if (refused := bad_scope(request.query.get("scope"))) is not None:
            return respond(view, *refused)
        try:
            owner = app.router.key_store(ss.state.name, route_key(customer_id))
        except KeyError:  # no assignment yet (starting, rebalancing)
            return respond(view, 503, {"error": "not_assigned"})
        routed_here = _ident(owner) == _ident(app.conf.canonical_url)
        # a table being restored (wiped data dir, new assignment) answers 404 for
        # customers not restored yet and older versions of the others
        ready = tables_ready(ss)
        if not ready and (routed_here or request.query.get("scope") == "local"):
            return respond(view, 503, dict(RESTORING))
        if request.query.get("scope") == "local":
            found = local_answer(customer_id)
            if found is not None:
                return respond(view, *found)
            if routed_here:
                return respond(view, 404, dict(UNKNOWN))
            return respond(view, 421, {"error": "not_owner"})
        path = request.url.raw_path
        if routed_here:
            status, body = local_answer(customer_id) or (404, dict(UNKNOWN))
        else:
            # the routed owner answers from its own state (scope=local: no second hop)
            status, body = await forward(_local(owner, path))
            if status == 421:  # the two workers' views of the assignment differ
                status, body = 503, {"error": "not_assigned"}
        if status == 404:  # not where murmur2 puts it: another partitioner
            if not ready:  # this worker's own partitions cannot be searched yet
                return respond(view, 503, dict(RESTORING))
            status, body = await search(customer_id, path, owner)
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
                "complete": False, "kpis": {}}

    @app.page("/segments")
    async def segments(view: Any, request: Any) -> Any:
        if (refused := bad_scope(request.query.get("scope"))) is not None:
            return respond(view, *refused)
        local = segments_answer(engine, local_states(), clock() or 0.0)
        if not tables_ready(ss):  # counts of a table still being restored
            local["complete"] = False
        if request.query.get("scope") == "local":
            return respond(view, 200, local)
        me = _ident(app.conf.canonical_url)
        peers = [url for url in app.router.tables_metadata() if _ident(url) != me]
        parts = await asyncio.gather(*(peer_sizes(url) for url in peers))
        return respond(view, 200, merge_sizes([local, *parts]))
