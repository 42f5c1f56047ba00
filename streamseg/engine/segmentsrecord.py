"""The ``customer-segments`` record of a customer: its current segments, as published.

:func:`segments_record` builds the value the worker publishes on
``customer-segments`` (compacted) after a change, from the segments the change
detector recorded in the state; :func:`segment_views` is its per-segmenter part,
which the lookup API (:mod:`streamseg.engine.lookup`) serves too. The engine
(:meth:`Engine.segments_record <streamseg.engine.processor.Engine.segments_record>`)
calls them with its segmenters (which name the segments).
"""

from __future__ import annotations

from typing import Any

from streamseg.engine.events import format_ts
from streamseg.engine.features import CustomerState
from streamseg.engine.segmenters.base import Segmenter


def segments_record(segmenters: list[Segmenter], state: CustomerState,
                    now: float) -> dict[str, Any]:
    """The ``customer-segments`` value for ``state``.

    A customer who withdrew consent is ``suppressed``: no segments are listed.
    """
    return {
        "customer_id": state.customer_id,
        "event_time": format_ts(now),
        "segments": {} if state.withdrawn else segment_views(segmenters, state),
        "suppressed": state.withdrawn,
    }


def segment_views(segmenters: list[Segmenter], state: CustomerState) -> dict[str, Any]:
    """Segmenter -> {segment, name, since, sequence, model_version} of ``state``."""
    names = {seg.name: seg for seg in segmenters}
    segs: dict[str, Any] = {}
    for name, (segment, since, sequence, version) in state.segments.items():
        describe = names[name].describe if name in names else str
        segs[name] = {
            "segment": segment,
            "name": describe(segment),
            "since": format_ts(since),
            "sequence": sequence,
            "model_version": version,
        }
    return segs
