"""Start a Faust worker: settings -> broker -> topics -> app -> agents -> telemetry -> run."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys

import faust
from prometheus_client import start_http_server

from streamseg import telemetry
from streamseg.agents import Ingest, register
from streamseg.app import Streamseg, build_app, ensure_topics
from streamseg.broker import wait_for_broker
from streamseg.config import Settings
from streamseg.engine import segmenters
from streamseg.engine.processor import Engine
from streamseg.errors import ConfigError
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


def serve_metrics(port: int) -> None:
    """Start the ``/metrics`` endpoint; a port that cannot be bound is a settings error."""
    try:
        start_http_server(port)
    except OSError as exc:
        raise ConfigError(
            f"STREAMSEG_METRICS_PORT: cannot listen on port {port}: {exc.strerror or exc}"
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
    """Serve metrics, wait for the broker, create missing topics, run until SIGINT/SIGTERM."""
    segmenters.default(settings)  # a bad audiences file stops here, before any wait (FILE:LINE)
    metrics = Metrics()
    if settings.metrics_port > 0:
        serve_metrics(settings.metrics_port)
        say(f"metrics on http://0.0.0.0:{settings.metrics_port}/metrics")
    asyncio.run(wait_for_broker(settings, say))
    asyncio.run(ensure_topics(settings))
    ss, ingest = assemble(settings, metrics)
    _, errors = telemetry.install(ss, ingest.metrics)
    worker = faust.Worker(ss.app, loglevel=settings.log_level.upper(), quiet=True)
    worker.loghandlers.append(errors)  # counted by component, installed with Faust's logging
    settle_heap()
    worker.execute_from_commandline()
