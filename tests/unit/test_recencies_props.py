"""Property: the refit's vectorised recency column equals the per-customer recency, bit for bit.

``clusterfeatures.recencies`` builds the cluster sample's recency column in one go
(``clusterrefit.next_model``); the worker's assignments and the replay use the
scalar ``recency``. A last-bit difference could move a customer between clusters,
so the two must agree exactly, signed zeros included.
"""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streamseg.config import DAY
from streamseg.engine.clusterfeatures import recencies, recency

TIMES = st.one_of(st.floats(-1e12, 1e12), st.sampled_from([0.0, -0.0, 30 * DAY, 1e-300]),
                  st.floats(allow_nan=False, allow_infinity=False))


def bits(values: list[float]) -> list[bytes]:
    return [struct.pack("<d", v) for v in values]


@settings(max_examples=400, deadline=None)
@given(last=st.lists(TIMES, min_size=1, max_size=40), now=TIMES,
       grace=st.one_of(st.sampled_from([0.0, 30.0, 7.5]), st.floats(0.0, 400.0)))
def test_recencies_equal_recency_bit_for_bit(last: list[float], now: float,
                                             grace: float) -> None:
    with np.errstate(over="ignore", invalid="ignore"):  # huge spans overflow alike in both
        got = recencies(np.array(last, dtype=np.float64), now, grace)
    assert bits(got) == bits([recency(t, now, grace) for t in last])


def test_recencies_near_the_grace_boundary() -> None:
    now = 1_700_000_000.0
    last = [now - 30 * DAY + d for d in (-1e-6, 0.0, 1e-6, -1.0, 1.0)]
    assert bits(recencies(np.array(last), now, 30.0)) == bits([recency(t, now, 30.0)
                                                              for t in last])
