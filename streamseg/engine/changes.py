"""Change detection: confirm a new assignment, number it, and build the change record.

A segmenter's new verdict becomes a change only when confirmed:

* the first assignment of a customer is published at once (``from_segment`` is null);
* the segmenter's own ``hold`` (its documented margin or dwell, asked by the
  engine before :meth:`ChangeDetector.confirm`) may keep the published segment;
* an optional global dwell (``min_dwell_s``, default 0): a different verdict
  reached by the clock or a population move must persist for that much event
  time before it is published. Moves at the customer's own event are never
  delayed by it (``damp=False``): hysteresis is asymmetric.

Each change gets a deterministic ``change_id`` from (customer, segmenter, sequence).

Examples
--------
>>> from streamseg.engine.features import CustomerState
>>> s = CustomerState.new("c1", 0.0)
>>> d = ChangeDetector(min_dwell_s=0.0)
>>> d.confirm(s, "frequency", Assignment("low", "one purchase"), 10.0)
(None, 1)
>>> d.confirm(s, "frequency", Assignment("low", "one purchase"), 20.0) is None
True
>>> d.confirm(s, "frequency", Assignment("high", "weekly"), 30.0)
('low', 2)
>>> s.segments["frequency"]
['high', 30.0, 2, None]
>>> change_id("c1", "frequency", 2)
'264a26161aa61f947c9b3ded9b584153'
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from streamseg.engine.events import format_ts
from streamseg.engine.features import CustomerState
from streamseg.engine.segmenters.base import Assignment


def change_id(customer_id: str, segmenter: str, sequence: int, epoch: int = 0) -> str:
    """Deterministic id of the ``sequence``-th change of ``segmenter`` for a customer.

    ``epoch`` counts the customer's erasures: a profile started after an erasure
    numbers its changes from 1 again, with ids distinct from the erased profile's.

    >>> change_id("c1", "frequency", 1) == change_id("c1", "frequency", 1, epoch=1)
    False
    """
    suffix = f"\x1f{epoch}" if epoch else ""
    raw = f"{customer_id}\x1f{segmenter}\x1f{sequence}{suffix}".encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class ChangeDetector:
    """Segment bookkeeping and the optional global dwell; ``confirm`` mutates the state."""

    min_dwell_s: float = 0.0

    def confirm(
        self, state: CustomerState, segmenter: str, verdict: Assignment, now: float,
        damp: bool = True,
    ) -> tuple[str | None, int] | None:
        """Apply ``verdict``; return ``(previous segment, sequence)`` if it is a change.

        ``damp`` (clock and population triggers) subjects the move to the global dwell.
        """
        current = state.segments.get(segmenter)
        if current is not None and current[0] == verdict.segment:
            if state.pending:
                state.pending.pop(segmenter, None)
            if verdict.model_version is not None:
                current[3] = verdict.model_version
            return None
        if current is not None and damp and self.min_dwell_s > 0.0:
            pending = state.pending.get(segmenter)
            if pending is None or pending[0] != verdict.segment:
                state.pending[segmenter] = [verdict.segment, now]
                return None
            if now - pending[1] < self.min_dwell_s:
                return None
        if state.pending:
            state.pending.pop(segmenter, None)
        previous = None if current is None else current[0]
        sequence = 1 if current is None else int(current[2]) + 1
        state.segments[segmenter] = [verdict.segment, now, sequence, verdict.model_version]
        return previous, sequence


def change_record(
    state: CustomerState,
    segmenter: str,
    previous: str | None,
    sequence: int,
    verdict: Assignment,
    name: str,
    now: float,
    trigger: str,
    features: dict[str, Any],
    from_name: str | None = None,
) -> dict[str, Any]:
    """The ``segment-changes`` value (see ``streamseg/schemas/segment-change.schema.json``).

    ``from_name`` is the readable name of ``previous`` (None on a first assignment).
    """
    record = {
        "kind": "change",
        "change_id": change_id(state.customer_id, segmenter, sequence, state.epoch),
        "customer_id": state.customer_id,
        "segmenter": segmenter,
        "sequence": sequence,
        "from_segment": previous,
        "from_name": from_name,
        "to_segment": verdict.segment,
        "to_name": name,
        "reason": verdict.reason,
        "trigger": trigger,
        "event_time": format_ts(now),
        "model_version": verdict.model_version,
        "features": features,
    }
    if verdict.holdout is not None:  # rule audiences: campaigns suppress the holdout
        record["holdout"] = verdict.holdout
    if state.epoch:  # a profile started after an erasure (absent: the first one, 0)
        record["epoch"] = state.epoch
    return record


def suppression_record(
    state: CustomerState, suppressed: bool, reason: str, now: float, segments: dict[str, Any]
) -> dict[str, Any]:
    """The ``segment-changes`` notice that targeting of a customer stops (or may resume).

    Published when consent is withdrawn (``suppressed`` true) or granted again
    (false); ``segments`` are the customer's segments it concerns (the
    ``customer-segments`` shape). ``change_id`` is deterministic from
    (customer, ``suppression``, the customer's count of such notices, erasure
    epoch), so a subscriber dedupes it like any change.

    >>> s = CustomerState.new("c1", 0.0)
    >>> s.suppressions = 1
    >>> r = suppression_record(s, True, "consent_withdrawn", 0.0, {})
    >>> r["kind"], r["sequence"], r["change_id"] == change_id("c1", "suppression", 1)
    ('suppression', 1, True)
    """
    record = {
        "kind": "suppression",
        "change_id": change_id(state.customer_id, "suppression", state.suppressions, state.epoch),
        "customer_id": state.customer_id,
        "sequence": state.suppressions,
        "suppressed": suppressed,
        "reason": reason,
        "event_time": format_ts(now),
        "segments": segments,
    }
    if state.epoch:
        record["epoch"] = state.epoch
    return record
