"""Broker restart: the worker survives the broker going away for a while and catches up.

This test runs its own broker (``scripts/kafka`` with KAFKA_PORT=18092 and
KAFKA_HOME_DIR=.kafka/restart-test under scripts/test, wiped first; see PORT
below), so it never disturbs the shared test broker and works the same in CI.
The worker is processing the first half of a stream when the broker is
stopped for ``DOWN_S`` seconds (longer than the consumer session timeout); the
worker keeps running, the broker comes back with its data, the second half is
produced, and the worker must publish exactly the changes of the pure engine
for the whole stream, without exiting.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DEFAULT_BROKER, parse_broker_url
from kafka_helpers import produce
from worker_proc import (
    REPO,
    Tail,
    Workers,
    change_ids,
    make_settings,
    reference_changes,
    story,
)

from streamseg.app import ensure_topics

# The dedicated broker: 18092 under scripts/test (suite broker 19092); for a suite
# broker on another port P, 21000 + 10 * (P // 1000), so that people running the suite
# against different brokers on one machine do not share it. Always below 32768: a port
# inside Linux's ephemeral range (net.ipv4.ip_local_port_range, 32768-60999) can be
# taken by a client's TCP self-connect while the worker retries a stopped broker, and
# the broker then fails to restart with "Address already in use".
_SUITE_PORT = parse_broker_url(os.environ.get("STREAMSEG_BROKER", DEFAULT_BROKER))[0][1]
_DEFAULT_PORT = 18092 if _SUITE_PORT == 19092 else 21000 + 10 * (_SUITE_PORT // 1000)
PORT = int(os.environ.get("STREAMSEG_RESTART_KAFKA_PORT", str(_DEFAULT_PORT)))
HOME = os.environ.get(
    "STREAMSEG_RESTART_KAFKA_HOME",
    ".kafka/restart-test" if PORT == 18092 else f".kafka/restart-test-{PORT}",
)
DOWN_S = 12.0
MID_STREAM = 15  # changes published when the broker is stopped


def kafka(command: str) -> None:
    env = {**os.environ, "KAFKA_PORT": str(PORT), "KAFKA_HOME_DIR": HOME}
    env.pop("KAFKA_CONTROLLER_PORT", None)
    done = subprocess.run([str(REPO / "scripts" / "kafka"), command], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"scripts/kafka {command}:\n{done.stdout}\n{done.stderr}"


@pytest.fixture
def own_broker() -> Iterator[str]:
    kafka("reset")
    kafka("start")
    try:
        yield f"127.0.0.1:{PORT}"
    finally:
        kafka("stop")


async def test_worker_survives_broker_restart_and_catches_up(
    tmp_path: Path, own_broker: str
) -> None:
    bootstrap = own_broker
    broker_url = f"kafka://{bootstrap}"
    settings = make_settings("restart", tmp_path / "data", broker_url, partitions=2)
    await ensure_topics(settings)
    messages = story(customers=24, events_per_customer=8, seed=3)
    half = len(messages) // 2
    expected = set(change_ids(reference_changes(settings, messages)))

    def topic(kind: str) -> str:
        return settings.topic_purchases if kind == "purchase" else settings.topic_clickstream

    async def send(part: list[tuple[str, bytes, bytes]]) -> None:
        for kind in ("purchase", "click"):
            await produce(bootstrap, topic(kind), [(k, v) for kd, k, v in part if kd == kind])

    with Workers(broker_url, tmp_path) as workers:
        worker = workers.new("restart-worker", settings)
        await worker.start().ready()
        await send(messages[:half])
        async with Tail(bootstrap, settings.topic_changes) as tail:
            # pull the broker away while the worker is busy publishing
            assert await tail.until(lambda t: len(t.records) >= MID_STREAM, timeout=60)
            kafka("stop")
            assert set(change_ids(tail.values())) < expected, "stopped mid-stream"
        await asyncio.sleep(DOWN_S)
        assert worker.alive(), "the worker exited while the broker was away"
        kafka("start")
        await send(messages[half:])
        async with Tail(bootstrap, settings.topic_changes) as tail:
            caught_up = await tail.until(
                lambda t: set(change_ids(t.values())) >= expected, timeout=120, settle=2.0
            )
            got = change_ids(tail.values())
        assert worker.alive(), "the worker exited after the broker came back"
        assert caught_up, f"missing {len(expected - set(got))} of {len(expected)} changes"
        assert set(got) == expected
        print(f"changes={len(expected)} published={len(got)} "
              f"duplicates={sum(n - 1 for n in Counter(got).values())}")
