"""Population-model snapshots over the compacted models topic (transport edge).

The worker that owns partition 0 of the clickstream topic trains the
population models (RFM cut points, clusters, predicted value) and publishes a snapshot when a
model's version moves; every worker reads the whole topic from the start and
adopts newer versions, so all of them assign with the same model.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streamseg import codec
from streamseg.app import Streamseg
from streamseg.engine.processor import Engine
from streamseg.engine.segmenters.base import Trained
from streamseg.metrics import FIT_REASONS, Metrics

log = logging.getLogger(__name__)


class ModelSync:
    """Which models this worker trains, adopts and publishes: the engine's segmenters
    that have a shared population model (structural: :class:`Trained`)."""

    def __init__(self, engine: Engine, metrics: Metrics, trainer_topic: str) -> None:
        self.metrics = metrics
        self.trainer_topic = trainer_topic
        self.models: dict[str, Trained] = {
            seg.name: seg for seg in engine.segmenters if isinstance(seg, Trained)
        }
        for model in self.models.values():
            model.training = False  # until this worker owns partition 0 (on_assigned)
        self.published: dict[str, int] = {}
        # value fits not used, by reason, as counted in the metric so far
        self.rejected = dict.fromkeys(FIT_REASONS, 0)

    def on_assigned(self, assigned: Any) -> None:
        """After a rebalance: train iff this worker owns partition 0 of the trainer topic."""
        owner = any(
            tp.topic == self.trainer_topic and tp.partition == 0 for tp in assigned or ()
        )
        for model in self.models.values():
            model.training = owner

    def adopt(self, key: bytes | None, value: bytes | None) -> None:
        """A record of the models topic: use it if it is a newer model."""
        model = None if key is None else self.models.get(key.decode(errors="replace"))
        if model is None or value is None:
            return
        if model.adopt(codec.loads(value)):
            log.info("adopted %s model version %s", model.name, model.version)
            if model.version is not None:  # it is on the topic already
                self.published[model.name] = model.version
                self.metrics.model_version.labels(segmenter=model.name).set(model.version)

    def observe_fits(self) -> None:
        """Count in ``streamseg_value_fits_rejected_total`` the value fits the engine did not
        use since the last call, by reason (the segmenter keeps the totals: the engine knows
        no metrics)."""
        value = self.models.get("value")  # the metric counts the value model's fits only
        totals = {"degenerate": 0 if value is None else value.rejected,
                  "failed": 0 if value is None else value.failed}
        for reason, total in totals.items():
            if total > self.rejected[reason]:
                self.metrics.value_fits_rejected.labels(reason=reason).inc(
                    total - self.rejected[reason])
            self.rejected[reason] = total

    def to_publish(self) -> list[tuple[bytes, bytes]]:
        """(key, value) of the trainer's models that changed since last published."""
        out = []
        for name, model in self.models.items():
            version = model.version
            if not model.training or version is None or version <= self.published.get(name, 0):
                continue
            snapshot = model.snapshot()
            if snapshot is None:  # scoring with an adopted model: nothing of its own yet
                continue
            self.published[name] = version
            self.metrics.model_version.labels(segmenter=name).set(version)
            out.append((name.encode(), codec.dumps(snapshot)))
        return out


async def follow_models(ss: Streamseg, sync: ModelSync) -> None:
    """Read the compacted models topic from the start, adopt newer models, publish ours.

    Every worker reads the whole topic (no consumer group), so all of them
    assign with the newest model; only the trainer publishes.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=ss.settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    tp = TopicPartition(ss.settings.topic_models, 0)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        wait_ms = int(ss.settings.model_publish_interval_s * 1000)
        while True:
            batch = await consumer.getmany(tp, timeout_ms=wait_ms)
            for records in batch.values():
                for record in records:
                    sync.adopt(record.key, record.value)
            sync.observe_fits()
            for key, snapshot in sync.to_publish():
                await ss.models.send(key=key, value=snapshot)
    finally:
        await consumer.stop()
