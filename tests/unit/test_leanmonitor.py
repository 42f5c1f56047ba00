"""The worker's Faust monitor: per-message statistics off, what Faust reads kept."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import faust
from faust.sensors import Monitor
from faust.sensors.base import SensorDelegate
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streamseg.app import build_app
from streamseg.config import Settings
from streamseg.leanmonitor import PER_MESSAGE_HOOKS, LeanMonitor


def test_every_skipped_hook_is_a_faust_sensor_hook_with_the_same_parameters() -> None:
    # a renamed or re-shaped hook would silently bring the statistics back (or break)
    for name in PER_MESSAGE_HOOKS:
        assert name in LeanMonitor.__dict__, name
        ours = list(inspect.signature(getattr(LeanMonitor, name)).parameters)
        faust_s = list(inspect.signature(getattr(faust.Sensor, name)).parameters)
        assert ours == faust_s, name


def test_faust_still_reads_stream_inbound_time_and_the_monitor_keeps_it() -> None:
    # Faust's "stream is not processing events" warning reads it: the one value kept
    source = inspect.getsource(faust_aiokafka.AIOKafkaConsumerThread.verify_event_path)
    assert "monitor.stream_inbound_time" in source
    m = LeanMonitor()
    m.on_stream_event_in(TP("t", 1), 9, None, None)
    assert set(m.stream_inbound_time) == {TP("t", 1)}


def test_the_per_message_counters_stay_untouched() -> None:
    m = LeanMonitor()
    tp = TP("t", 0)
    state = m.on_stream_event_in(tp, 1, None, None)
    m.on_stream_event_out(tp, 1, None, None, state)
    m.on_message_in(tp, 1, None)
    m.on_message_out(tp, 1, None)
    m.on_table_get(None, b"k")
    m.on_table_set(None, b"k", b"v")
    m.on_table_del(None, b"k")
    m.on_send_completed(None, m.on_send_initiated(None, "t", None, 1, 1), None)
    assert (m.events_total, m.messages_received_total, m.messages_sent,
            len(m.events_runtime), len(m.send_latency), m.tables) == (0, 0, 0, 0, 0, {})


def test_faust_monitor_hooks_are_the_skipped_ones_and_the_known_rare_ones() -> None:
    # a new per-message hook in a Faust upgrade would be neither: decide which it is
    hooks = {name for name, value in vars(Monitor).items()
             if name.startswith("on_") and callable(value)}
    rare = {"on_topic_buffer_full", "on_commit_initiated", "on_commit_completed",
            "on_send_error", "on_tp_commit", "on_assignment_start", "on_assignment_error",
            "on_assignment_completed", "on_rebalance_start", "on_rebalance_return",
            "on_rebalance_end", "on_web_request_start", "on_web_request_end",
            "on_threaded_producer_buffer_processed"}
    assert hooks - set(PER_MESSAGE_HOOKS) == rare


def test_faust_reads_no_other_monitor_attribute() -> None:
    # outside its sensors Faust reads only these of its monitor; a new read could be a
    # value the lean monitor no longer keeps
    root = Path(faust.__file__).parent
    reads = {m.group(1) for path in root.rglob("*.py") if "sensors" not in path.parts
             for m in re.finditer(r"(?<![A-Za-z_])monitor\.([A-Za-z_]+)", path.read_text())}
    assert reads == {"stream_inbound_time", "track_tp_end_offset", "on_tp_commit", "beacon",
                     "loop", "setter", "Monitor"}


def test_faust_sensor_delegate_round_trips_with_its_empty_states() -> None:
    m = LeanMonitor()
    other = faust.Sensor()
    sensors = SensorDelegate(build_app(Settings(store="memory://", web_port=0)).app)
    sensors.add(m)
    sensors.add(other)
    tp = TP("t", 0)
    sensors.on_stream_event_out(tp, 1, None, None, sensors.on_stream_event_in(tp, 1, None, None))
    sensors.on_stream_event_out(tp, 1, None, None, None)
    state = sensors.on_send_initiated(None, "t", None, 1, 1)
    sensors.on_send_completed(None, state, None)
    sensors.on_send_error(None, RuntimeError("x"), state)
    assert m.send_errors == 1 and tp in m.stream_inbound_time


def test_the_worker_app_uses_it_as_its_monitor() -> None:
    ss = build_app(Settings(store="memory://", web_port=0))
    assert isinstance(ss.app.monitor, LeanMonitor)
