"""A rule audience from the audiences file: segmenter ``audience:<name>``, segments in / out.

* ``in`` while the audience's condition holds (:mod:`streamseg.engine.audiencerules`);
* ``out`` once a customer who was ``in`` no longer matches. A customer who never
  matched has no record at all: :meth:`AudienceSegmenter.assign` abstains until
  the first ``in``, so ``null -> in`` = entered, ``in -> out`` = exited,
  ``out -> in`` = re-entered.
* ``due`` is the compiled condition's exact next flip time (a ``days_since``
  threshold, a window bucket leaving its window, a referenced segmenter's due
  time), so time-driven entries and exits are published at that event time
  (trigger ``clock``). Nothing is held (no hysteresis of its own).
* Holdout: every verdict carries ``holdout`` = blake2b(salt, audience,
  customer_id) as a fraction in [0, 1) < share (the audience's ``holdout``, else
  ``STREAMSEG_HOLDOUT_SHARE``): deterministic per customer and audience, the
  same on every worker and replay.

Examples
--------
>>> from streamseg.engine.audiencefile import parse
>>> [spec] = parse('{"audiences": {"big": {"when": {"feature": "total_spend_base", '
...                '">=": 100}}}}', "a.json")
>>> seg = AudienceSegmenter(spec, share=0.0, salt="s")
>>> s = CustomerState.new("c", 0.0)
>>> seg.assign(s, 0.0) is None  # never matched: no record
True
>>> s.monetary = 150.0
>>> seg.assign(s, 0.0)
Assignment(segment='in', reason='matches big', margin=None, model_version=None)
>>> s.segments[seg.name] = ["in", 0.0, 1, None]; s.monetary = 50.0
>>> seg.assign(s, 0.0).segment, seg.name
('out', 'audience:big')
>>> holdout_fraction("s", "big", "c") == holdout_fraction("s", "big", "c")
True
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from streamseg.engine.features import CustomerState
from streamseg.engine.segmenters.base import Assignment, NoPopulation, Trigger

if TYPE_CHECKING:
    from streamseg.engine.audiencefile import AudienceSpec


def holdout_fraction(salt: str, audience: str, customer_id: str) -> float:
    """A customer's deterministic position in [0, 1) for ``audience`` (salted blake2b).

    >>> round(holdout_fraction("salt", "cart_abandoners", "c1"), 6)
    0.765064
    """
    raw = f"{salt}\x1f{audience}\x1f{customer_id}".encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big") / 2.0**64


class AudienceSegmenter(NoPopulation):
    """One compiled rule audience."""

    reads_segments = True  # conditions may read other segmenters' published segments

    def __init__(self, spec: AudienceSpec, share: float, salt: str) -> None:
        self.audience = spec.name
        self.name = f"audience:{spec.name}"
        self.description = spec.description
        self.share = spec.holdout if spec.holdout is not None else share
        self.salt = salt
        self._flags: dict[str, bool] = {}
        self.test = spec.rule.test
        self.nxt = spec.rule.nxt
        self.reason_in = f"matches {spec.name}"
        self.reason_out = f"no longer matches {spec.name}"

    def holdout(self, customer_id: str) -> bool:
        """Whether ``customer_id`` is in this audience's holdout (campaigns skip it)."""
        if self.share <= 0.0:
            return False
        cached = self._flags.get(customer_id)
        if cached is None:
            if len(self._flags) >= 65_536:  # a bounded memo of the hash, not state
                self._flags.clear()
            cached = self._flags[customer_id] = (
                holdout_fraction(self.salt, self.audience, customer_id) < self.share)
        return cached

    def assign(self, state: CustomerState, now: float) -> Assignment | None:
        if self.test(state, now):
            return Assignment("in", self.reason_in, holdout=self.holdout(state.customer_id))
        if self.name in state.segments:
            return Assignment("out", self.reason_out, holdout=self.holdout(state.customer_id))
        return None

    def due(self, state: CustomerState, after: float) -> float | None:
        """The compiled condition's next possible flip after ``after`` (None: never)."""
        return None if self.nxt is None else self.nxt(state, after)

    def hold(
        self, state: CustomerState, current: str, verdict: Assignment, now: float,
        trigger: Trigger,
    ) -> bool:
        """Audiences hold nothing: a rule's verdict is published when it changes."""
        return False

    def describe(self, segment: str) -> str:
        return self.description if segment == "in" else f"Not in: {self.description}"

    def segments(self) -> tuple[str, ...]:
        return ("in", "out")
