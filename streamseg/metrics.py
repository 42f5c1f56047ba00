"""Every Prometheus metric of streamseg, declared once.

Names follow ``streamseg_<noun>_<verb>_<unit>``; counters end in ``_total``;
times are in seconds. Label sets are closed (stream kinds, reason codes,
segmenter names and their segment ids); a customer id is never a label.

Examples
--------
>>> reg = CollectorRegistry()
>>> m = Metrics(reg)
>>> m.events_consumed.labels(stream="click", outcome="processed").inc()
>>> reg.get_sample_value("streamseg_events_consumed_total",
...                      {"stream": "click", "outcome": "processed"})
1.0
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

STREAMS = ("click", "purchase", "consent", "tick")
OUTCOMES = ("processed", "dead_letter", "duplicate", "no_consent", "no_state", "erased")

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The metric objects, bound to one registry (the global one by default)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.events_consumed = Counter(
            "streamseg_events_consumed_total",
            "Input messages consumed, by stream and outcome.",
            ["stream", "outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "streamseg_dead_letters_written_total",
            "Inputs sent to the dead-letter topic, by reason code.",
            ["reason"],
            registry=registry,
        )
        self.changes = Counter(
            "streamseg_segment_changes_published_total",
            "Segment changes published, by segmenter and transition.",
            ["segmenter", "from_segment", "to_segment"],
            registry=registry,
        )
        self.latency = Histogram(
            "streamseg_event_processing_seconds",
            "Wall time from taking a message to handing its outputs to the producer.",
            ["stream"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.event_lag = Gauge(
            "streamseg_event_time_lag_seconds",
            "Wall clock minus the event time of the newest event processed.",
            registry=registry,
        )
        self.segment_size = Gauge(
            "streamseg_segment_customers",
            "Customers currently in each segment on this worker.",
            ["segmenter", "segment"],
            registry=registry,
        )
        self.model_version = Gauge(
            "streamseg_model_version",
            "Version of the clustering model in use.",
            ["segmenter"],
            registry=registry,
        )
        self.table_customers = Gauge(
            "streamseg_table_customers",
            "Customers held in the state table on this worker.",
            registry=registry,
        )
        for stream in STREAMS:
            for outcome in OUTCOMES:
                self.events_consumed.labels(stream=stream, outcome=outcome)
            self.latency.labels(stream=stream)
