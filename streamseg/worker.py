"""Start a Faust worker: settings -> topics -> app -> agents -> run."""

from __future__ import annotations

import asyncio
import logging

import faust
from prometheus_client import start_http_server

from streamseg.agents import Ingest, register
from streamseg.app import Streamseg, build_app, ensure_topics
from streamseg.config import Settings
from streamseg.engine.processor import Engine
from streamseg.metrics import Metrics
from streamseg.web import register_web

log = logging.getLogger(__name__)


def assemble(settings: Settings, metrics: Metrics | None = None) -> tuple[Streamseg, Ingest]:
    """Build the app and wire the engine into it (no I/O yet)."""
    ss = build_app(settings)
    ingest = register(ss, Engine(settings), metrics or Metrics())
    if settings.web_port > 0:  # lookup API: GET /customers/{id}, GET /segments
        register_web(ss, ingest.engine, ingest.clock.now)
    return ss, ingest


def run(settings: Settings) -> None:
    """Create missing topics, then run the worker until it is stopped (SIGINT/SIGTERM)."""
    asyncio.run(ensure_topics(settings))
    ss, _ = assemble(settings)
    if settings.metrics_port > 0:
        start_http_server(settings.metrics_port)
        log.info("metrics on http://0.0.0.0:%d/metrics", settings.metrics_port)
    worker = faust.Worker(ss.app, loglevel=settings.log_level.upper(), quiet=True)
    worker.execute_from_commandline()
