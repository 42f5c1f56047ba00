"""The worker's Faust monitor: per-message statistics off, what Faust reads kept."""

from __future__ import annotations

import inspect

import faust
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
    m.on_send_completed(None, m.on_send_initiated(None, "t", None, 1, 1), None)
    assert (m.events_total, m.messages_received_total, m.messages_sent,
            len(m.events_runtime), len(m.send_latency), m.tables) == (0, 0, 0, 0, 0, {})


def test_the_worker_app_uses_it_as_its_monitor_and_sensor() -> None:
    ss = build_app(Settings(store="memory://", web_port=0))
    assert isinstance(ss.app.monitor, LeanMonitor)
