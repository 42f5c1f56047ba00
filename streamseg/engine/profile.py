"""Profile attributes: merge a ``customer-profiles`` record into a customer's state.

A profile record (``streamseg/schemas/customer-profile.schema.json``) carries
attribute name -> value (JSON scalars; null removes the attribute). The state
keeps ``attributes`` (name -> value) and ``attributes_ts`` (name -> event time
of the value kept, or of its removal). Each attribute is merged on its own, by
event time: a value older than the kept one is ignored (a late record never
overwrites a newer value), at equal times the record applied last wins. A
removal is remembered in ``attributes_ts`` (the name stays there, not in
``attributes``) so that a late, older value does not bring the attribute back.

Attributes are not behaviour: merging one changes no feature, no recency and no
population model. Rule segmenters read ``state.attributes``.

Examples
--------
>>> from streamseg.engine.features import CustomerState
>>> s = CustomerState.new("c1", 0.0)
>>> merge(s, {"country": "DE", "age_band": "25-34"}, 100.0)
['age_band', 'country']
>>> merge(s, {"country": "FR"}, 50.0)  # late and older: ignored
[]
>>> merge(s, {"country": None, "x_vip": True}, 200.0)
['country', 'x_vip']
>>> s.attributes, s.attributes_ts["country"]
({'age_band': '25-34', 'x_vip': True}, 200.0)
>>> merge(s, {"country": "FR"}, 150.0)  # older than the removal: stays removed
[]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamseg.engine.features import CustomerState

PREFIX = "x_"  # unknown (customer-defined) attributes must be named x_<name>


def merge(state: CustomerState, attributes: Mapping[str, Any], ts: float) -> list[str]:
    """Fold the attributes of a record at event time ``ts`` into ``state`` (in place).

    Returns the names whose value (or presence) changed, sorted.
    """
    changed: list[str] = []
    values, times = state.attributes, state.attributes_ts
    for name, value in attributes.items():
        kept = times.get(name)
        if kept is not None and ts < kept:
            continue
        times[name] = ts
        if value is None:
            if name in values:
                del values[name]
                changed.append(name)
        elif name not in values or values[name] != value or type(values[name]) is not type(value):
            values[name] = value
            changed.append(name)
    return sorted(changed)
