"""A replication factor above the cluster's broker count: refuse to start, in one line.

Review12 finding 7: the worker created every topic with one replica, hard-coded.
``STREAMSEG_REPLICATION_FACTOR`` sets it; on the single test broker a factor of 2
cannot be placed, and both ``streamseg check`` and the worker must say so in one
line naming the variable (exit code 2, no traceback), creating nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from worker_proc import assert_refused_at_start, make_settings, worker_env


async def test_factor_above_broker_count_stops_worker_and_check(
    tmp_path: Path, broker_url: str, bootstrap_servers: str
) -> None:
    two = make_settings("replicas", tmp_path / "data", broker_url, replication_factor=2)
    env = worker_env(two, broker_url)
    expected = (f"streamseg: error: STREAMSEG_REPLICATION_FACTOR=2, but the cluster at "
                f"{two.bootstrap_servers} has 1 broker: a topic cannot have more replicas "
                "than brokers")
    await assert_refused_at_start(env, expected, bootstrap_servers, two.topic_clickstream)
    # factor 1 (the default) passes on one broker
    env["STREAMSEG_REPLICATION_FACTOR"] = "1"
    ok = subprocess.run([sys.executable, "-m", "streamseg", "check"], env=env,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "replication: 1 replica(s) per new topic, 1 broker(s)" in ok.stdout
