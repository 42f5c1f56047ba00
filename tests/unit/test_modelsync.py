"""Which segmenters the worker's model follower trains, adopts and publishes (modelsync)."""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from streamseg import codec
from streamseg.config import Settings
from streamseg.engine.processor import Engine
from streamseg.engine.segmenters.base import Trained
from streamseg.engine.segmenters.lifecycle import LifecycleSegmenter
from streamseg.metrics import MODEL_SEGMENTERS, Metrics
from streamseg.modelsync import ModelSync


class Unshared(LifecycleSegmenter):
    """A model of its own that is never shared (no ``snapshot``): not :class:`Trained`."""

    name = "unshared"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.training = True
        self.rejected = self.failed = 0
        self.model: dict[str, Any] | None = None

    @property
    def version(self) -> int | None:
        return None if self.model is None else int(self.model["version"])

    def adopt(self, snapshot: dict[str, Any]) -> bool:
        if self.version is not None and int(snapshot["version"]) <= self.version:
            return False
        self.model = snapshot
        return True


class Shared(Unshared):
    """Any segmenter class with the :class:`Trained` members (none of the built-in ones)."""

    name = "shared"

    def snapshot(self) -> dict[str, Any] | None:
        return self.model


def test_the_segmenters_with_a_shared_model_and_only_those_are_synced() -> None:
    cfg = Settings()
    shared, unshared, rule = Shared(cfg), Unshared(cfg), LifecycleSegmenter(cfg)
    assert isinstance(shared, Trained)
    assert not isinstance(unshared, Trained) and not isinstance(rule, Trained)
    sync = ModelSync(Engine(cfg, [rule, unshared, shared]), Metrics(CollectorRegistry()),
                     "clickstream")
    assert list(sync.models) == ["shared"]
    assert not shared.training and unshared.training  # trains once it owns partition 0
    sync.on_assigned([TopicPartition("clickstream", 0)])
    assert shared.training
    shared.model = {"version": 2}
    assert sync.to_publish() == [(b"shared", codec.dumps({"version": 2}))]
    assert sync.to_publish() == []  # published once
    sync.on_assigned([TopicPartition("clickstream", 1)])
    assert not shared.training
    sync.adopt(b"shared", codec.dumps({"version": 5}))
    sync.adopt(b"unshared", codec.dumps({"version": 5}))
    assert shared.version == 5 and unshared.version is None


def test_the_built_in_population_models_are_synced() -> None:
    cfg = Settings()
    engine = Engine(cfg)
    sync = ModelSync(engine, Metrics(CollectorRegistry()), "clickstream")
    assert set(sync.models) == set(MODEL_SEGMENTERS)
    assert {s.name for s in engine.segmenters} > set(MODEL_SEGMENTERS)  # rules are not
