"""Fixtures for tests that need the real local Kafka broker.

Run them with ``scripts/test``: it starts a throwaway KRaft broker on
127.0.0.1:19092 (data in .kafka/test), exports STREAMSEG_BROKER and stops the
broker afterwards. To run them by hand::

    KAFKA_PORT=19092 KAFKA_HOME_DIR=.kafka/test scripts/kafka start
    .venv/bin/python -m pytest tests/integration
    KAFKA_PORT=19092 KAFKA_HOME_DIR=.kafka/test scripts/kafka stop

Every test in this directory is marked ``integration`` (deselect with
``-m "not integration"``). Without a reachable broker these tests fail with
an explanation; they never skip silently.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

DEFAULT_BROKER = "kafka://127.0.0.1:19092"
_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


def parse_broker_url(url: str) -> list[tuple[str, int]]:
    """``kafka://h1:9092;h2:9093`` (Faust style; ``,`` also accepted) -> [(host, port)]."""
    rest = url.split("://", 1)[1] if "://" in url else url
    hosts = []
    for part in rest.replace(",", ";").split(";"):
        part = part.strip().rstrip("/")
        if not part:
            continue
        split = urlsplit(f"//{part}")
        hosts.append((split.hostname or "127.0.0.1", split.port or 9092))
    if not hosts:
        raise ValueError(f"no broker address in {url!r}")
    return hosts


def _reachable(host: str, port: int, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.25)


@pytest.fixture(scope="session")
def broker_url() -> str:
    """Faust-style broker URL of the running test broker (env STREAMSEG_BROKER)."""
    url = os.environ.get("STREAMSEG_BROKER", DEFAULT_BROKER)
    host, port = parse_broker_url(url)[0]
    if not _reachable(host, port, wait=5.0):
        pytest.fail(
            f"No Kafka broker reachable at {host}:{port} (STREAMSEG_BROKER={url!r}).\n"
            "Integration tests need a real broker. Run the suite with `scripts/test`, "
            "or start one first:\n"
            "    KAFKA_PORT=19092 KAFKA_HOME_DIR=.kafka/test scripts/kafka start",
            pytrace=False,
        )
    return url


@pytest.fixture(scope="session")
def bootstrap_servers(broker_url: str) -> str:
    """The same broker as ``host:port[,host:port]`` for aiokafka / kafka clients."""
    return ",".join(f"{host}:{port}" for host, port in parse_broker_url(broker_url))
