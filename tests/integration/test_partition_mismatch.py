"""A table changelog left with another partition count: refuse to start, in one line.

Reviewer's defect: a changelog created with 4 partitions by an earlier start, then
a worker started with ``STREAMSEG_PARTITIONS=1``: Faust's agent crashed twice
(``PartitionsMismatch``) and stopped, the process stayed alive publishing
nothing, and ``streamseg check`` said every topic exists.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from worker_proc import assert_refused_at_start, make_settings, worker_env

from streamseg.app import changelog


async def test_a_changelog_with_another_partition_count_stops_worker_and_check(
    tmp_path: Path, broker_url: str, bootstrap_servers: str
) -> None:
    four = make_settings("mismatch", tmp_path / "data", broker_url, partitions=4)
    state = changelog(four, "customer-state")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(state, 4, 1)])
    finally:
        await admin.close()
    one = dataclasses.replace(four, partitions=1)
    env = worker_env(one, broker_url)
    expected = (f"streamseg: error: STREAMSEG_PARTITIONS=1, but {state} (4 partitions): inputs, "
                "ticks and table changelogs must have the same partition count")
    await assert_refused_at_start(env, expected, bootstrap_servers, one.topic_clickstream)
    # the right count passes the check
    ok = subprocess.run([sys.executable, "-m", "streamseg", "check"],
                        env=worker_env(four, broker_url), capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "partitions: every co-partitioned topic that exists has 4" in ok.stdout
