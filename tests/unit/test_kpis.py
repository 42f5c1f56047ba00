"""KPIs per segment: the engine's sums equal an independent batch computation.

The batch (``tests/kpi_reference.py``) reads the raw events and the published
change stream; the engine's :class:`~streamseg.engine.kpis.Kpis` is fed by
:meth:`Engine.apply`. They must agree exactly (floats to 1e-9) on a simulated
event file with duplicates, a late purchase, a purchase outside any session and
a consent withdrawal mixed in.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from streamseg.config import DAY, Settings
from streamseg.engine import kpis
from streamseg.engine.events import Event
from streamseg.engine.lookup import merge_sizes, segments_answer
from streamseg.engine.processor import Engine
from streamseg.metrics import KPI_COUNTERS, Metrics
from streamseg.simulate import SimConfig, Simulation

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from kpi_reference import FIELDS, batch_kpis, run


def assert_equal(engine_view: dict[str, Any], batch: dict[str, Any]) -> None:
    assert set(engine_view) == set(batch)
    for name, per in batch.items():
        assert set(engine_view[name]) == set(per), name
        for segment, cell in per.items():
            got = engine_view[name][segment]
            for field in FIELDS:
                assert math.isclose(got[field], cell[field], rel_tol=0.0, abs_tol=1e-9), (
                    name, segment, field, got[field], cell[field])


def perturbed(lines: list[bytes]) -> list[bytes]:
    """The simulated lines with a duplicate, a late purchase, a session-less purchase and a
    consent withdrawal (then more events of that customer) mixed in."""
    recs = [orjson.loads(x) for x in lines]
    out = list(lines)
    mid = len(out) // 2
    at = next(i for i in range(mid, len(recs)) if recs[i].get("type") == "purchase")
    buyer = recs[at]
    # a redelivered purchase (within the engine's duplicate window of 16 event ids)
    out.insert(at + 3, orjson.dumps(buyer | {"ts": recs[at + 2]["ts"]}))
    late = buyer | {"event_id": "late1", "order_id": "late1", "ts": recs[0]["ts"]}
    out.insert(mid + 10, orjson.dumps(late))
    loose = {k: v for k, v in buyer.items() if k != "session_id"}
    out.insert(mid + 20, orjson.dumps(loose | {"event_id": "loose1", "order_id": "loose1",
                                                "ts": recs[mid + 18]["ts"]}))
    other = recs[mid + 30]["customer_id"]
    out.insert(mid + 31, orjson.dumps({"event_id": "w1", "customer_id": other,
                                       "type": "consent_withdrawn", "ts": recs[mid + 30]["ts"]}))
    return out


@pytest.mark.parametrize("repeat_days", [7.0, 30.0])
def test_engine_kpis_equal_the_batch_computation(repeat_days: float) -> None:
    sim = Simulation(SimConfig(customers=150, days=120, seed=11))
    lines = perturbed([orjson.dumps(ev) for ev in sim.events()])
    settings = Settings(kpi_repeat_days=repeat_days)
    rep, inputs = run(lines, settings)
    names = [seg.name for seg in rep.engine.segmenters]
    batch = batch_kpis(inputs, names, settings)
    view = rep.engine.kpis.view()
    assert_equal(view, batch)
    # not vacuous: money, repeats, conversions and several segments per segmenter
    life = view["lifecycle"]
    assert len(life) >= 4 and sum(c["repeat_orders"] for c in life.values()) > 0
    assert sum(c["converted"] for c in life.values()) > 0
    assert sum(c["revenue"] for c in life.values()) > 1000
    # every segmenter's segments add up to the whole
    totals = {name: sum(c["revenue"] for c in per.values()) for name, per in view.items()}
    assert max(totals.values()) - min(totals.values()) < 1e-6


def test_attribution_is_the_published_segment_before_the_event() -> None:
    eng = Engine(Settings())
    s = eng.apply(None, Event("click", "session_start", "e0", "c", 0.0, session_id="s1")).state
    s = eng.apply(s, Event("purchase", "purchase", "e1", "c", 60.0, session_id="s1",
                           amount=10.0)).state
    s = eng.apply(s, Event("purchase", "purchase", "e2", "c", 120.0, session_id="s1",
                           amount=30.0)).state
    assert s is not None
    # 100 days later: the clock moves (new -> active -> at_risk) come before the purchase
    s = eng.apply(s, Event("purchase", "purchase", "e3", "c", 100 * DAY, amount=5.0)).state
    life = eng.kpis.view()["lifecycle"]
    assert life["prospect"] == {"revenue": 10.0, "orders": 1, "repeat_orders": 0,
                                "sessions": 0, "converted": 1}
    assert life["new"] == {"revenue": 30.0, "orders": 1, "repeat_orders": 1, "sessions": 0,
                           "converted": 0}
    assert life["at_risk"] == {"revenue": 5.0, "orders": 1, "repeat_orders": 0, "sessions": 1,
                               "converted": 1}
    assert life["none"]["sessions"] == 1 and life["none"]["orders"] == 0
    cell = kpis.ratios(life["new"])
    assert (cell["aov"], cell["repeat_rate"], cell["conversion"]) == (30.0, 1.0, None)


def test_a_late_purchase_converts_its_own_session() -> None:
    """Review finding 4: session s1's purchase, read from the purchases topic after s2's
    first click, counted s1 again (4 sessions, not 2) and converted the wrong session, so
    s2's own purchase was not a conversion. The counts do not depend on the arrival order."""
    order = [
        Event("click", "session_start", "k1", "c", 0.0, session_id="s1"),
        Event("purchase", "purchase", "p1", "c", 60.0, session_id="s1", amount=10.0),
        Event("click", "session_start", "k2", "c", DAY, session_id="s2"),
        Event("click", "page_view", "k3", "c", DAY + 60, session_id="s2"),
        Event("purchase", "purchase", "p2", "c", DAY + 120, session_id="s2", amount=10.0),
    ]
    totals = []
    for events in (order, [order[0], order[2], order[1], *order[3:]]):
        eng = Engine(Settings())
        s = None
        for e in events:
            s = eng.apply(s, e).state
        life = eng.kpis.view()["lifecycle"].values()
        totals.append((sum(c["sessions"] for c in life), sum(c["converted"] for c in life)))
    assert totals == [(2, 2), (2, 2)]


class Predicting(Engine):
    def predicted(self, state: Any, now: float) -> float | None:
        return float(state.purchases) if state.purchases else None


def test_segments_answer_sums_workers_and_recomputes_ratios(
    assert_schema: Any,
) -> None:
    a, b = Predicting(Settings()), Predicting(Settings())
    sa = a.apply(None, Event("purchase", "purchase", "e1", "c1", 0.0, amount=10.0)).state
    sa = a.apply(sa, Event("purchase", "purchase", "e2", "c1", DAY, amount=20.0)).state
    sb = b.apply(None, Event("purchase", "purchase", "e3", "c2", 0.0, amount=60.0)).state
    assert sa is not None and sb is not None
    parts = [segments_answer(a, [sa], DAY), segments_answer(b, [sb], DAY)]
    for part in parts:
        assert_schema("lookup-segments", part)
    total = merge_sizes(parts)
    assert_schema("lookup-segments", total)
    none = total["kpis"]["frequency"]["none"]
    assert (none["revenue"], none["orders"], none["aov"]) == (70.0, 2, 35.0)
    one = total["kpis"]["frequency"]["one_time"]
    assert (one["revenue"], one["repeat_rate"]) == (20.0, 1.0)
    # predicted value: c1 (2 purchases) in frequency "high", c2 (1) in "one_time"
    assert total["kpis"]["frequency"]["one_time"]["predicted_value_mean"] == 1.0
    assert total["kpis"]["frequency"]["high"]["predicted_value_mean"] == 2.0
    plain = Engine(Settings())
    sc = plain.apply(None, Event("purchase", "purchase", "e1", "c1", 0.0, amount=10.0)).state
    assert sc is not None
    cells = segments_answer(plain, [sc], DAY)["kpis"]["frequency"]
    assert set(cells) == {"none"} and "predicted_value_mean" not in cells["none"]  # absent


def test_kpi_counters_are_declared_from_start_and_read_the_engine() -> None:
    m = Metrics(CollectorRegistry())
    eng = Engine(Settings())
    m.declare_segments((seg.name, seg.segments()) for seg in eng.segmenters)
    m.kpis_from(eng.kpis.view)
    reg = m.registry
    for name, _ in KPI_COUNTERS.values():
        assert reg.get_sample_value(f"{name}_total",
                                    {"segmenter": "lifecycle", "segment": "lapsed"}) == 0.0
    eng.apply(None, Event("purchase", "purchase", "e1", "c1", 0.0, amount=12.5))
    assert reg.get_sample_value("streamseg_segment_revenue_total",
                                {"segmenter": "rfm", "segment": "none"}) == 12.5
    labels = {frozenset(sample.labels) for family in m.kpis.collect()
              for sample in family.samples}
    assert labels == {frozenset(("segmenter", "segment"))}  # closed: never a customer id
    assert "streamseg_segment_converted_sessions_total" in generate_latest(reg).decode()
