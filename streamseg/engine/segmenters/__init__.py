"""Segmenters: one per module. Each maps a ``CustomerState`` and event time to one segment."""

from __future__ import annotations

from streamseg.config import Settings
from streamseg.engine.segmenters.base import Assignment, Segmenter
from streamseg.engine.segmenters.frequency import FrequencySegmenter
from streamseg.engine.segmenters.lifecycle import LifecycleSegmenter

__all__ = ["Assignment", "FrequencySegmenter", "LifecycleSegmenter", "Segmenter", "default"]


def default(settings: Settings) -> list[Segmenter]:
    """The segmenters a worker runs, in a fixed order (the order of emitted changes)."""
    return [FrequencySegmenter(settings), LifecycleSegmenter(settings)]
