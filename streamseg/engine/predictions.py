"""Predicted value of one customer, read through the engine (never by isinstance).

The predicted-value segmenter (if one is configured) is the engine's
``predictor`` (structural: it has ``predict``); these helpers behind
:meth:`~streamseg.engine.processor.Engine.prediction`,
:meth:`~streamseg.engine.processor.Engine.features` and
:meth:`~streamseg.engine.processor.Engine.predicted` return None without one.

Examples
--------
>>> from streamseg.config import Settings
>>> s = CustomerState.new("c1", 0.0)
>>> prediction(None, s, 0.0) is None, predicted(None, s, 0.0) is None
(True, True)
>>> f = features(Settings(), None, s, 0.0)
>>> f["p_alive"], f["expected_purchases"]
(None, None)
"""

from __future__ import annotations

from typing import Any

from streamseg.config import Settings
from streamseg.engine.features import CustomerState
from streamseg.engine.segmenters.base import Predictor
from streamseg.engine.summary import summary


def prediction(
    predictor: Predictor | None, state: CustomerState, now: float
) -> tuple[float, float] | None:
    """(p_alive, expected purchases in ``value_horizon_days``) of ``state`` at ``now``
    from the predicted-value segmenter; None without one, before its first fit, for a
    customer with no purchase, or a suppressed one."""
    if predictor is None or state.withdrawn:
        return None
    return predictor.predict(state, now)


def features(
    settings: Settings, predictor: Predictor | None, state: CustomerState, now: float
) -> dict[str, Any]:
    """The feature summary of ``state`` at ``now`` (change records, lookups), with
    ``p_alive`` and ``expected_purchases`` from the value model when it can predict."""
    out = summary(state, now, settings.half_life_days, settings.base_currency)
    pred = prediction(predictor, state, now)
    if pred is not None:
        out["p_alive"], out["expected_purchases"] = round(pred[0], 4), round(pred[1], 4)
    return out


def predicted(predictor: Predictor | None, state: CustomerState, now: float) -> float | None:
    """Predicted value of ``state`` at ``now``: expected purchases in the next
    ``value_horizon_days`` times the customer's average order value (base currency).

    None when no value segmenter is configured or it cannot predict yet
    (:func:`prediction`). For the KPIs (mean predicted value per segment).
    """
    pred = prediction(predictor, state, now)
    if pred is None or state.purchases <= 0:
        return None
    return pred[1] * state.monetary / state.purchases
