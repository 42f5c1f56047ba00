"""What every segmenter has in common: the :class:`Assignment` it returns and its protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from streamseg.engine.features import CustomerState


@dataclass(frozen=True, slots=True)
class Assignment:
    """One segmenter's verdict for one customer at one event time.

    ``margin`` is set by distance-based segmenters (how much closer the chosen
    segment is than the runner-up), for hysteresis; rule segmenters leave it None.
    """

    segment: str
    reason: str
    margin: float | None = None
    model_version: int | None = None


class Segmenter(Protocol):
    """A segmenter: ``assign`` is pure; ``learn`` updates population models, if any."""

    name: str

    def assign(self, state: CustomerState, now: float) -> Assignment | None:
        """The segment of ``state`` at event time ``now`` (None: not enough data yet)."""
        ...

    def learn(self, state: CustomerState, now: float) -> None:
        """Fold this customer's fresh state into any population model (no-op for rules)."""
        ...

    def describe(self, segment: str) -> str:
        """A readable name for ``segment``."""
        ...
