"""What one input did to one customer: :class:`Outcome`, returned by every engine entry point.

The worker and ``streamseg replay`` publish its ``changes`` and ``notices``
and save its ``state``; :meth:`~streamseg.engine.processor.Engine.due` plans
the next look from ``at`` / ``due``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from streamseg.engine.features import CustomerState

if TYPE_CHECKING:
    from streamseg.engine.processor import Engine


class Outcome:
    """What one input did.

    ``state`` is the customer's new state (None when never created; after an
    erasure, a suppression marker with no profile data);
    ``changes`` are segment-change records to publish, in order; ``segments`` is
    the customer's new ``customer-segments`` value when anything changed (built
    on first access: read it before the state changes again);
    ``erased`` asks the edge to delete state and publish a tombstone;
    ``skipped`` names a deliberate skip (``duplicate``, ``no_consent``);
    ``at`` is the event time a tick evaluated ``state`` at (None for events:
    their evaluation times are recorded in the state), for :meth:`Engine.due`;
    ``due`` is the customer's next due time (:meth:`Engine.due` after this
    outcome, or an earlier lower bound: that only costs a tick) when
    ``due_known``, so a caller need not ask again;
    ``notices`` are other ``segment-changes`` records to publish after
    ``changes`` (a suppression notice when consent is withdrawn or granted again);
    ``folded`` are change records *not* to publish: the clock moves that fell due
    while consent was withdrawn, applied to ``state`` when a grant lifts the
    withdrawal (:func:`streamseg.engine.consent.resume`); the edge only moves its
    segment gauges by them.
    """

    __slots__ = (
        "_render",
        "_segments",
        "at",
        "changes",
        "due",
        "due_known",
        "erased",
        "folded",
        "notices",
        "skipped",
        "state",
    )

    def __init__(
        self,
        state: CustomerState | None,
        changes: list[dict[str, Any]] | None = None,
        segments: dict[str, Any] | None = None,
        erased: bool = False,
        skipped: str | None = None,
        at: float | None = None,
    ) -> None:
        self.state = state
        self.changes: list[dict[str, Any]] = [] if changes is None else changes
        self.erased = erased
        self.skipped = skipped
        self.at = at
        self.due: float | None = None
        self.due_known = False
        self.notices: list[dict[str, Any]] = []
        self.folded: list[dict[str, Any]] = []
        self._segments = segments
        self._render: Callable[[], dict[str, Any]] | None = None

    @property
    def segments(self) -> dict[str, Any] | None:
        if self._segments is None and self._render is not None:
            self._segments = self._render()
            self._render = None
        return self._segments

    @segments.setter
    def segments(self, value: dict[str, Any] | None) -> None:
        self._segments, self._render = value, None

    def render(self, engine: Engine, state: CustomerState, now: float) -> None:
        """Have :attr:`segments` built from ``state`` at ``now`` when first read."""
        self._segments = None
        self._render = partial(engine.segments_record, state, now)

    def plan(self, due: float | None) -> None:
        """Record the next due time."""
        self.due, self.due_known = due, True
