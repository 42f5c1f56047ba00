"""Start a Faust worker: settings -> broker -> topics -> app -> agents -> telemetry -> run."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import sys
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import faust
from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app

from streamseg import telemetry
from streamseg.agents import register
from streamseg.app import Streamseg, build_app, ensure_topics
from streamseg.broker import wait_for_broker
from streamseg.config import Settings, check_data_dir, make_data_dir
from streamseg.engine import segmenters
from streamseg.engine.processor import Engine
from streamseg.errors import ConfigError
from streamseg.ingest import Ingest
from streamseg.metrics import Metrics
from streamseg.web import register_web

log = logging.getLogger(__name__)


def assemble(settings: Settings, metrics: Metrics | None = None) -> tuple[Streamseg, Ingest]:
    """Build the app and wire the engine into it (no I/O yet)."""
    ss = build_app(settings)
    engine = Engine(settings)
    metrics = metrics or Metrics()
    metrics.declare_segments((seg.name, seg.segments()) for seg in engine.segmenters)
    ingest = register(ss, engine, metrics)
    audiences = [seg.name.removeprefix("audience:") for seg in engine.segmenters
                 if seg.name.startswith("audience:")]
    telemetry.watch_audiences(ss, metrics, audiences)  # over-segmentation: metric + log
    metrics.kpis_from(lambda: ingest.engine.kpis.view())
    if settings.web_port > 0:  # lookup API: GET /customers/{id}, GET /segments
        register_web(ss, ingest.engine, ingest.clock.now)
    return ss, ingest


def say(line: str) -> None:
    """One line on stderr, before the worker's own logging is set up."""
    print(f"streamseg: {line}", file=sys.stderr, flush=True)


class _MetricsServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # as prometheus_client's own server: never blocks the exit


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr (scrapes every few seconds)."""


def metrics_app(registry: CollectorRegistry = REGISTRY) -> Any:
    """prometheus_client's WSGI app on ``/metrics`` only; any other path is 404.

    ``HEAD /metrics`` (uptime checks) answers as ``GET`` with no body; prometheus_client
    alone answers it 405.

    >>> from wsgiref.util import setup_testing_defaults
    >>> def get(path):
    ...     env, got = {"PATH_INFO": path}, []
    ...     setup_testing_defaults(env)
    ...     body = b"".join(metrics_app(CollectorRegistry())(env, lambda s, h: got.append(s)))
    ...     return got[0], body[:9]
    >>> get("/metrics")[0], get("/metrics/bogus"), get("/")
    ('200 OK', ('404 Not Found', b'not found'), ('404 Not Found', b'not found'))
    >>> env, got = {"PATH_INFO": "/metrics", "REQUEST_METHOD": "HEAD"}, []
    >>> setup_testing_defaults(env)
    >>> body = b"".join(metrics_app(CollectorRegistry())(env, lambda s, h: got.append(s)))
    >>> got, body
    (['200 OK'], b'')
    """
    prometheus = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/metrics":
            if environ.get("REQUEST_METHOD") == "HEAD":
                for _ in prometheus({**environ, "REQUEST_METHOD": "GET"}, start_response):
                    pass
                return []
            return prometheus(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: the metrics are at /metrics\n"]

    return app


def serve_metrics(port: int) -> WSGIServer:
    """Start the ``/metrics`` endpoint (a daemon thread); return its server.

    A port that cannot be bound is a settings error.
    """
    try:
        server = make_server("0.0.0.0", port, metrics_app(), _MetricsServer,
                             handler_class=_QuietHandler)
    except OSError as exc:
        raise ConfigError(
            f"STREAMSEG_METRICS_PORT: cannot listen on port {port}: {exc.strerror or exc}"
        ) from None
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def check_web_port(host: str, port: int) -> None:
    """Fail early, in one line, if Faust's web server could not listen on ``host:port``.

    Faust binds its web server (the lookup API) only once the worker is running,
    and a port in use then ends the worker with a long traceback. This binds and
    listens on every address of ``host`` the way asyncio's ``create_server`` does
    (``SO_REUSEADDR``, IPv6 only on IPv6 sockets), then closes each socket at once,
    so the port is free again for Faust. A port taken between this check and
    Faust's start still fails, later, with Faust's own error.

    >>> check_web_port("127.0.0.1", 0)  # any free port
    """
    try:
        for family, kind, proto, _, address in {*socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)}:
            with socket.socket(family, kind, proto) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen()
    except OSError as exc:
        raise ConfigError(
            f"STREAMSEG_WEB_PORT: cannot listen on port {port} (STREAMSEG_WEB_BIND={host}): "
            f"{exc.strerror or exc}"
        ) from None


def settle_heap() -> int:
    """Collect once, then keep every object alive now out of later collections; how many.

    Called when the app is assembled, just before the worker runs. About 100k
    objects then (the modules of Faust, aiokafka, River..., the app, the engine)
    live as long as the process, and Python's full (generation 2) collection
    walks every tracked object: in a worker at 2,000 events/s one ran every ~7 s
    and took 40-240 ms on a loaded 2-core machine, an event-loop stall in which
    the incoming events queue, which set the p99 event -> change latency. Frozen
    objects (``gc.freeze``) are not walked again: the same collections took 6-9
    ms (docs/OPERATIONS.md). A frozen object that dies is still freed by
    reference counting; only a reference cycle among frozen objects would stay.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def run(settings: Settings) -> None:
    """Check the data directory, serve metrics, check the web port, wait for the broker,
    create missing topics and the data directory, run.

    Runs until SIGINT/SIGTERM.
    """
    segmenters.default(settings)  # a bad audiences file stops here, before any wait (FILE:LINE)
    check_data_dir(settings.data_dir)  # before any wait; created just before Faust
    metrics = Metrics()
    if settings.metrics_port > 0:
        serve_metrics(settings.metrics_port)
        say(f"metrics on http://0.0.0.0:{settings.metrics_port}/metrics")
    if settings.web_port > 0:
        check_web_port(settings.web_bind, settings.web_port)
    asyncio.run(wait_for_broker(settings, say))
    # a changelog left by an earlier run with another STREAMSEG_PARTITIONS stops Faust's
    # agent (PartitionsMismatch) while the process stays up: ensure_topics refuses first
    # (and a STREAMSEG_REPLICATION_FACTOR above the broker count), creating nothing
    asyncio.run(ensure_topics(settings))
    make_data_dir(settings.data_dir)  # with its parents (Faust would not create them)
    ss, ingest = assemble(settings, metrics)
    _, errors = telemetry.install(ss, ingest.metrics)
    worker = faust.Worker(ss.app, loglevel=settings.log_level.upper(), quiet=True)
    worker.loghandlers.append(errors)  # counted by component, installed with Faust's logging
    settle_heap()
    worker.execute_from_commandline()
