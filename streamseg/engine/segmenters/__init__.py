"""Segmenters: one per module. Each maps a ``CustomerState`` and event time to one segment."""

from __future__ import annotations

from streamseg.config import Settings
from streamseg.engine.segmenters.audience import AudienceSegmenter
from streamseg.engine.segmenters.base import Assignment, Segmenter
from streamseg.engine.segmenters.channel import ChannelSegmenter
from streamseg.engine.segmenters.clusters import ClusterSegmenter
from streamseg.engine.segmenters.frequency import FrequencySegmenter
from streamseg.engine.segmenters.lifecycle import LifecycleSegmenter
from streamseg.engine.segmenters.rfm import RFMSegmenter
from streamseg.engine.segmenters.value import ValueSegmenter

__all__ = [
    "Assignment",
    "AudienceSegmenter",
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
    """The segmenters a worker runs, in a fixed order (the order of emitted changes).

    The rule audiences of ``STREAMSEG_AUDIENCES_FILE`` come after the built-ins,
    in file order (a bad file raises :class:`~streamseg.errors.AudienceFileError`).
    """
    built: list[Segmenter] = [
        FrequencySegmenter(settings),
        LifecycleSegmenter(settings),
        RFMSegmenter(settings),
        ClusterSegmenter(settings),
        ChannelSegmenter(settings),
        ValueSegmenter(settings),
    ]
    return built + audiences(settings, built)


def audiences(settings: Settings, known: list[Segmenter]) -> list[Segmenter]:
    """The compiled audiences of ``settings.audiences_file`` (rules may read ``known``)."""
    from streamseg.engine import audiencefile  # (it imports segmenters.base)

    specs = audiencefile.load(settings, {seg.name: seg for seg in known})
    return [AudienceSegmenter(spec, settings.holdout_share, settings.holdout_salt)
            for spec in specs]
