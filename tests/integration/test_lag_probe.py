"""Consumer lag in records, read from the real broker (streamseg.telemetry.LagProbe).

Five records go to partition 0 of a two-partition input topic and none to
partition 1; the consumer group commits offset 2 on partition 0. The probe
must report exactly 3 and 0, and the gauges must show them (0 for a
partition this worker does not own).
"""

from __future__ import annotations

from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from kafka_helpers import create_topics, produce
from prometheus_client import CollectorRegistry
from worker_proc import make_settings

from streamseg.metrics import Metrics
from streamseg.telemetry import LagProbe


async def test_lag_is_log_end_minus_committed(tmp_path: Path, broker_url: str) -> None:
    settings = make_settings("lag", tmp_path / "data", broker_url, partitions=2)
    bootstrap = settings.bootstrap_servers
    topic = settings.topic_clickstream
    await create_topics(bootstrap, [topic], partitions=2)
    await produce(bootstrap, topic, [(b"k", b"{}")] * 5, partition=0)
    committer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=settings.app_id,
                                 enable_auto_commit=False)
    await committer.start()
    try:
        committer.assign([TopicPartition(topic, 0)])
        await committer.commit({TopicPartition(topic, 0): OffsetAndMetadata(2, "")})
    finally:
        await committer.stop()

    metrics = Metrics(CollectorRegistry())
    probe = LagProbe(settings, metrics)
    try:
        assert await probe.measure([(topic, 0), (topic, 1)]) == {(topic, 0): 3, (topic, 1): 0}
        await probe.update([TopicPartition(topic, 0)])  # this worker owns partition 0 only
    finally:
        await probe.stop()
    lag = {(s.labels["topic"], s.labels["partition"]): s.value
           for fam in metrics.consumer_lag.collect() for s in fam.samples}
    assert lag[(topic, "0")] == 3.0 and lag[(topic, "1")] == 0.0
    assert set(lag) == {(name, str(p)) for name in probe.topics for p in range(2)}
