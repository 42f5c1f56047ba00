"""Settings: every ``STREAMSEG_*`` environment variable, read once into a frozen object.

Each field of :class:`Settings` is read from ``STREAMSEG_<FIELD NAME IN UPPER CASE>``
and validated by the constraint declared next to it (:func:`setting`: a range,
a set of choices, or a check function); cross-field rules live in
:meth:`Settings.validate`. A new field gets validated by declaring its
constraint where it is defined; ``tests/unit/test_config.py`` fails for a
numeric or string field that declares none. An unknown ``STREAMSEG_*``
variable is an error naming the closest valid one. Every error is one
:class:`~streamseg.errors.ConfigError` line that names the variable.

Examples
--------
>>> s = Settings.from_env({"STREAMSEG_PARTITIONS": "8", "STREAMSEG_LAPSED_DAYS": "120"})
>>> (s.partitions, s.lapsed_days, s.freq_high_max_days)
(8, 120.0, 7.0)
>>> Settings.from_env({"STREAMSEG_PARTITIONS": "eight"})
Traceback (most recent call last):
...
streamseg.errors.ConfigError: STREAMSEG_PARTITIONS: expected an integer, got 'eight'
>>> Settings.from_env({"STREAMSEG_PARTITONS": "8"})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
streamseg.errors.ConfigError: STREAMSEG_PARTITONS: unknown setting (did you mean ...?)
>>> Settings.from_env({"streamseg_partitions": "8"})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
streamseg.errors.ConfigError: streamseg_partitions: not read (names are upper case: ...)
>>> Settings.from_env({"STREAMSEG_TICK_INTERVAL_S": "0"})
Traceback (most recent call last):
...
streamseg.errors.ConfigError: STREAMSEG_TICK_INTERVAL_S: must be >= 0.1, got 0.0
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from streamseg.errors import ConfigError

DAY = 86_400.0
PREFIX = "STREAMSEG_"
# STREAMSEG_* variables of the scripts and tests, not settings of the program.
TOOL_VARIABLES = frozenset({
    "STREAMSEG_VENV", "STREAMSEG_LINT", "STREAMSEG_CONTRACT", "STREAMSEG_KEEP_BROKER_DATA",
    "STREAMSEG_TEST_KAFKA_PORT", "STREAMSEG_TEST_KAFKA_HOME",
    "STREAMSEG_RESTART_KAFKA_PORT", "STREAMSEG_RESTART_KAFKA_HOME",
    "STREAMSEG_CJ", "STREAMSEG_CJ_WHEEL", "STREAMSEG_RFM_QUALITY",
})
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
STORES = ("memory", "rocksdb")
# settings field -> topic-name suffix of the app's internal topics (see Settings.__post_init__)
INTERNAL_TOPICS = {"topic_dead_letters": "dead-letters", "topic_models": "models",
                   "topic_ticks": "ticks"}
_EXACTLY_ONCE_REASON = (
    "exactly_once is not supported: faust-streaming 0.15.3 "
    "sends the agent's outputs outside its Kafka transactions, so subscribers would still see "
    "duplicates; use at_least_once and drop duplicates by change_id (docs/RELIABILITY.md)"
)
EXACTLY_ONCE_UNSUPPORTED = f"STREAMSEG_PROCESSING_GUARANTEE: {_EXACTLY_ONCE_REASON}"
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_HOST = re.compile(r"[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]")

T = TypeVar("T")
Check = Callable[[Any], "str | None"]


@dataclass(frozen=True, slots=True)
class Rule:
    """The constraint of one setting; :meth:`problem` says what is wrong with a value."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[str, ...] | None = None
    check: Check | None = None
    secret: bool = False

    def problem(self, value: Any) -> str | None:
        """``None`` if ``value`` is acceptable, else why not (without the variable name).

        >>> Rule(gt=0).problem(0.0), Rule(ge=0, le=65535).problem(99999)
        ('must be > 0, got 0.0', 'must be <= 65535, got 99999')
        >>> Rule(choices=("a", "b")).problem("c")
        "must be one of a, b, got 'c'"
        """
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number, got {value!r}"
        bounds = ((self.ge, ">="), (self.gt, ">"), (self.le, "<="), (self.lt, "<"))
        for bound, op in bounds:
            if bound is not None and not _holds(value, op, bound):
                return f"must be {op} {_num(bound)}, got {value!r}"
        if self.choices is not None and str(value).lower() not in self.choices:
            return f"must be one of {', '.join(self.choices)}, got {value!r}"
        if self.check is not None:
            return self.check(value)
        return None

    @property
    def declared(self) -> bool:
        """Whether anything beyond the type is declared."""
        bounds = (self.ge, self.gt, self.le, self.lt)
        return any(b is not None for b in bounds) or self.choices is not None or (
            self.check is not None)


def _holds(value: float, op: str, bound: float) -> bool:
    if op == ">=":
        return value >= bound
    if op == ">":
        return value > bound
    return value <= bound if op == "<=" else value < bound


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def setting(default: T, *, ge: float | None = None, gt: float | None = None,
            le: float | None = None, lt: float | None = None,
            choices: tuple[str, ...] | None = None, check: Check | None = None,
            secret: bool = False) -> T:
    """A settings field with its constraint (checked by :meth:`Settings.validate`)."""
    rule = Rule(ge=ge, gt=gt, le=le, lt=lt, choices=choices, check=check, secret=secret)
    made: T = field(default=default, metadata={"rule": rule})
    return made


def rule_of(f: dataclasses.Field[Any]) -> Rule:
    """The declared :class:`Rule` of a field (an empty rule if none is declared)."""
    rule = f.metadata.get("rule")
    return rule if isinstance(rule, Rule) else Rule()


def variable(name: str) -> str:
    """The environment variable of a field: ``partitions`` -> ``STREAMSEG_PARTITIONS``."""
    return PREFIX + name.upper()


def topic_name(value: str) -> str | None:
    """Kafka's rule for a topic name (also used for the app id, a prefix of topic names).

    >>> topic_name("segment-changes"), topic_name("bad topic")
    (None, "must be 1-249 of [A-Za-z0-9._-] and not '.' or '..', got 'bad topic'")
    """
    if _TOPIC.fullmatch(value) and value not in {".", ".."}:
        return None
    shown = repr(value) if len(value) <= 60 else f"{value[:40]!r}... ({len(value)} characters)"
    return f"must be 1-249 of [A-Za-z0-9._-] and not '.' or '..', got {shown}"


def optional(check: Check) -> Check:
    """``check``, but the empty string (meaning "derive a default") is accepted too.

    >>> optional(topic_name)(""), optional(topic_name)("a b") is not None
    (None, True)
    """

    def empty_or(value: str) -> str | None:
        return None if value == "" else check(value)

    empty_or.__name__ = f"optional_{getattr(check, '__name__', 'check')}"
    return empty_or


def broker_url(value: str) -> str | None:
    """``kafka://host:port`` (``;`` separates several; the scheme may be left out).

    >>> broker_url("kafka://a:9092;kafka://b:9093") is None
    True
    >>> broker_url("kafka://a:99999")
    "port must be 1-65535 in 'kafka://a:99999'"
    """
    parts = [p.strip() for p in value.split(";") if p.strip()]
    if not parts:
        return "must name at least one broker (kafka://host:port)"
    for part in parts:
        scheme, sep, rest = part.rpartition("://")
        if sep and scheme != "kafka":
            return f"scheme must be kafka://, got {part!r}"
        host, colon, port = rest.rpartition(":")
        if not colon or not _HOST.fullmatch(host):
            several = " (several brokers are separated by ';')" if "," in part else ""
            return f"want kafka://host:port, got {part!r}{several}"
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            return f"port must be 1-65535 in {part!r}"
    return None


def host_name(value: str) -> str | None:
    """A host name or address (no scheme, no port).

    >>> host_name("worker-1.example"), host_name("http://x")
    (None, "want a host name or address, got 'http://x'")
    """
    return None if _HOST.fullmatch(value) else f"want a host name or address, got {value!r}"


def _parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def rfc3339(value: str) -> str | None:
    """An RFC 3339 / ISO 8601 time (UTC when no offset is given).

    >>> rfc3339("2100-01-01T00:00:00Z"), rfc3339("soon")
    (None, "not an RFC 3339 time: 'soon'")
    """
    return None if _parse_time(value) is not None else f"not an RFC 3339 time: {value!r}"


def store_url(value: str) -> str | None:
    """A Faust table store: ``rocksdb://`` or ``memory://``, with no path (the files go to
    ``STREAMSEG_DATA_DIR``; a path in the URL crashed the worker, review 34).

    >>> store_url("memory://"), store_url("foo://")
    (None, "must be rocksdb:// or memory://, got 'foo://'")
    >>> store_url("rocksdb:///tmp/x")
    "must be rocksdb:// or memory:// with no path (set STREAMSEG_DATA_DIR), got 'rocksdb:///tmp/x'"
    """
    scheme, sep, rest = value.partition("://")
    if sep and scheme in STORES:
        if not rest:
            return None
        return ("must be rocksdb:// or memory:// with no path (set STREAMSEG_DATA_DIR), "
                f"got {value!r}")
    return f"must be rocksdb:// or memory://, got {value!r}"


def readable_file(value: str) -> str | None:
    """A file that exists (its content is checked by whoever reads it).

    >>> readable_file("/nonexistent/a.json")
    "no such file: '/nonexistent/a.json'"
    """
    return None if os.path.isfile(value) else f"no such file: {value!r}"


def not_empty(value: str) -> str | None:
    """A string that must not be blank."""
    return None if value.strip() else "must not be empty"


def dir_path(value: str) -> str | None:
    """A directory path Faust can take: not blank, no ``{`` or ``}`` (Faust formats its
    data directory with ``str.format``, so a brace stopped the worker with a traceback).

    >>> dir_path("/var/lib/streamseg"), dir_path(" "), dir_path("/data/{x}")
    (None, 'must not be empty', "must not contain { or }, got '/data/{x}'")
    """
    if "{" in value or "}" in value:
        return f"must not contain {{ or }}, got {value!r}"
    return not_empty(value)


def data_dir_problem(path: str) -> str | None:
    """Why a worker could not use ``path`` as its data directory (None: it can).

    A directory that is missing, parents included, is fine if the nearest one that
    exists is writable: the worker creates the rest at start, like ``mkdir -p``
    (:func:`make_data_dir`). Nothing is created here: writing is tried with a
    temporary directory, removed at once (a permission check alone misses
    read-only and virtual file systems, and root).

    >>> data_dir_problem("/proc/streamseg/data")  # doctest: +ELLIPSIS
    "cannot create '/proc/streamseg/data' in '/proc': ..."
    """
    target = Path(path)
    existing = target
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        where = "" if existing == target else f" (in {path!r})"
        return f"{str(existing)!r} is not a directory{where}"
    try:
        probe = tempfile.mkdtemp(prefix=".streamseg-probe-", dir=existing)
    except OSError as exc:
        verb, where = (("cannot write", "") if existing == target
                       else ("cannot create", f" in {str(existing)!r}"))
        return f"{verb} {path!r}{where}: {exc.strerror or exc}"
    os.rmdir(probe)
    return None


def check_data_dir(path: str) -> None:
    """Refuse a data directory the worker could not create or write (:func:`data_dir_problem`).

    Raises
    ------
    ConfigError
        ``STREAMSEG_DATA_DIR: ...`` in one line.
    """
    problem = data_dir_problem(path)
    if problem is not None:
        raise ConfigError(f"STREAMSEG_DATA_DIR: {problem}")


def make_data_dir(path: str) -> None:
    """Create the worker's data directory and its missing parents (``mkdir -p``).

    Raises
    ------
    ConfigError
        ``STREAMSEG_DATA_DIR: ...`` in one line if it cannot be created or written.
    """
    check_data_dir(path)
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"STREAMSEG_DATA_DIR: cannot create {path!r}: "
                          f"{exc.strerror or exc}") from None


def day_bands(value: str) -> str | None:
    """Four increasing, non-negative day counts (RFM recency bands).

    >>> day_bands("14,30,90,180"), day_bands("30,14,90,180")
    (None, 'want four increasing day counts, e.g. 14,30,90,180')
    """
    try:
        bands = [float(p) for p in value.split(",")]
    except ValueError:
        bands = []
    if len(bands) != 4 or bands[0] < 0 or any(a >= b for a, b in itertools.pairwise(bands)):
        return "want four increasing day counts, e.g. 14,30,90,180"
    return None


def currency(value: str) -> str | None:
    """An ISO 4217 code: three upper-case letters."""
    if re.fullmatch(r"[A-Z]{3}", value):
        return None
    return f"must be 3 upper-case letters, got {value!r}"


def guarantee(value: str) -> str | None:
    """Faust's processing guarantee: only ``at_least_once`` is supported.

    >>> guarantee("at_least_once"), guarantee("exactly_once")[:30]
    (None, 'exactly_once is not supported:')
    """
    if value == "at_least_once":
        return None
    if value == "exactly_once":
        return _EXACTLY_ONCE_REASON
    return f"expected at_least_once, got {value!r}"


def secret_key(value: str) -> str | None:
    """Empty (off) or a key of at least 8 characters with no surrounding blanks.

    >>> secret_key(""), secret_key("k")
    (None, 'must be empty (off) or at least 8 characters without surrounding blanks')
    """
    if value == "" or (len(value) >= 8 and value == value.strip()):
        return None
    return "must be empty (off) or at least 8 characters without surrounding blanks"


def _parse_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off"}:
        return False
    raise ValueError(raw)


# settings that cannot change a verdict (Settings.definition leaves them out)
NOT_DEFINITION = frozenset({
    "app_id", "partitions", "store", "store_cache_mb", "store_write_buffer_mb", "data_dir",
    "processing_guarantee", "confirm_outputs",
    "producer_linger_s", "metrics_port", "lag_interval_s", "stream_buffer_maxsize",
    "lean_delivery", "gate_hold_s", "log_level", "dead_letter_retention_days",
    "max_event_bytes", "max_attributes", "max_future_skew_s", "pseudonymise_key", "dedup_window",
    "kpi_repeat_days", "allowed_lateness_s", "tick_interval_s", "source_idle_s",
    "model_publish_interval_s", "audience_min_size", "event_time_min", "event_time_max",
    "audiences_file",  # its content counts, not its path
    "cluster_halflife",  # unused since the population refit
})
NOT_DEFINITION_PREFIXES = ("broker", "web_", "batch_", "topic_", "replication")

_PARSERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "int": (lambda raw: int(raw.strip()), "an integer"),
    "float": (lambda raw: float(raw.strip()), "a number"),
    "str": (str, "a string"),
    "bool": (_parse_bool, "true or false"),
}


@dataclass(frozen=True, slots=True)
class Settings:
    """Frozen configuration of a streamseg worker, replay or simulator run."""

    # transport
    broker: str = setting("kafka://127.0.0.1:9092", check=broker_url)
    # how long the worker (and produce/watch) retry an unreachable broker at start
    broker_wait_s: float = setting(60.0, ge=0, le=3600)
    app_id: str = setting("streamseg", check=topic_name)
    partitions: int = setting(4, ge=1, le=10_000)
    # replicas of every topic the worker creates (inputs, outputs, internal topics, Faust's
    # table changelogs); 1 suits a single development broker, production wants 3. At most
    # the cluster's broker count (the worker and ``check`` refuse more, in one line)
    replication_factor: int = setting(1, ge=1, le=32)
    store: str = setting("rocksdb://", check=store_url)
    # RocksDB memory per table partition (the worker opens one database per partition of
    # each of its two tables): the block cache, and each of up to 3 write buffers (memtables),
    # in MiB; Faust's defaults are 2048 and 64
    store_cache_mb: int = setting(2048, ge=1, le=1_048_576)
    store_write_buffer_mb: int = setting(64, ge=1, le=4096)
    # created with its parents at start; check and worker refuse one that cannot be written
    data_dir: str = setting(".streamseg-data", check=dir_path)
    # only at_least_once: see EXACTLY_ONCE_UNSUPPORTED
    processing_guarantee: str = setting("at_least_once", check=guarantee)
    # consumer group liveness: a killed worker's partitions move after the session timeout
    broker_session_timeout_s: float = setting(60.0, gt=0, le=3600)
    broker_heartbeat_interval_s: float = setting(3.0, gt=0, le=3600)
    broker_commit_interval_s: float = setting(1.0, gt=0, le=3600)
    # wait for the broker to acknowledge a change before saving the state that records it
    confirm_outputs: bool = True
    # producer batching: outputs the worker waits for are sent at once regardless
    # (closed record batches, batch.deliver); the rest (table changelog) lingers this long
    producer_linger_s: float = setting(0.005, ge=0, le=10)
    metrics_port: int = setting(9108, ge=0, le=65535)
    # how often the worker reads its consumer lag (records) from the broker
    lag_interval_s: float = setting(15.0, ge=1, le=3600)
    # lookup API (Faust web server): GET /customers/{id}, GET /segments; 0 turns it off
    web_port: int = setting(6066, ge=0, le=65535)
    # address the web server listens on
    web_bind: str = setting("0.0.0.0", check=not_empty)
    # host other workers use to reach this one (default: the hostname)
    web_host: str = setting("", check=optional(host_name))
    # --- batched edge (agents.py): events per batch (1 = the per-event path), the
    # longest wait to fill one, how a batch ends ("idle": as soon as the stream has
    # nothing more ready, streamseg.intake; "window": Faust's take_events, which
    # waits batch_wait_s unless the batch fills), and how long events ahead of the
    # committed offset are held after an assignment before the worker re-reads them
    batch_size: int = setting(500, ge=1, le=100_000)
    batch_wait_s: float = setting(0.05, gt=0, le=60)
    batch_flush: str = setting("idle", choices=("idle", "window"))
    # "idle": the batch ends after this long without a new event (0: one loop turn,
    # i.e. what arrived while the previous batch was processed)
    batch_idle_s: float = setting(0.0, ge=0, le=10)
    # Faust's stream_buffer_maxsize: input messages fetched ahead of the agent. Above
    # about 2.5 s of throughput a backlog no longer stalls (Faust pauses fetching at 80%
    # full, resumes at 40%, and the paused fetch waits out its 1 s timeout); costs up to
    # this many messages of memory during a backlog (docs/OPERATIONS.md, "The input buffer")
    stream_buffer_maxsize: int = setting(32_768, ge=16, le=1_000_000)
    # hand a message to the streams without Faust's four tasks when nothing waits
    # (adapters.lean_delivery); false: Faust's own hand-over, for comparison
    lean_delivery: bool = True
    # the rebalance gate's hold (streamseg.gate); consent first (streamseg.consentfirst)
    # re-reads a consent partition that delivers nothing for 3x this and stops waiting at 6x
    gate_hold_s: float = setting(3.0, gt=0, le=3600)
    log_level: str = setting("info", choices=LOG_LEVELS)
    topic_clickstream: str = setting("clickstream", check=topic_name)
    topic_purchases: str = setting("purchases", check=topic_name)
    topic_consent: str = setting("customer-consent", check=topic_name)
    topic_profiles: str = setting("customer-profiles", check=topic_name)
    topic_changes: str = setting("segment-changes", check=topic_name)
    topic_segments: str = setting("customer-segments", check=topic_name)
    # internal topics: empty means "<app_id>-dead-letters", "<app_id>-models",
    # "<app_id>-ticks", so two app ids on one cluster never share them
    topic_dead_letters: str = setting("", check=optional(topic_name))
    topic_models: str = setting("", check=optional(topic_name))
    topic_ticks: str = setting("", check=optional(topic_name))
    # retention of the dead-letter topic (days; 0: the broker default)
    dead_letter_retention_days: float = setting(7.0, ge=0)
    # ingestion
    max_event_bytes: int = setting(65_536, ge=64, le=100_000_000)
    # attribute names one customer's state keeps (values and removals): a profile record
    # that would add more is dead-lettered (too_many_attributes), so that no state outgrows
    # a Kafka message (a producer naming attributes x_viewed_<product> would, in days)
    max_attributes: int = setting(256, ge=1, le=2048)
    max_future_skew_s: float = setting(7 * DAY, gt=0)
    base_currency: str = setting("EUR", check=currency)
    fx_rates: str = setting("EUR=1,USD=0.92,GBP=1.17,CHF=1.05,SEK=0.087,PLN=0.23",
                            check=not_empty)
    pseudonymise_key: str = setting("", check=secret_key, secret=True)
    dedup_window: int = setting(16, ge=0, le=10_000)
    # features
    half_life_days: float = setting(30.0, gt=0)
    session_gap_minutes: float = setting(30.0, gt=0)
    # KPIs per segment: a purchase at most this many days after the previous one is a repeat
    kpi_repeat_days: float = setting(30.0, gt=0)
    # event-time clock
    allowed_lateness_s: float = setting(3_600.0, ge=0)
    tick_interval_s: float = setting(5.0, ge=0.1, le=3600)
    # an input partition that delivered no valid event for this long (monotonic seconds)
    # no longer holds the clock back (engine/clock.py SourceWatermark); 0: never holds it
    source_idle_s: float = setting(5.0, ge=0, le=3600)
    # buying days (frequency, predicted value, audience windows) start at this UTC hour:
    # several orders in one buying day are one occasion; e.g. 9 for US Eastern (4 am)
    buying_day_start_h: float = setting(0.0, ge=0, lt=24)
    # purchase-frequency tiers
    freq_high_max_days: float = setting(7.0, gt=0)
    freq_medium_max_days: float = setting(28.0, gt=0)
    # fewest buying days for ``high`` (2: a second buying day within the bound earns it;
    # 3: one gap between two orders is no pace yet, such a customer is ``medium``)
    freq_high_min_days: int = setting(2, ge=2)
    lapsed_days: float = setting(180.0, gt=0)
    # lifecycle
    new_days: float = setting(30.0, gt=0)
    at_risk_days: float = setting(90.0, gt=0)
    reactivated_days: float = setting(30.0, gt=0)
    # RFM (scores 1-5 from exact ranks among the current customers)
    rfm_min_samples: int = setting(20, ge=1)  # fewest buyers before RFM scores anyone
    # abstain until the purchases seen span this much history
    rfm_warmup_days: float = setting(90.0, ge=0)
    # "ranks", or "bands": R from fixed days-since-purchase bands
    rfm_recency: str = setting("ranks", choices=("ranks", "bands"))
    # R5 if <= 14 days ... R1 if > 180 (bands mode)
    rfm_recency_bands: str = setting("14,30,90,180", check=day_bands)
    # rank share a population-driven move must clear, and an optional dwell on top
    rfm_hold_margin: float = setting(0.01, ge=0, lt=0.2)
    rfm_hold_days: float = setting(0.0, ge=0)
    # behavioural clusters (k-means population refit over scaled features, clusterfit.py)
    cluster_k: int = setting(6, ge=1, le=1000)
    cluster_seed: int = setting(42, ge=0)
    # unused since the population refit (kept for old env files)
    cluster_halflife: float = setting(0.05, gt=0, le=1)
    cluster_warmup: int = setting(200, ge=1)
    cluster_refresh_every: int = setting(500, ge=1)
    cluster_min_share: float = setting(0.05, ge=0, lt=1)
    # no cluster model before it has been fitted on this many distinct customers
    cluster_min_customers: int = setting(50, ge=1)
    # customers in the trainer's refit sample (bottom-k by a hash of the customer id)
    cluster_sample_size: int = setting(4000, ge=1, le=10_000_000)
    # the cluster feature ``recency`` counts idle days beyond this grace only
    cluster_recency_grace_days: float = setting(30.0, ge=0)
    # an idle customer is moved (by the clock or a new model's re-score) only if they were
    # past the margin this long ago too: one back within it is never moved (0: at once)
    cluster_idle_dwell_days: float = setting(14.0, ge=0)
    # predicted value (BG/NBD population fit, tiers by expected purchases)
    value_horizon_days: float = setting(90.0, gt=0, le=3650)  # expected purchases in N days
    value_refit_days: float = setting(7.0, gt=0)  # refit cadence, in event time
    value_warmup_days: float = setting(90.0, ge=0)  # no fit before purchases span this
    value_min_customers: int = setting(100, ge=2)  # no fit on fewer buyers
    value_sample_size: int = setting(20_000, ge=2, le=10_000_000)  # fit sample (bottom-k)
    # a clock- or population-driven demotion waits until expected purchases fall to the
    # value at the tier's rank share (90%, 50%) lowered by this share
    value_hold_share: float = setting(0.05, ge=0, lt=0.5)
    # a customer's rank ignores idle days up to this many times their own mean gap between
    # purchase days (one-time buyers: the sample's median gap); 0: ranked on today's
    value_grace_gaps: float = setting(1.5, ge=0, le=100)
    # an idle customer is demoted (by the clock or a new model) only if the demotion was
    # due this many (whole, buying) days ago too (0: at once)
    value_idle_dwell_days: int = setting(14, ge=0, le=3650)
    # channel / device preference
    channel_dominance: float = setting(0.6, gt=0, le=1)
    # model snapshots (compacted models topic)
    model_publish_interval_s: float = setting(10.0, gt=0, le=86_400)
    # change detection and hysteresis v2 (engine). Moves earned by the customer's
    # own event are published at that event; each segmenter damps its own
    # demotions (see its ``hold``). ``hysteresis=False`` publishes raw verdicts.
    hysteresis: bool = True
    # optional global dwell on top of the segmenters' own damping
    min_dwell_s: float = setting(0.0, ge=0)
    # distance-based segmenters (clusters): keep the current cluster
    min_margin: float = setting(0.5, ge=0)
    # ``high`` kept while the interval <= high + this (at most; see freq_margin_purchases)
    freq_high_margin_days: float = setting(3.0, ge=0)
    # ``medium`` kept while the interval <= medium + this (at most)
    freq_medium_margin_days: float = setting(0.5, ge=0)
    # the band is also at most this many buying days' worth of the tier bound spread over the
    # customer's buying days (bound * this / days): narrow for long histories; 0: no such limit
    freq_margin_purchases: float = setting(2.0, ge=0)
    # at_risk / inactive_prospect after at_risk_days + this
    lifecycle_margin_days: float = setting(0.0, ge=0)
    # a channel segment kept while its share >= dominance - this
    channel_margin: float = setting(0.3, ge=0, le=1)
    flap_window_s: float = setting(14 * DAY, gt=0)
    # rule audiences (docs/AUDIENCES.md): a JSON file of named conditions, each published as
    # segmenter audience:<name>; empty = none. A bad file stops the worker with FILE:LINE.
    audiences_file: str = setting("", check=optional(readable_file))
    # an audience with fewer members is reported as over-segmentation (metric + log line)
    audience_min_size: int = setting(100, ge=0)
    # holdout for A/B tests: share of each audience's customers flagged holdout=true in its
    # changes (an audience's own "holdout" key overrides it), by a salted hash of the customer
    holdout_share: float = setting(0.0, ge=0, le=1)
    holdout_salt: str = setting("streamseg-holdout", check=not_empty)
    # accepted event time: static window (RFC 3339); ahead of the event clock by
    # at most ``max_future_skew_s`` once the clock has a value
    event_time_min: str = setting("1970-01-01T00:00:00Z", check=rfc3339)
    event_time_max: str = setting("2100-01-01T00:00:00Z", check=rfc3339)

    def __post_init__(self) -> None:
        """Name the internal topics after the app id unless they are set.

        >>> s = Settings(app_id="shop-eu")
        >>> s.topic_ticks, s.topic_models, s.topic_dead_letters, s.topic_changes
        ('shop-eu-ticks', 'shop-eu-models', 'shop-eu-dead-letters', 'segment-changes')
        >>> Settings(topic_ticks="my-ticks").topic_ticks
        'my-ticks'
        """
        for name, suffix in INTERNAL_TOPICS.items():
            if not getattr(self, name):
                object.__setattr__(self, name, f"{self.app_id}-{suffix}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build and validate settings from ``env`` (default: :data:`os.environ`).

        Raises
        ------
        ConfigError
            One line naming the variable: an unknown ``STREAMSEG_*`` variable (with
            the closest valid name), a value that does not parse, or one that
            breaks its constraint or a cross-field rule.
        """
        source = os.environ if env is None else env
        fields = {variable(f.name): f for f in dataclasses.fields(cls)}
        for var in sorted(source):
            if (not var.startswith(PREFIX) and var.upper().startswith(PREFIX)
                    and (var.upper() in fields or var.upper() in TOOL_VARIABLES)):
                # environment variables are case-sensitive: this one would be ignored
                raise ConfigError(f"{var}: not read (names are upper case: {var.upper()})")
            if var.startswith(PREFIX) and var not in fields and var not in TOOL_VARIABLES:
                close = difflib.get_close_matches(var, list(fields), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]}?)" if close else " (see streamseg check)"
                raise ConfigError(f"{var}: unknown setting{hint}")
        values: dict[str, Any] = {}
        for var, f in fields.items():
            if var not in source:
                continue
            raw = source[var]
            parser, expected = _PARSERS[str(f.type)]
            try:
                values[f.name] = parser(raw)
            except ValueError:
                raise ConfigError(f"{var}: expected {expected}, got {raw!r}") from None
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check every field's declared rule, then the cross-field rules.

        Raises
        ------
        ConfigError
            The first problem found, naming its variable.
        """
        for f in dataclasses.fields(self):
            problem = rule_of(f).problem(getattr(self, f.name))
            if problem is not None:
                raise ConfigError(f"{variable(f.name)}: {problem}")
        if not self.broker_heartbeat_interval_s < self.broker_session_timeout_s:
            raise ConfigError(
                "STREAMSEG_BROKER_HEARTBEAT_INTERVAL_S: must be below "
                "STREAMSEG_BROKER_SESSION_TIMEOUT_S"
            )
        if not self.freq_high_max_days < self.freq_medium_max_days < self.lapsed_days:
            raise ConfigError(
                "STREAMSEG_FREQ_MEDIUM_MAX_DAYS: STREAMSEG_FREQ_HIGH_MAX_DAYS < "
                "STREAMSEG_FREQ_MEDIUM_MAX_DAYS < STREAMSEG_LAPSED_DAYS must hold"
            )
        if not self.at_risk_days < self.lapsed_days:
            raise ConfigError("STREAMSEG_AT_RISK_DAYS: must be below STREAMSEG_LAPSED_DAYS")
        if not self.cluster_min_customers <= self.cluster_sample_size:
            raise ConfigError(
                "STREAMSEG_CLUSTER_MIN_CUSTOMERS: must not exceed STREAMSEG_CLUSTER_SAMPLE_SIZE")
        if not self.value_min_customers <= self.value_sample_size:
            raise ConfigError(
                "STREAMSEG_VALUE_MIN_CUSTOMERS: must not exceed STREAMSEG_VALUE_SAMPLE_SIZE")
        topics: dict[str, str] = {}
        for name, value in self.topics().items():
            if value in topics:
                raise ConfigError(
                    f"{variable(name)}: {value!r} is also {variable(topics[value])}")
            topics[value] = name
        lo, hi = self.event_time_window()
        if not lo < hi:
            raise ConfigError("STREAMSEG_EVENT_TIME_MIN: must be before STREAMSEG_EVENT_TIME_MAX")
        self.rfm_bands()
        self.fx_table()

    def rfm_bands(self) -> list[float]:
        """Parse :attr:`rfm_recency_bands`: four increasing day counts (R5..R2 upper bounds).

        >>> Settings(rfm_recency_bands="7, 30,60,120").rfm_bands()
        [7.0, 30.0, 60.0, 120.0]
        """
        try:
            bands = [float(p) for p in self.rfm_recency_bands.split(",")]
        except ValueError:
            bands = []
        if len(bands) != 4 or bands[0] < 0 or any(a >= b for a, b in itertools.pairwise(bands)):
            raise ConfigError(
                "STREAMSEG_RFM_RECENCY_BANDS: want four increasing day counts, e.g. 14,30,90,180"
            )
        return bands

    def event_time_window(self) -> tuple[float, float]:
        """The static accepted event-time window ``[min, max)`` in epoch seconds.

        >>> Settings().event_time_window()
        (0.0, 4102444800.0)
        >>> Settings(event_time_min="1997-01-01").event_time_window()[0]
        852076800.0
        """
        out: list[float] = []
        for var, text in (("EVENT_TIME_MIN", self.event_time_min),
                          ("EVENT_TIME_MAX", self.event_time_max)):
            moment = _parse_time(text)
            if moment is None:
                raise ConfigError(f"STREAMSEG_{var}: not an RFC 3339 time: {text!r}")
            out.append(moment.timestamp())
        return out[0], out[1]

    def definition(self) -> str:
        """A short hash of every setting that can change a segment verdict, and of the
        audiences file's content: states remember the one they were evaluated under, so a
        worker started with other thresholds re-evaluates each customer once
        (:meth:`streamseg.engine.processor.Engine.apply`, ``Punctuator.reschedule``).

        Transport, batching, ports, topics, clock and lateness settings are left out
        (:data:`NOT_DEFINITION`); a setting added later counts by default (a spurious
        re-evaluation publishes nothing: the verdicts are the same).

        >>> Settings().definition() == Settings(batch_size=7, web_port=1).definition()
        True
        >>> Settings().definition() == Settings(at_risk_days=60).definition()
        False
        """
        parts = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                 if f.name not in NOT_DEFINITION and not f.name.startswith(NOT_DEFINITION_PREFIXES)]
        if self.audiences_file:
            try:
                parts.append(Path(self.audiences_file).read_text(encoding="utf-8"))
            except OSError:  # checked at start; a file gone since counts as a change
                parts.append("(unreadable)")
        return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).hexdigest()

    def topics(self) -> dict[str, str]:
        """Field name -> topic name of every (non-empty) ``topic_*`` setting naming a topic.

        >>> Settings().topics()["topic_changes"]
        'segment-changes'
        """
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name.startswith("topic_") and getattr(self, f.name)
                and getattr(rule_of(f).check, "__name__", "").endswith("topic_name")}

    def effective(self) -> Iterator[tuple[str, str, bool]]:
        """(variable, value as text, differs from the default) of every setting.

        Secrets are masked.

        >>> rows = dict((v, (t, d)) for v, t, d in Settings(partitions=8).effective())
        >>> rows["STREAMSEG_PARTITIONS"], rows["STREAMSEG_APP_ID"]
        (('8', True), ('streamseg', False))
        """
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            text = str(value).lower() if isinstance(value, bool) else str(value)
            if rule_of(f).secret and value:
                text = "(set, hidden)"
            default = (f"{self.app_id}-{INTERNAL_TOPICS[f.name]}" if f.name in INTERNAL_TOPICS
                       else f.default)
            yield variable(f.name), text, value != default

    def fx_table(self) -> dict[str, float]:
        """Parse :attr:`fx_rates` (``CUR=rate,...``) into a mapping to the base currency.

        >>> Settings(fx_rates="EUR=1,USD=0.5").fx_table()
        {'EUR': 1.0, 'USD': 0.5}

        The base currency's own rate must be 1 (a rates table for another base would
        convert every amount wrongly):

        >>> try:  # the default table is EUR-based
        ...     Settings(base_currency="USD").fx_table()
        ... except ConfigError as exc:
        ...     print(str(exc)[:66])
        STREAMSEG_FX_RATES: USD=0.92, but the base currency's rate must be
        """
        table: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in self.fx_rates.split(","))):
            cur, sep, rate = part.partition("=")
            try:
                value: float | None = float(rate)
            except ValueError:
                value = None
            if not sep or len(cur) != 3 or value is None:
                raise ConfigError(f"STREAMSEG_FX_RATES: bad entry {part!r} (want CUR=rate)")
            if not 0 < value < math.inf:
                raise ConfigError(f"STREAMSEG_FX_RATES: bad entry {part!r} (a rate must be a "
                                  "positive number)")
            table[cur.upper()] = value
        if self.base_currency not in table:
            raise ConfigError("STREAMSEG_FX_RATES: must include STREAMSEG_BASE_CURRENCY")
        if table[self.base_currency] != 1.0:
            raise ConfigError(
                f"STREAMSEG_FX_RATES: {self.base_currency}={table[self.base_currency]:g}, but "
                f"the base currency's rate must be 1 (each rate is the value of one unit in "
                f"STREAMSEG_BASE_CURRENCY={self.base_currency}: set rates for that base)")
        return table

    @property
    def buying_day_start_s(self) -> float:
        """``buying_day_start_h`` in seconds after UTC midnight (buying days, value-model
        day numbers, audience windows).

        >>> Settings(buying_day_start_h=9).buying_day_start_s
        32400.0
        """
        return self.buying_day_start_h * 3600.0

    @property
    def bootstrap_servers(self) -> str:
        """The broker URL without the ``kafka://`` scheme, as aiokafka wants it.

        >>> Settings(broker="kafka://127.0.0.1:9092;kafka://127.0.0.1:9093").bootstrap_servers
        '127.0.0.1:9092,127.0.0.1:9093'
        """
        parts = [p.strip().removeprefix("kafka://") for p in self.broker.split(";")]
        return ",".join(p for p in parts if p)
