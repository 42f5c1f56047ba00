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
>>> m.observe_change({"segmenter": "frequency", "from_segment": None, "to_segment": "low",
...                   "model_version": None})
>>> m.observe_change({"segmenter": "frequency", "from_segment": "low", "to_segment": "high",
...                   "model_version": None})
>>> [reg.get_sample_value("streamseg_segment_customers",
...                       {"segmenter": "frequency", "segment": s}) for s in ("low", "high")]
[0.0, 1.0]
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

STREAMS = ("click", "purchase", "consent", "profile", "tick")
OUTCOMES = ("processed", "dead_letter", "duplicate", "no_consent", "no_state", "erased",
            "out_of_order", "stale_consent")
# the reason codes of streamseg/schemas/dead-letter.schema.json
REASONS = (
    "too_large", "not_json", "not_object", "unknown_event_type", "schema_invalid",
    "key_mismatch", "unsupported_currency", "timestamp_out_of_range", "too_many_attributes",
)

# components of streamseg_errors_total (streamseg.telemetry.component_of)
COMPONENTS = ("broker", "consumer", "producer", "framework", "streamseg", "other")
# segmenters with a population model (streamseg_model_version)
MODEL_SEGMENTERS = ("cluster", "rfm", "value")
# why a value fit was not used (streamseg_value_fits_rejected_total)
FIT_REASONS = ("degenerate", "failed")

# KPIs per segment (streamseg.engine.kpis): field -> (counter name, help)
KPI_COUNTERS = {
    "revenue": ("streamseg_segment_revenue",
                "Revenue (base currency) of purchases, credited to the segment the customer was "
                "published in at the purchase (segment none: not published); this worker since "
                "start."),
    "orders": ("streamseg_segment_orders",
               "Purchases, credited like streamseg_segment_revenue_total."),
    "repeat_orders": ("streamseg_segment_repeat_orders",
                      "Purchases at most STREAMSEG_KPI_REPEAT_DAYS after the customer's previous "
                      "purchase, credited like streamseg_segment_revenue_total."),
    "sessions": ("streamseg_segment_sessions",
                 "Sessions, credited to the customer's published segment when they start."),
    "converted": ("streamseg_segment_converted_sessions",
                  "Sessions with a purchase, counted once at their first purchase and credited "
                  "to the customer's published segment then."),
}
KpiSource = Callable[[], Mapping[str, Mapping[str, Mapping[str, Any]]]]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class KpiCollector(Collector):
    """The KPI counters, read from the engine's :class:`~streamseg.engine.kpis.Kpis` at scrape.

    Nothing is done per event: the engine keeps the sums, a scrape reads them.
    Every declared (segmenter, segment), and ``none``, is exposed from start.

    >>> c = KpiCollector()
    >>> c.declare("rfm", ("champions",))
    >>> c.source = lambda: {"rfm": {"none": {"revenue": 2.5, "orders": 1}}}
    >>> [(s.labels["segment"], s.value) for s in next(iter(c.collect())).samples]
    [('champions', 0.0), ('none', 2.5)]
    """

    def __init__(self) -> None:
        self.source: KpiSource = dict
        self.known: dict[str, set[str]] = {}

    def declare(self, segmenter: str, segments: Iterable[str]) -> None:
        """Expose ``segmenter``'s ``segments`` (and ``none``) from start."""
        self.known.setdefault(segmenter, {"none"}).update(segments)

    def describe(self) -> Iterator[Metric]:
        for name, doc in KPI_COUNTERS.values():
            yield CounterMetricFamily(name, doc, labels=["segmenter", "segment"])

    def collect(self) -> Iterator[Metric]:
        view = self.source()
        keys = {(name, seg) for name, segs in self.known.items() for seg in segs}
        keys.update((name, seg) for name, per in view.items() for seg in per)
        ordered = sorted(keys)
        for field, (name, doc) in KPI_COUNTERS.items():
            family = CounterMetricFamily(name, doc, labels=["segmenter", "segment"])
            for segmenter, segment in ordered:
                cell = view.get(segmenter, {}).get(segment, {})
                family.add_metric([segmenter, segment], float(cell.get(field, 0)))
            yield family


class Metrics:
    """The metric objects, bound to one registry (the global one by default)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self._children: dict[tuple[str, str | None, str], tuple[Any, Any, Any]] = {}
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
            "Wall clock minus the event time of the newest event processed (before this "
            "worker's first input: minus the event clock restored for its partitions).",
            registry=registry,
        )
        self.segment_size = Gauge(
            "streamseg_segment_customers",
            "Customers currently in each segment on this worker.",
            ["segmenter", "segment"],
            registry=registry,
        )
        self.audience_undersized = Gauge(
            "streamseg_audience_undersized",
            "1 while a rule audience (label: its name from STREAMSEG_AUDIENCES_FILE, fixed at "
            "start) has fewer members (segment in) on this worker than "
            "STREAMSEG_AUDIENCE_MIN_SIZE: over-segmentation; 0 otherwise.",
            ["audience"],
            registry=registry,
        )
        self.audience_min_size = Gauge(
            "streamseg_audience_min_size",
            "STREAMSEG_AUDIENCE_MIN_SIZE of this worker (exported with the rule audiences, "
            "so that an alert can hold the fleet's members, the sum over workers, against it).",
            registry=registry,
        )
        self.model_version = Gauge(
            "streamseg_model_version",
            "Version of each population model in use (cluster: KMeans snapshot; rfm: quantiles;"
            " value: BG/NBD fit); 0 until the first model.",
            ["segmenter"],
            registry=registry,
        )
        self.value_fits_rejected = Counter(
            "streamseg_value_fits_rejected_total",
            "Value (BG/NBD) refits this worker (the trainer) did not use, by reason: degenerate "
            "(a repeat purchase would lower a customer's expected purchases: almost no repeat "
            "buyers) or failed (the fit raised, or gave parameters or scores the closed form "
            "cannot evaluate). The previous model stays in use, or none (value abstains) if it is "
            "degenerate too.",
            ["reason"],
            registry=registry,
        )
        self.table_customers = Gauge(
            "streamseg_table_customers",
            "Customers held in the state table on this worker.",
            registry=registry,
        )
        self.table_raw_ids = Gauge(
            "streamseg_table_raw_ids",
            "With STREAMSEG_PSEUDONYMISE_KEY set: states in this worker's table keyed by a raw "
            "customer id, not an alias (counted when the table is re-read after an "
            "assignment): the key was turned on for an app id that already had states. "
            "0 otherwise.",
            registry=registry,
        )
        self.event_clock = Gauge(
            "streamseg_event_clock_timestamp_seconds",
            "Highest event time seen by this worker or restored for its partitions (epoch "
            "seconds); drives time-driven moves.",
            registry=registry,
        )
        # --- batched edge and partitioning (agents.py, partitions.py)
        self.foreign_partition = Counter(
            "streamseg_input_foreign_partition_total",
            "Valid inputs found on a partition other than murmur2(key): a producer with "
            "another partitioner (their state lives where they arrive).",
            ["stream"],
            registry=registry,
        )
        self.split_customers = Counter(
            "streamseg_split_customers_total",
            "Customers an input made a profile for on a partition (once per customer and "
            "partition) while this worker held them profiled on another partition: two "
            "producer partitioners for one customer, so two "
            "independent states (keep one partitioner per customer). Consent is not counted: "
            "it reaches every partition.",
            ["stream"],
            registry=registry,
        )
        self.input_held = Counter(
            "streamseg_input_held_total",
            "Events the rebalance gate held back (not applied, not acknowledged): delivered "
            "ahead of the committed offset after an assignment, or after skipped offsets.",
            registry=registry,
        )
        self.input_reseeks = Counter(
            "streamseg_input_reseeks_total",
            "Seeks the worker made to re-read a partition: from the committed offset after a "
            "hold ran out, or from the first offset Faust skipped.",
            registry=registry,
        )
        self.consent_fanout = Counter(
            "streamseg_consent_fanout_total",
            "Consent copies on the other partitions (withdrawal and erasure reach every "
            "partition that may hold the customer), by outcome: applied; no_state (a grant "
            "where the customer has no state); duplicate (a copy of a consent already "
            "applied there, not applied again); stale (a grant older than the customer's "
            "latest withdrawal or erasure there, not applied).",
            ["outcome"],
            registry=registry,
        )
        self.batch_events = Histogram(
            "streamseg_batch_events",
            "Messages per batch taken by the ingest agent.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=registry,
        )
        for stream in STREAMS:
            self.foreign_partition.labels(stream=stream)
        for stream in ("click", "purchase", "profile"):  # (consent splits no customer)
            # at 0 from the start: a series that first appears at 1 has no increase()
            self.split_customers.labels(stream=stream)
        for outcome in ("applied", "no_state", "duplicate", "stale"):
            self.consent_fanout.labels(outcome=outcome)
        self.consumer_lag = Gauge(
            "streamseg_consumer_lag_records",
            "Records in a partition of an input topic or the ticks topic not yet committed by "
            "the consumer group "
            "(log-end offset minus committed offset); 0 for partitions another worker owns.",
            ["topic", "partition"],
            registry=registry,
        )
        self.errors = Counter(
            "streamseg_errors_total",
            "ERROR log records, by component (broker, consumer, producer, framework, "
            "streamseg, other).",
            ["component"],
            registry=registry,
        )
        self.rebalances = Counter(
            "streamseg_rebalances_total",
            "Consumer-group rebalances this worker went through.",
            registry=registry,
        )
        self.assigned_partitions = Gauge(
            "streamseg_assigned_partitions",
            "Partitions of the input topics and the ticks topic assigned to this worker after "
            "the last rebalance.",
            registry=registry,
        )
        self.last_input = Gauge(
            "streamseg_last_input_timestamp_seconds",
            "Wall time (epoch seconds) of the last message received per input stream; "
            "the worker's start time until the first one.",
            ["stream"],
            registry=registry,
        )
        self.kpis = KpiCollector()
        registry.register(self.kpis)
        started = time.time()
        for stream in STREAMS:
            self.last_input.labels(stream=stream).set(started)
            for outcome in OUTCOMES:
                self.events_consumed.labels(stream=stream, outcome=outcome)
            self.latency.labels(stream=stream)
        for reason in REASONS:
            self.dead_letters.labels(reason=reason)
        for component in COMPONENTS:
            self.errors.labels(component=component)
        for segmenter in MODEL_SEGMENTERS:
            self.model_version.labels(segmenter=segmenter)
        for reason in FIT_REASONS:
            self.value_fits_rejected.labels(reason=reason)

    def set_lag(self, topics: Iterable[str], partitions: int,
                lag: Mapping[tuple[str, int], int]) -> None:
        """Set the lag of partitions 0..partitions-1 of each topic (and any other measured).

        >>> m = Metrics(CollectorRegistry())
        >>> m.set_lag(["t"], 2, {("t", 1): 7})
        >>> [m.registry.get_sample_value("streamseg_consumer_lag_records",
        ...                              {"topic": "t", "partition": p}) for p in ("0", "1")]
        [0.0, 7.0]
        """
        for topic in topics:
            for partition in range(partitions):
                value = lag.get((topic, partition), 0)
                self.consumer_lag.labels(topic=topic, partition=str(partition)).set(value)
        for (topic, partition), value in lag.items():
            if partition >= partitions:
                self.consumer_lag.labels(topic=topic, partition=str(partition)).set(value)

    def observe_change(self, change: Mapping[str, Any]) -> None:
        """Count a published change and move one customer between segment gauges.

        The labelled children are looked up once per label set (a hot path: every
        change of every batch), never removed, so a cached child stays valid.
        """
        segmenter = change["segmenter"]
        previous = change["from_segment"]
        to = change["to_segment"]
        cache = self._children
        key = (segmenter, previous, to)
        children = cache.get(key)
        if children is None:
            children = cache[key] = (
                self.changes.labels(segmenter=segmenter, from_segment=previous or "none",
                                    to_segment=to),
                None if previous is None else self.segment_size.labels(
                    segmenter=segmenter, segment=previous),
                self.segment_size.labels(segmenter=segmenter, segment=to))
        children[0].inc()
        if children[1] is not None:
            children[1].dec()
        children[2].inc()
        if change.get("model_version") is not None:
            self.model_version.labels(segmenter=segmenter).set(change["model_version"])

    def audit_audiences(self, audiences: Iterable[str], min_size: int) -> list[tuple[str, int]]:
        """Set ``streamseg_audience_undersized`` of each audience (names without the
        ``audience:`` prefix) from its ``in`` count; return the undersized ones with their size.

        >>> m = Metrics(CollectorRegistry())
        >>> m.observe_change({"segmenter": "audience:vip", "from_segment": None,
        ...                   "to_segment": "in", "model_version": None})
        >>> m.audit_audiences(["vip", "cart"], 1)
        [('cart', 0)]
        >>> m.registry.get_sample_value("streamseg_audience_undersized", {"audience": "cart"})
        1.0
        >>> m.registry.get_sample_value("streamseg_audience_min_size")
        1.0
        """
        self.audience_min_size.set(min_size)
        small: list[tuple[str, int]] = []
        for name in audiences:
            size = self.registry.get_sample_value(
                "streamseg_segment_customers", {"segmenter": f"audience:{name}", "segment": "in"})
            members = int(size or 0)
            under = members < min_size
            self.audience_undersized.labels(audience=name).set(1.0 if under else 0.0)
            if under:
                small.append((name, members))
        return small

    def observe_fold(self, change: Mapping[str, Any]) -> None:
        """Move one customer between segment gauges for a move that is not published
        (:attr:`~streamseg.engine.outcome.Outcome.folded`: it fell due while consent was
        withdrawn); the published-changes counter does not move.

        >>> m = Metrics(CollectorRegistry())
        >>> m.observe_fold({"segmenter": "lifecycle", "from_segment": "new",
        ...                 "to_segment": "lapsed"})
        >>> m.registry.get_sample_value(
        ...     "streamseg_segment_customers", {"segmenter": "lifecycle", "segment": "lapsed"})
        1.0
        """
        segmenter, previous = change["segmenter"], change["from_segment"]
        if previous is not None:
            self.segment_size.labels(segmenter=segmenter, segment=previous).dec()
        self.segment_size.labels(segmenter=segmenter, segment=change["to_segment"]).inc()

    def forget_segments(self, segments: Mapping[str, list[Any]]) -> None:
        """An erased customer leaves its segments (``CustomerState.segments``)."""
        for segmenter, current in segments.items():
            self.segment_size.labels(segmenter=segmenter, segment=current[0]).dec()

    def declare_segments(self, known: Iterable[tuple[str, Iterable[str]]]) -> None:
        """Create the segment-size series of every (segmenter, segment) known in advance.

        >>> m = Metrics(CollectorRegistry())
        >>> m.declare_segments([("frequency", ("high", "low"))])
        >>> m.registry.get_sample_value(
        ...     "streamseg_segment_customers", {"segmenter": "frequency", "segment": "low"})
        0.0
        """
        for segmenter, segments in known:
            segments = tuple(segments)
            self.kpis.declare(segmenter, segments)
            for segment in segments:
                self.segment_size.labels(segmenter=segmenter, segment=segment)

    def kpis_from(self, source: KpiSource) -> None:
        """Expose the KPI sums ``source()`` returns (``Kpis.view`` of the worker's engine)."""
        self.kpis.source = source

    def recount(self, segments: Iterable[Mapping[str, list[Any]]]) -> int:
        """Reset the segment gauges and table size from the states this worker holds.

        Called after a rebalance (partitions come and go) or a restart; returns
        the number of states counted.

        >>> m = Metrics(CollectorRegistry())
        >>> m.recount([{"frequency": ["high", 0.0, 1, None]}, {}])
        2
        >>> m.registry.get_sample_value("streamseg_table_customers")
        2.0
        """
        tally: Tally[tuple[str, str]] = Tally()
        n = 0
        for segs in segments:
            n += 1
            for segmenter, current in segs.items():
                tally[(segmenter, str(current[0]))] += 1
        known = {
            (sample.labels["segmenter"], sample.labels["segment"])
            for family in self.segment_size.collect()
            for sample in family.samples
        }
        for segmenter, segment in known - set(tally):
            self.segment_size.labels(segmenter=segmenter, segment=segment).set(0)
        for (segmenter, segment), count in tally.items():
            self.segment_size.labels(segmenter=segmenter, segment=segment).set(count)
        self.table_customers.set(n)
        return n
