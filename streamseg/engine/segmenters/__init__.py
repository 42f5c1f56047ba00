"""Segmenters: one per module. Each maps a ``CustomerState`` and event time to one segment."""

from __future__ import annotations

from streamseg.config import Settings
from streamseg.engine.segmenters.base import Assignment, Segmenter
from streamseg.engine.segmenters.channel import ChannelSegmenter
from streamseg.engine.segmenters.clusters import ClusterSegmenter
from streamseg.engine.segmenters.frequency import FrequencySegmenter
from streamseg.engine.segmenters.lifecycle import LifecycleSegmenter
from streamseg.engine.segmenters.rfm import RFMSegmenter
from streamseg.engine.segmenters.value import ValueSegmenter

__all__ = [
    "Assignment",
    "ChannelSegmenter",
    "ClusterSegmenter",
    "FrequencySegmenter",
    "LifecycleSegmenter",
    "RFMSegmenter",
    "Segmenter",
    "ValueSegmenter",
    "default",
]


def default(settings: Settings) -> list[Segmenter]:
    """The segmenters a worker runs, in a fixed order (the order of emitted changes)."""
    return [
        FrequencySegmenter(settings),
        LifecycleSegmenter(settings),
        RFMSegmenter(settings),
        ClusterSegmenter(settings),
        ChannelSegmenter(settings),
        ValueSegmenter(settings),
    ]
