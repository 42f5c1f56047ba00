"""Worker health metrics that do not come from the engine (transport edge).

* :class:`ErrorCounter`, a logging handler: every ERROR (or worse) log record
  counts in ``streamseg_errors_total{component}``, the component derived from
  the logger name (:func:`component_of`). A broker outage, a failing producer
  or a crashed agent thus moves a metric, not only the log.
* :class:`WorkerSensor`, a Faust sensor (the public ``faust.Sensor`` hooks):
  rebalances, assigned partitions, and the wall time of the last message of
  each input stream.
* :class:`LagProbe`: consumer lag in records, per input topic and partition,
  read from the broker with public aiokafka APIs: the group's committed
  offsets (``AIOKafkaAdminClient.list_consumer_group_offsets``) and the
  log-end offsets (``AIOKafkaConsumer.end_offsets``) of the partitions this
  worker owns (``faust`` ``app.consumer.assignment()``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import faust
from aiohttp.http_exceptions import BadHttpMessage
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streamseg.app import Streamseg, input_topics
from streamseg.broker import describe_error
from streamseg.config import Settings
from streamseg.metrics import COMPONENTS, Metrics

log = logging.getLogger(__name__)

# logger-name prefix -> component, most specific first
_COMPONENT_PREFIXES = (
    ("aiokafka.consumer", "consumer"),
    ("faust.transport.consumer", "consumer"),
    ("faust.transport.drivers.aiokafka", "broker"),
    ("aiokafka.producer", "producer"),
    ("faust.transport.producer", "producer"),
    ("aiokafka", "broker"),
    ("kafka", "broker"),
    ("streamseg", "streamseg"),
    ("faust", "framework"),
    ("mode", "framework"),
)


def component_of(logger_name: str) -> str:
    """The ``component`` label of a logger (a closed set: :data:`streamseg.metrics.COMPONENTS`).

    >>> [component_of(n) for n in ("aiokafka.conn", "aiokafka.consumer.fetcher",
    ...                            "aiokafka.producer.sender", "faust.agents", "streamseg.agents",
    ...                            "asyncio")]
    ['broker', 'consumer', 'producer', 'framework', 'streamseg', 'other']
    """
    for prefix, component in _COMPONENT_PREFIXES:
        if logger_name == prefix or logger_name.startswith(prefix + "."):
            return component
    return "other"


class ErrorCounter(logging.Handler):
    """Counts ERROR and CRITICAL log records by component; formats nothing, prints nothing.

    >>> from prometheus_client import CollectorRegistry
    >>> m = Metrics(CollectorRegistry())
    >>> logger = logging.getLogger("aiokafka.conn.doctest")
    >>> logger.addHandler(ErrorCounter(m)); logger.propagate = False
    >>> logger.error("Unable connect to node"); logger.warning("not counted")
    >>> m.registry.get_sample_value("streamseg_errors_total", {"component": "broker"})
    1.0
    """

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(level=logging.ERROR)
        self.children = {c: metrics.errors.labels(component=c) for c in COMPONENTS}

    def emit(self, record: logging.LogRecord) -> None:
        self.children[component_of(record.name)].inc()


class BadRequests(logging.Filter):
    """aiohttp's record of a request it refused as malformed (400: an over-long URL, a
    broken header) becomes one WARNING line naming the error's class.

    aiohttp logs such a request as an ERROR with a traceback that quotes the request
    line: anyone reaching the web port could raise ``streamseg_errors_total`` and write
    what they like (customer ids) into the worker's log (an operator's run: a 20,000
    character id).

    >>> f = BadRequests()
    >>> try:
    ...     raise BadHttpMessage("Got more than 8190 bytes: /customers/LLLL")
    ... except BadHttpMessage as exc:
    ...     rec = logging.LogRecord("aiohttp.server", logging.ERROR, "", 0,
    ...                             "Error handling request", None, (type(exc), exc, None))
    >>> f.filter(rec), rec.levelname, rec.getMessage(), rec.exc_info
    (True, 'WARNING', 'refused a malformed HTTP request (400 BadHttpMessage)', None)
    >>> rec.levelno = logging.DEBUG; rec.exc_info = (BadHttpMessage, BadHttpMessage("x"), None)
    >>> f.filter(rec), rec.levelno == logging.DEBUG, rec.exc_info is not None  # left alone
    (True, True, True)
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        # (only errors: aiohttp logs some, e.g. a port scanner's first bad method, at DEBUG)
        if record.levelno >= logging.ERROR and isinstance(exc, BadHttpMessage):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = "refused a malformed HTTP request (400 %s)", (
                type(exc).__name__,)
            record.exc_info = record.exc_text = None
        return True


class WorkerSensor(faust.Sensor):
    """Rebalances, assigned partitions and the last input message per stream."""

    def __init__(self, ss: Streamseg, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ss = ss
        self.metrics = metrics
        kinds = input_topics(ss.settings)
        self.last_input = {topic: metrics.last_input.labels(stream=kind)
                           for topic, kind in kinds.items()}

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        gauge = self.last_input.get(tp.topic)
        if gauge is not None:
            gauge.set(time.time())

    def on_rebalance_start(self, app: Any) -> dict[str, Any]:
        self.metrics.rebalances.inc()
        state: dict[str, Any] = super().on_rebalance_start(app)
        return state

    def on_rebalance_end(self, app: Any, state: dict[str, Any]) -> None:
        super().on_rebalance_end(app, state)
        assigned = [tp for tp in app.consumer.assignment() if tp.topic in self.last_input]
        self.metrics.assigned_partitions.set(len(assigned))


def lag_by_partition(
    owned: Iterable[tuple[str, int]],
    end_offsets: Mapping[tuple[str, int], int],
    committed: Mapping[tuple[str, int], int],
) -> dict[tuple[str, int], int]:
    """Records not yet committed by the group, for each owned partition.

    A partition with no committed offset yet counts from 0 (Kafka's log start
    for a topic that has not been truncated).

    >>> lag_by_partition([("t", 0), ("t", 1)], {("t", 0): 10, ("t", 1): 5}, {("t", 0): 7})
    {('t', 0): 3, ('t', 1): 5}
    """
    return {tp: max(0, end_offsets.get(tp, 0) - max(0, committed.get(tp, 0))) for tp in owned}


class LagProbe:
    """Reads this worker's consumer lag from the broker (its own two clients)."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.topics = list(input_topics(settings))
        self.admin: AIOKafkaAdminClient | None = None
        self.consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        if self.admin is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.bootstrap_servers)
            await admin.start()
            self.admin = admin
        if self.consumer is None:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap_servers,
                                        group_id=None, enable_auto_commit=False)
            await consumer.start()
            self.consumer = consumer

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        if self.admin is not None:
            await self.admin.close()
        self.admin = self.consumer = None

    async def measure(self, owned: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Lag of the ``owned`` (topic, partition) pairs of the consumer group ``app_id``."""
        await self.start()
        assert self.admin is not None and self.consumer is not None
        tps = [TopicPartition(t, p) for t, p in owned]
        if not tps:
            return {}
        ends = await self.consumer.end_offsets(tps)
        offsets = await self.admin.list_consumer_group_offsets(self.settings.app_id,
                                                                partitions=tps)
        return lag_by_partition(
            [(tp.topic, tp.partition) for tp in tps],
            {(tp.topic, tp.partition): off for tp, off in ends.items()},
            {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()},
        )

    async def update(self, assignment: Iterable[Any]) -> None:
        """Set the lag gauges: measured for owned input partitions, 0 for the others."""
        owned = [(tp.topic, tp.partition) for tp in assignment if tp.topic in self.topics]
        lag = await self.measure(owned)
        self.metrics.set_lag(self.topics, self.settings.partitions, lag)


def install(ss: Streamseg, metrics: Metrics) -> tuple[WorkerSensor, ErrorCounter]:
    """Attach the sensor and the lag timer to the app; return the sensor and the log handler.

    The caller hands the handler to the Faust worker (``worker.loghandlers``),
    which installs it with its own logging setup.
    """
    settings = ss.settings
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, BadRequests) for f in server.filters):
        server.addFilter(BadRequests())
    metrics.set_lag(list(input_topics(settings)), settings.partitions, {})
    sensor = WorkerSensor(ss, metrics)
    ss.app.sensors.add(sensor)
    probe = LagProbe(settings, metrics)

    @ss.app.timer(settings.lag_interval_s, name="streamseg.lag")  # type: ignore[untyped-decorator]
    async def measure_lag() -> None:
        try:
            await probe.update(ss.app.consumer.assignment())
        except Exception as exc:  # the broker may be away; counted, retried next interval
            log.error("consumer lag not measured: %s", describe_error(exc))
            await probe.stop()

    @ss.app.on_before_shutdown.connect
    async def close_probe(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await probe.stop()

    return sensor, ErrorCounter(metrics)


class AudienceAudit:
    """Over-segmentation of rule audiences: the metric on every check, a log line per
    undersized audience at most once per ``every_s`` of wall time (a log, not a decision).

    >>> from prometheus_client import CollectorRegistry
    >>> clock = iter([0.0, 10.0, 1000.0])
    >>> audit = AudienceAudit(Metrics(CollectorRegistry()), ["cart"], 5, 600.0,
    ...                       now=lambda: next(clock))
    >>> audit.check(), audit.check(), audit.check()
    (['cart'], [], ['cart'])
    """

    def __init__(self, metrics: Metrics, audiences: Iterable[str], min_size: int,
                 every_s: float = 900.0, now: Callable[[], float] = time.monotonic) -> None:
        self.metrics, self.audiences, self.min_size = metrics, list(audiences), min_size
        self.every_s, self.now = every_s, now
        self.logged: dict[str, float] = {}

    def check(self) -> list[str]:
        """Update the gauges; log (rate-limited) and return the audiences logged now."""
        said: list[str] = []
        for name, size in self.metrics.audit_audiences(self.audiences, self.min_size):
            t = self.now()
            last = self.logged.get(name)
            if last is None or t - last >= self.every_s:
                self.logged[name] = t
                said.append(name)
                log.warning("audience %s has %d members on this worker, below "
                            "STREAMSEG_AUDIENCE_MIN_SIZE=%d: over-segmentation",
                            name, size, self.min_size)
        return said


def watch_audiences(ss: Streamseg, metrics: Metrics, audiences: Iterable[str]) -> None:
    """Check the audiences' sizes every ``lag_interval_s`` (nothing without audiences)."""
    audit = AudienceAudit(metrics, audiences, ss.settings.audience_min_size)
    if not audit.audiences:
        return

    @ss.app.timer(ss.settings.lag_interval_s,  # type: ignore[untyped-decorator]
                  name="streamseg.audiences")
    async def audit_audiences() -> None:
        audit.check()
