"""Faust's Monitor without the per-message statistics nobody reads here.

Every Faust app has a :class:`faust.Monitor` among its sensors. Its hooks run
for every message, stream event, table read and write and produced record
(counters by topic, stream and task, latency deques, timestamps on each
message), and feed Faust's own ``/stats`` and ``/performance`` web views, which
the worker turns off (``streamseg.app``); operators read the Prometheus metrics
instead. Measured with ``streamseg bench`` (100,000 events, 3 interleaved
rounds), skipping those hooks made the worker about 5% faster. (Faust's
``APP_WEB_STATS_ENABLED`` / ``APP_WEB_METRICS_ENABLED`` environment variables
override the app's settings: views turned on that way show zeros.)

:class:`LeanMonitor` keeps everything else: the commit, assignment and
rebalance statistics (rare), the end offset Faust records per fetched record
(one dict write), and the one per-event value Faust itself reads,
``stream_inbound_time`` (the consumer's "stream is not processing events"
warning compares it with the fetch position). It is a subclass on the public
sensor hooks, passed to ``faust.App(monitor=...)``.

Examples
--------
>>> from faust.types import TP
>>> m = LeanMonitor()
>>> tp = TP("clicks", 0)
>>> m.on_stream_event_in(tp, 5, None, None) is None, tp in m.stream_inbound_time
(True, True)
>>> m.on_message_in(tp, 5, None), m.events_total, m.messages_received_total
(None, 0, 0)
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from faust.sensors import Monitor

PER_MESSAGE_HOOKS = (
    "on_message_in", "on_stream_event_in", "on_stream_event_out", "on_message_out",
    "on_table_get", "on_table_set", "on_table_del", "on_send_initiated", "on_send_completed",
)


class LeanMonitor(Monitor):
    """:class:`faust.Monitor` whose per-message hooks record only ``stream_inbound_time``."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        self.stream_inbound_time[tp] = monotonic()
        return None

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_table_get(self, table: Any, key: Any) -> None:
        return None

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        return None

    def on_table_del(self, table: Any, key: Any) -> None:
        return None

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int,
                          valsize: int) -> None:
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        return None
