"""Prometheus metrics: naming conventions, closed label sets, gauge bookkeeping, exposition."""

from __future__ import annotations

import re
import subprocess

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streamseg.engine import bgnbd
from streamseg.engine.contract import load_schema
from streamseg.metrics import (
    COMPONENTS,
    FIT_REASONS,
    MODEL_SEGMENTERS,
    OUTCOMES,
    REASONS,
    STREAMS,
    Metrics,
)

NAME = re.compile(r"^streamseg_[a-z]+(_[a-z]+)*$")
ALLOWED_LABELS = {"stream", "outcome", "reason", "segmenter", "from_segment", "to_segment",
                  "segment", "component", "topic", "partition"}


def change(seg: str, frm: str | None, to: str, version: int | None = None) -> dict[str, object]:
    return {"segmenter": seg, "from_segment": frm, "to_segment": to, "model_version": version}


def fresh() -> tuple[CollectorRegistry, Metrics]:
    reg = CollectorRegistry()
    return reg, Metrics(reg)


def test_names_units_and_label_sets_follow_the_convention() -> None:
    reg, _ = fresh()
    families = [f for f in text_string_to_metric_families(generate_latest(reg).decode())
                if not f.name.endswith("_created")]  # prometheus_client's creation stamps
    assert {f.name for f in families} == {
        "streamseg_events_consumed", "streamseg_dead_letters_written",
        "streamseg_segment_changes_published", "streamseg_event_processing_seconds",
        "streamseg_event_time_lag_seconds", "streamseg_segment_customers",
        "streamseg_model_version", "streamseg_table_customers", "streamseg_table_raw_ids",
        "streamseg_value_fits_rejected",
        "streamseg_event_clock_timestamp_seconds", "streamseg_consumer_lag_records",
        "streamseg_errors", "streamseg_rebalances", "streamseg_assigned_partitions",
        "streamseg_last_input_timestamp_seconds",
        # batched edge and partitioning
        "streamseg_input_foreign_partition", "streamseg_split_customers", "streamseg_input_held",
        "streamseg_input_reseeks",
        "streamseg_consent_fanout", "streamseg_batch_events",
        # rule audiences: over-segmentation
        "streamseg_audience_undersized", "streamseg_audience_min_size",
        # KPIs per segment (read from the engine at scrape)
        "streamseg_segment_revenue", "streamseg_segment_orders", "streamseg_segment_repeat_orders",
        "streamseg_segment_sessions", "streamseg_segment_converted_sessions",
    }
    for fam in families:
        assert NAME.match(fam.name), fam.name
        assert fam.documentation
        if fam.type == "gauge" and "timestamp" in fam.name:
            assert fam.name.endswith("_timestamp_seconds"), fam.name
        if fam.type == "counter":
            assert all(s.name == fam.name + "_total" for s in fam.samples)
        for sample in fam.samples:
            assert set(sample.labels) - {"le"} <= ALLOWED_LABELS


def test_label_values_are_pre_declared_from_closed_sets() -> None:
    reg, _ = fresh()
    for stream in STREAMS:
        for outcome in OUTCOMES:
            assert reg.get_sample_value("streamseg_events_consumed_total",
                                        {"stream": stream, "outcome": outcome}) == 0.0
    schema_reasons = load_schema("dead-letter")["properties"]["reason"]["enum"]
    assert set(REASONS) == set(schema_reasons)
    for reason in REASONS:
        assert reg.get_sample_value("streamseg_dead_letters_written_total",
                                    {"reason": reason}) == 0.0
    for component in COMPONENTS:
        assert reg.get_sample_value("streamseg_errors_total", {"component": component}) == 0.0
    for segmenter in MODEL_SEGMENTERS:
        assert reg.get_sample_value("streamseg_model_version", {"segmenter": segmenter}) == 0.0
    for stream in STREAMS:
        assert reg.get_sample_value("streamseg_last_input_timestamp_seconds",
                                    {"stream": stream}) > 1.7e9
    assert reg.get_sample_value("streamseg_rebalances_total") == 0.0
    for reason in FIT_REASONS:
        assert reg.get_sample_value("streamseg_value_fits_rejected_total",
                                    {"reason": reason}) == 0.0
    # an alert on increase() misses a series that first appears at 1 (review 31: the
    # worker's first split customer never fired StreamsegSplitCustomers)
    for stream in ("click", "purchase", "profile"):
        assert reg.get_sample_value("streamseg_split_customers_total",
                                    {"stream": stream}) == 0.0


def test_changes_move_customers_between_segment_gauges() -> None:
    reg, m = fresh()
    m.observe_change(change("frequency", None, "low"))
    m.observe_change(change("frequency", None, "low"))
    m.observe_change(change("frequency", "low", "high"))
    m.observe_change(change("cluster", None, "c2", version=3))

    def size(seg: str, segment: str) -> float | None:
        return reg.get_sample_value("streamseg_segment_customers",
                                    {"segmenter": seg, "segment": segment})

    assert (size("frequency", "low"), size("frequency", "high"), size("cluster", "c2")) == (
        1.0, 1.0, 1.0)
    assert reg.get_sample_value("streamseg_segment_changes_published_total", {
        "segmenter": "frequency", "from_segment": "none", "to_segment": "low"}) == 2.0
    assert reg.get_sample_value("streamseg_segment_changes_published_total", {
        "segmenter": "frequency", "from_segment": "low", "to_segment": "high"}) == 1.0
    assert reg.get_sample_value("streamseg_model_version", {"segmenter": "cluster"}) == 3.0
    m.forget_segments({"frequency": ["high", 0.0, 2, None], "cluster": ["c2", 0.0, 1, 3]})
    assert (size("frequency", "high"), size("cluster", "c2")) == (0.0, 0.0)


def test_recount_replaces_the_gauges_with_the_table_contents() -> None:
    reg, m = fresh()
    m.observe_change(change("frequency", None, "low"))
    m.observe_change(change("lifecycle", None, "new"))
    held = [
        {"frequency": ["high", 0.0, 2, None], "lifecycle": ["active", 0.0, 2, None]},
        {"frequency": ["high", 0.0, 1, None]},
        {},
    ]
    assert m.recount(held) == 3
    sizes = {(s.labels["segmenter"], s.labels["segment"]): s.value
             for fam in text_string_to_metric_families(generate_latest(reg).decode())
             if fam.name == "streamseg_segment_customers" for s in fam.samples}
    assert sizes == {("frequency", "low"): 0.0, ("lifecycle", "new"): 0.0,
                     ("frequency", "high"): 2.0, ("lifecycle", "active"): 1.0}
    assert reg.get_sample_value("streamseg_table_customers") == 3.0


def test_exposition_passes_promtool(promtool: str) -> None:
    reg, m = fresh()
    m.set_lag(["clickstream", "purchases"], 4, {("clickstream", 2): 12})
    m.errors.labels(component="broker").inc()
    m.observe_change(change("rfm", None, "champions"))
    m.latency.labels(stream="click").observe(0.003)
    m.dead_letters.labels(reason="not_json").inc()
    m.event_lag.set(1.5)
    check = subprocess.run([promtool, "check", "metrics"], input=generate_latest(reg),
                           capture_output=True, timeout=30)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()


def test_segment_series_of_rule_segmenters_exist_from_start_and_cover_every_verdict() -> None:
    from streamseg.config import Settings
    from streamseg.engine.flaps import simulated
    from streamseg.engine.processor import Engine

    cfg = Settings(rfm_warmup_days=0.0, rfm_min_samples=5)
    engine = Engine(cfg)
    _reg, m = fresh()
    m.declare_segments((seg.name, seg.segments()) for seg in engine.segmenters)
    declared = {(s.labels["segmenter"], s.labels["segment"])
                for fam in m.segment_size.collect() for s in fam.samples}
    assert ("lifecycle", "inactive_prospect") in declared and ("rfm", "cannot_lose") in declared
    assert not any(name == "cluster" for name, _ in declared)  # ids come from the model
    states: dict[str, object] = {}
    assigned: set[tuple[str, str]] = set()
    for ev in simulated(customers=60, days=120.0, seed=3):
        out = engine.apply(states.get(ev.customer_id), ev)  # type: ignore[arg-type]
        states[ev.customer_id] = out.state
        assigned |= {(c["segmenter"], c["to_segment"]) for c in out.changes
                     if c.get("segmenter") != "cluster"}
    assert {name for name, _ in assigned} >= {"frequency", "lifecycle", "rfm", "channel"}
    assert assigned <= declared  # a verdict outside segments() would be a series created late


def test_a_rejected_value_fit_is_counted_where_the_worker_reads_the_engines_models() -> None:
    import numpy as np

    from streamseg.config import DAY, Settings
    from streamseg.engine.processor import Engine
    from streamseg.engine.segmenters.value import ValueSegmenter
    from streamseg.modelsync import ModelSync
    from tests.unit.test_value import _buyer

    reg, m = fresh()
    engine = Engine(Settings(value_min_customers=100, value_warmup_days=30))
    sync = ModelSync(engine, m, "clickstream")
    value = engine.segmenter("value")
    assert isinstance(value, ValueSegmenter)
    value.training = True  # this worker trains (owns partition 0)
    rng = np.random.default_rng(4)  # 1 buyer in 70 buys twice: every fit is degenerate
    for i in range(700):
        first = float(rng.integers(0, 700))
        value.restore(_buyer(f"c{i}", [first, first + 5.0] if i % 70 == 0 else [first]))
    degenerate, failed = {"reason": "degenerate"}, {"reason": "failed"}
    sync.observe_fits()
    assert reg.get_sample_value("streamseg_value_fits_rejected_total", degenerate) == 0.0
    for day in (730.0, 760.0):  # two refits (value_refit_days 7 apart), both rejected
        value.learn(_buyer("late", [day - 1]), day * DAY)
    assert value.model is None and value.rejected == 2  # value abstains
    sync.observe_fits()
    sync.observe_fits()  # counted once
    assert reg.get_sample_value("streamseg_value_fits_rejected_total", degenerate) == 2.0
    assert reg.get_sample_value("streamseg_value_fits_rejected_total", failed) == 0.0


def test_a_value_fit_that_fails_outright_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    import math

    import numpy as np

    from streamseg.config import DAY, Settings
    from streamseg.engine import bgnbdfit
    from streamseg.engine.processor import Engine
    from streamseg.engine.segmenters.value import ValueSegmenter
    from streamseg.modelsync import ModelSync
    from tests.unit.test_value import TRUE, _buyer

    def fit(*args: object, **kwargs: object) -> bgnbd.Params:
        raise np.linalg.LinAlgError("singular matrix")

    reg, m = fresh()
    engine = Engine(Settings(value_min_customers=100, value_warmup_days=30))
    sync = ModelSync(engine, m, "clickstream")
    sync.on_assigned([TopicPartition("clickstream", 0)])  # this worker trains
    value = engine.segmenter("value")
    assert isinstance(value, ValueSegmenter)
    x, t_x, _ = bgnbdfit.simulate(TRUE, 300, 200.0, np.random.default_rng(3))
    for i in range(300):  # a population the real fit models (see the end)
        s = _buyer(f"c{i}", [0.0] + [float(math.floor(t_x[i]))] * int(x[i] > 0))
        s.purchase_days = s.purchases = int(x[i]) + 1
        value.restore(s)
    monkeypatch.setattr(bgnbdfit, "fit", fit)
    for day in (200.0, 230.0, 260.0):  # three refits (value_refit_days apart), each raises
        value.learn(_buyer("late", [day - 1]), day * DAY)
    sync.observe_fits()
    sync.observe_fits()  # counted once
    got = {reason: reg.get_sample_value("streamseg_value_fits_rejected_total",
                                        {"reason": reason}) for reason in FIT_REASONS}
    assert got == {"degenerate": 0.0, "failed": 3.0}
    assert value.version is None  # value abstains
    monkeypatch.undo()  # the real fit of the same sample is used, and counted nowhere
    value.learn(_buyer("late", [289.0]), 290 * DAY)
    sync.observe_fits()
    assert value.version == 1
    got = {reason: reg.get_sample_value("streamseg_value_fits_rejected_total",
                                        {"reason": reason}) for reason in FIT_REASONS}
    assert got == {"degenerate": 0.0, "failed": 3.0}
