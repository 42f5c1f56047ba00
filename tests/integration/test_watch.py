"""``streamseg watch --count N`` prints N changes and stops (a new user's run: ``--count
3`` printed 80, all that one fetch brought, because the count was checked per fetch)."""

from __future__ import annotations

import io
from pathlib import Path

from kafka_helpers import create_topics, produce
from worker_proc import make_settings

from streamseg import codec
from streamseg.console import watch


async def test_watch_stops_at_its_count(tmp_path: Path, broker_url: str,
                                        bootstrap_servers: str) -> None:
    settings = make_settings("watch", tmp_path / "data", broker_url, partitions=1)
    await create_topics(bootstrap_servers, [settings.topic_changes], partitions=1)
    changes = [{"event_time": f"2026-01-0{1 + i % 9}T00:00:00Z", "customer_id": f"c{i}",
                "segmenter": "frequency", "from_segment": None, "to_segment": "one_time",
                "to_name": "One-time buyer", "reason": "first purchase", "trigger": "event"}
               for i in range(20)]
    await produce(bootstrap_servers, settings.topic_changes,
                  [(c["customer_id"].encode(), codec.dumps(c)) for c in changes])
    out = io.StringIO()
    assert await watch(settings, count=3, idle_s=5.0, out=out) == 3
    assert [line.split()[1] for line in out.getvalue().splitlines()] == ["c0", "c1", "c2"]
