"""What every segmenter has in common: its :class:`Assignment` and the :class:`Segmenter` protocol.

A segmenter owns its rules end to end:

* ``assign`` gives the *raw* verdict at an event time, with no hysteresis;
* ``learn`` / ``restore`` / ``forget`` / ``moved`` maintain its population model, if
  any, and ``customers`` lists who is in it (rule segmenters: no-ops,
  :class:`NoPopulation`);
* ``due`` says when the verdict of an idle customer may next change (or a
  held demotion be released) on the event-time clock;
* ``hold`` is its own damping: True keeps the published segment although the
  raw verdict differs. Moves earned by the customer's own new event are never
  held; clock- and population-driven demotions may be, by a documented margin
  on the segmenter's threshold or a dwell;
* ``describe`` names a segment for humans;
* ``reacts_to`` names the input kinds whose events can move its verdict (None: all;
  RFM and value: purchases): at other events it is evaluated only if it has no label
  for the customer yet, and otherwise through ``due`` and ``moved``.

The engine (:mod:`streamseg.engine.processor`) only calls these methods: no
isinstance special cases, no attribute probing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from streamseg.engine.features import CustomerState

Trigger = Literal["event", "clock", "population"]
TRIGGERS: tuple[Trigger, ...] = ("event", "clock", "population")
STEP_S = 1.0  # thresholds are strict (``>``): a due time is one second past the threshold


@dataclass(slots=True)  # not frozen: several a customer evaluation (never mutated)
class Assignment:
    """One segmenter's verdict for one customer at one event time.

    ``margin`` is set by distance-based segmenters (how much closer the chosen
    segment is than the runner-up), for their own ``hold``; rule segmenters leave it None.
    """

    segment: str
    reason: str
    margin: float | None = None
    model_version: int | None = None
    # rule audiences: the customer's holdout flag, carried in their change records
    holdout: bool | None = field(default=None, repr=False)


class Segmenter(Protocol):
    """The engine contract of one segmenter (see the module docstring)."""

    name: str
    # True when ``assign`` reads other segmenters' published segments (rule audiences):
    # the engine then re-evaluates it after another segmenter's population-driven change
    reads_segments: bool
    # the input kinds (``purchase``, ``click``, ``profile``) whose events can change the
    # verdict; None: every kind. The engine evaluates the others at an event only through
    # time (``due``) and population moves (``moved``, trigger ``population``)
    reacts_to: frozenset[str] | None

    def assign(self, state: CustomerState, now: float) -> Assignment | None:
        """Raw verdict for ``state`` at event time ``now``, no hysteresis (None: abstain)."""
        ...

    def learn(self, state: CustomerState, now: float) -> None:
        """Fold this customer's fresh state into population models (rules: no-op)."""
        ...

    def forget(self, customer_id: str) -> None:
        """Drop the customer from population models (erasure, withdrawal, a partition
        this worker no longer owns; rules: no-op)."""
        ...

    def customers(self) -> Iterable[str]:
        """Every customer the population models hold (learned or restored, not forgotten
        since; rules: none)."""
        ...

    def restore(self, state: CustomerState) -> None:
        """Put a state restored from the table (restart, rebalance) back into population
        models, without re-evaluating it (rules: no-op)."""
        ...

    def due(self, state: CustomerState, after: float) -> float | None:
        """Earliest event time > ``after`` at which the verdict for an idle ``state``
        (or the release of a held demotion) may change with no event; None = never."""
        ...

    def moved(self) -> list[str]:
        """Customers whose verdict may have changed because the population model moved
        since the last call (drained; rules return [])."""
        ...

    def hold(
        self, state: CustomerState, current: str, verdict: Assignment, now: float,
        trigger: Trigger,
    ) -> bool:
        """True keeps the published ``current`` segment although ``verdict`` differs."""
        ...

    def describe(self, segment: str) -> str:
        """A readable name for ``segment``."""
        ...

    def segments(self) -> tuple[str, ...]:
        """Every segment id this segmenter can assign, when fixed in advance (metrics
        declare them at start); () when ids come from a model (clusters)."""
        ...


@runtime_checkable
class Predictor(Protocol):
    """A segmenter that also predicts value (``value``): what :meth:`Engine.predicted` reads."""

    def predict(self, state: CustomerState, now: float) -> tuple[float, float] | None:
        """(p_alive, expected purchases in the horizon) at ``now``; None: no model yet."""
        ...


@runtime_checkable
class Trained(Protocol):
    """A segmenter whose population model one worker trains and every worker shares
    (``cluster``, ``rfm``, ``value``): what the worker edge (:mod:`streamseg.modelsync`)
    trains, adopts and publishes, without naming a segmenter class."""

    name: str
    # True on the worker that trains (owns partition 0 of the input topic); the others
    # score with the newest snapshot they adopted
    training: bool

    @property
    def version(self) -> int | None:
        """The version of the model in use (None: no model yet)."""
        ...

    @property
    def rejected(self) -> int:
        """Fits not used because the model they give is degenerate, since start (0 for a
        model that never rejects one)."""
        ...

    @property
    def failed(self) -> int:
        """Fits not used because they failed outright (raised, or gave numbers the model
        cannot evaluate), since start (0 for a model whose fits cannot fail)."""
        ...

    def adopt(self, snapshot: dict[str, Any]) -> bool:
        """Use a published snapshot if it is newer (True: adopted)."""
        ...

    def snapshot(self) -> dict[str, Any] | None:
        """The model in use as plain data for the models topic (None: nothing of its own)."""
        ...


class NoPopulation:
    """Population-model methods of a segmenter that has none (pure rules).

    >>> p = NoPopulation()
    >>> s = CustomerState.new("c", 0.0)
    >>> p.learn(s, 0.0), p.forget("c"), p.restore(s), p.moved(), list(p.customers())
    (None, None, None, [], [])
    """

    reads_segments = False
    reacts_to: frozenset[str] | None = None

    def learn(self, state: CustomerState, now: float) -> None:
        return None

    def forget(self, customer_id: str) -> None:
        return None

    def restore(self, state: CustomerState) -> None:
        return None

    def customers(self) -> Iterable[str]:
        return ()

    def moved(self) -> list[str]:
        return []


def days(value: float, spec: str = ".0f") -> str:
    """``value`` days as reason text: ``1 day``, else ``N days`` (as formatted by ``spec``).

    >>> days(1.2), days(0.4), days(12), days(1.0, ".1f"), days(7, "g")
    ('1 day', '0 days', '12 days', '1.0 days', '7 days')
    """
    text = format(value, spec)
    return f"{text} day" if text == "1" else f"{text} days"


def first_after(after: float, times: list[float]) -> float | None:
    """The smallest of ``times`` strictly after ``after`` (None if none).

    >>> first_after(5.0, [9.0, 3.0, 6.0]), first_after(9.0, [9.0])
    (6.0, None)
    """
    best: float | None = None
    for t in times:
        if t > after and (best is None or t < best):
            best = t
    return best
