"""``GET /customers/{id}`` answers 503 ``restoring`` while the worker's tables are restored.

Regression (review12 finding 4, scenario C): a worker whose data directory was
lost restores 50k customer states from the changelog; meanwhile the lookup
answered ``404 unknown_customer`` for a known customer, then ``200`` with older
versions of its state (as_of months before), then the right one. A client
cannot tell such answers from real ones. Until Faust reports the restore of the
assigned partitions done (``app.tables.actives_ready``), the worker now answers
503 ``{"error": "restoring"}`` for the customers it would answer from its own
table, ``?scope=local`` included (a peer must not read a restoring worker's 404
as "not here"), and ``GET /segments`` marks its share ``complete: false``.

The real view of a real (unstarted) Faust app, called directly: the router is
told this worker owns the customer; no broker.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from unit.ingest_harness import schema_errors
from yarl import URL

from streamseg import codec
from streamseg.app import build_app
from streamseg.config import Settings
from streamseg.engine.processor import Engine
from streamseg.web import register_web


@pytest.fixture
def views(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    settings = Settings(app_id="restoring", store="memory://", web_port=16099,
                        web_host="127.0.0.1", data_dir=str(tmp_path / "data"))
    ss = build_app(settings)
    register_web(ss, Engine(settings), lambda: None)
    me = URL(ss.app.conf.canonical_url)
    monkeypatch.setattr(ss.app.router, "key_store", lambda table, key: me)  # routed here
    monkeypatch.setattr(ss.app.router, "tables_metadata", lambda: {})  # no other worker
    return ss, ss.app.web.views["/customers/{customer_id}"], ss.app.web.views["/segments"]


def lookup(view: Any, customer_id: str, **query: str) -> tuple[int, Any]:
    request = SimpleNamespace(query=query, url=URL(f"http://127.0.0.1/customers/{customer_id}"))
    response = asyncio.run(view.get(request, customer_id=customer_id))
    return response.status, codec.loads(response.body)


def test_restoring_worker_answers_503_not_unknown(views: Any) -> None:
    ss, customer, _ = views
    ss.app.tables.actives_ready = False  # Faust: the changelog restore is running
    assert lookup(customer, "c1") == (503, {"error": "restoring"})
    assert lookup(customer, "c1", scope="local") == (503, {"error": "restoring"})
    assert schema_errors("lookup-customer", {"error": "restoring"}) == []


def test_restored_worker_answers_as_before(views: Any) -> None:
    ss, customer, _ = views
    ss.app.tables.actives_ready = True
    assert lookup(customer, "c1") == (404, {"error": "unknown_customer"})
    assert lookup(customer, "c1", scope="local") == (404, {"error": "unknown_customer"})


def test_segments_share_of_a_restoring_worker_is_incomplete(views: Any) -> None:
    ss, _, segments = views
    request = SimpleNamespace(query={"scope": "local"}, url=URL("http://127.0.0.1/segments"))
    ss.app.tables.actives_ready = False
    assert codec.loads(asyncio.run(segments.get(request)).body)["complete"] is False
    ss.app.tables.actives_ready = True
    assert codec.loads(asyncio.run(segments.get(request)).body)["complete"] is True


class FakePeer:
    """``app.http_client`` of this worker: every peer answers ``(status, body)``."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.body = status, body
        self.asked: list[str] = []

    def get(self, url: Any, timeout: Any = None) -> Any:
        self.asked.append(str(url))
        peer = self

        class Response:
            status = peer.status

            async def read(self) -> bytes:
                return codec.dumps(peer.body)

            async def __aenter__(self) -> Any:
                return self

            async def __aexit__(self, *exc: Any) -> None:
                return None

        return Response()


@pytest.mark.parametrize("peer", [(200, {"customer_id": "c1"}), (404, {"error": "x"})])
def test_restoring_worker_forwards_to_a_ready_owner_but_never_says_unknown(
        views: Any, monkeypatch: pytest.MonkeyPatch, peer: tuple[int, dict[str, Any]]) -> None:
    ss, customer, _ = views
    other = URL("http://127.0.0.2:16099")
    monkeypatch.setattr(ss.app.router, "key_store", lambda table, key: other)
    client = FakePeer(*peer)
    monkeypatch.setattr(type(ss.app), "http_client", client)
    ss.app.tables.actives_ready = False
    status, body = lookup(customer, "c1")
    assert client.asked == ["http://127.0.0.2:16099/customers/c1?scope=local"]
    if peer[0] == 200:  # the owner's answer: this worker's table plays no part
        assert (status, body) == peer
    else:  # not on the owner: it may be on this worker's partitions, not restored yet
        assert (status, body) == (503, {"error": "restoring"})
