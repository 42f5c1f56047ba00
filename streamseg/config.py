"""Settings: every ``STREAMSEG_*`` environment variable, read once into a frozen object.

Each field of :class:`Settings` is read from ``STREAMSEG_<FIELD NAME IN UPPER CASE>``.

Examples
--------
>>> s = Settings.from_env({"STREAMSEG_PARTITIONS": "8", "STREAMSEG_LAPSED_DAYS": "120"})
>>> (s.partitions, s.lapsed_days, s.freq_high_max_days)
(8, 120.0, 7.0)
>>> Settings.from_env({"STREAMSEG_PARTITIONS": "eight"})
Traceback (most recent call last):
...
streamseg.errors.ConfigError: STREAMSEG_PARTITIONS: expected int, got 'eight'
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from streamseg.errors import ConfigError

DAY = 86_400.0
# settings field -> topic-name suffix of the app's internal topics (see Settings.__post_init__)
INTERNAL_TOPICS = {"topic_dead_letters": "dead-letters", "topic_models": "models",
                   "topic_ticks": "ticks"}


def _parse_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off"}:
        return False
    raise ValueError(raw)


_PARSERS: dict[str, Callable[[str], Any]] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": _parse_bool,
}


EXACTLY_ONCE_UNSUPPORTED = (
    "STREAMSEG_PROCESSING_GUARANTEE=exactly_once is not supported: faust-streaming 0.15.3 "
    "sends the agent's outputs outside its Kafka transactions, so subscribers would still see "
    "duplicates; use at_least_once and drop duplicates by change_id (docs/RELIABILITY.md)"
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Frozen configuration of a streamseg worker, replay or simulator run."""

    # transport
    broker: str = "kafka://127.0.0.1:9092"
    app_id: str = "streamseg"
    partitions: int = 4
    store: str = "rocksdb://"
    data_dir: str = ".streamseg-data"
    processing_guarantee: str = "at_least_once"  # the only value accepted (see validate)
    # consumer group liveness: a killed worker's partitions move after the session timeout
    broker_session_timeout_s: float = 60.0
    broker_heartbeat_interval_s: float = 3.0
    broker_commit_interval_s: float = 1.0
    # wait for the broker to acknowledge a change before saving the state that records it
    confirm_outputs: bool = True
    # producer batching: outputs the worker waits for are sent at once regardless
    # (Ingest.send_now); the rest (table changelog) is batched for up to this long
    producer_linger_s: float = 0.005
    metrics_port: int = 9108
    # lookup API (Faust web server): GET /customers/{id}, GET /segments; 0 turns it off
    web_port: int = 6066
    web_bind: str = "0.0.0.0"  # address the web server listens on
    web_host: str = ""  # host other workers use to reach this one (default: the hostname)
    log_level: str = "info"
    topic_clickstream: str = "clickstream"
    topic_purchases: str = "purchases"
    topic_consent: str = "customer-consent"
    topic_changes: str = "segment-changes"
    topic_segments: str = "customer-segments"
    # internal topics: empty means "<app_id>-dead-letters", "<app_id>-models",
    # "<app_id>-ticks", so two app ids on one cluster never share them
    topic_dead_letters: str = ""
    topic_models: str = ""
    topic_ticks: str = ""
    # retention of the dead-letter topic (days; 0: the broker default)
    dead_letter_retention_days: float = 7.0
    # ingestion
    max_event_bytes: int = 65_536
    max_future_skew_s: float = 7 * DAY
    base_currency: str = "EUR"
    fx_rates: str = "EUR=1,USD=0.92,GBP=1.17,CHF=1.05,SEK=0.087,PLN=0.23"
    pseudonymise_key: str = ""
    dedup_window: int = 16
    # features
    half_life_days: float = 30.0
    session_gap_minutes: float = 30.0
    # event-time clock
    allowed_lateness_s: float = 3_600.0
    tick_interval_s: float = 5.0
    # purchase-frequency tiers
    freq_high_max_days: float = 7.0
    freq_medium_max_days: float = 28.0
    lapsed_days: float = 180.0
    # lifecycle
    new_days: float = 30.0
    at_risk_days: float = 90.0
    reactivated_days: float = 30.0
    # RFM (scores 1-5 from exact ranks among the current customers)
    rfm_min_samples: int = 20  # fewest buyers before RFM scores anyone
    rfm_warmup_days: float = 90.0  # abstain until the purchases seen span this much history
    rfm_recency: str = "ranks"  # or "bands": R from fixed days-since-purchase bands
    rfm_recency_bands: str = "14,30,90,180"  # R5 if <= 14 days ... R1 if > 180 (bands mode)
    rfm_hold_margin: float = 0.01  # rank share a population-driven move must clear
    rfm_hold_days: float = 0.0  # a dwell on top of the margin (0: none)
    # behavioural clusters (River KMeans over scaled features)
    cluster_k: int = 6
    cluster_seed: int = 42
    cluster_halflife: float = 0.05  # unused since the population refit (kept for old env files)
    cluster_warmup: int = 200
    cluster_refresh_every: int = 500
    cluster_min_share: float = 0.05
    # no cluster model before it has been fitted on this many distinct customers
    cluster_min_customers: int = 50
    # customers in the trainer's refit sample (bottom-k by a hash of the customer id)
    cluster_sample_size: int = 4000
    # the cluster feature ``recency`` counts idle days beyond this grace only
    cluster_recency_grace_days: float = 30.0
    # channel / device preference
    channel_dominance: float = 0.6
    # model snapshots (compacted models topic)
    model_publish_interval_s: float = 10.0
    # change detection and hysteresis v2 (engine). Moves earned by the customer's
    # own event are published at that event; each segmenter damps its own
    # demotions (see its ``hold``). ``hysteresis=False`` publishes raw verdicts.
    hysteresis: bool = True
    min_dwell_s: float = 0.0  # optional global dwell on top of the segmenters' own damping
    min_margin: float = 0.5  # distance-based segmenters (clusters): keep the current cluster
    freq_high_margin_days: float = 42.0  # ``high`` kept while the interval <= high + this
    freq_medium_margin_days: float = 84.0  # ``medium`` kept while the interval <= medium + this
    lifecycle_margin_days: float = 0.0  # at_risk / inactive_prospect after at_risk_days + this
    channel_margin: float = 0.3  # a channel segment kept while its share >= dominance - this
    flap_window_s: float = 14 * DAY
    # accepted event time: static window (RFC 3339); ahead of the event clock by
    # at most ``max_future_skew_s`` once the clock has a value
    event_time_min: str = "1970-01-01T00:00:00Z"
    event_time_max: str = "2100-01-01T00:00:00Z"
    extra: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

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
        """Build settings from ``env`` (default: :data:`os.environ`).

        Raises
        ------
        ConfigError
            If a variable cannot be parsed as its field's type, naming the variable.
        """
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        known = set()
        for f in dataclasses.fields(cls):
            if f.name == "extra":
                continue
            var = "STREAMSEG_" + f.name.upper()
            known.add(var)
            if var not in source:
                continue
            raw = source[var]
            parser = _PARSERS[str(f.type)]
            try:
                values[f.name] = parser(raw)
            except ValueError:
                raise ConfigError(f"{var}: expected {f.type}, got {raw!r}") from None
        extra = {k: v for k, v in source.items() if k.startswith("STREAMSEG_") and k not in known}
        settings = cls(**values, extra=extra)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check cross-field rules; raise :class:`ConfigError` naming the variable."""
        if self.processing_guarantee == "exactly_once":
            raise ConfigError(EXACTLY_ONCE_UNSUPPORTED)
        if self.processing_guarantee != "at_least_once":
            raise ConfigError(
                "STREAMSEG_PROCESSING_GUARANTEE: expected at_least_once, "
                f"got {self.processing_guarantee!r}"
            )
        if not 0 <= self.web_port < 65536:
            raise ConfigError("STREAMSEG_WEB_PORT: must be in 0..65535 (0: off)")
        if self.dead_letter_retention_days < 0:
            raise ConfigError("STREAMSEG_DEAD_LETTER_RETENTION_DAYS: must be >= 0")
        if self.partitions < 1:
            raise ConfigError("STREAMSEG_PARTITIONS: must be >= 1")
        if not 0 < self.broker_heartbeat_interval_s < self.broker_session_timeout_s:
            raise ConfigError(
                "0 < STREAMSEG_BROKER_HEARTBEAT_INTERVAL_S < STREAMSEG_BROKER_SESSION_TIMEOUT_S "
                "must hold"
            )
        if not 0 < self.freq_high_max_days < self.freq_medium_max_days < self.lapsed_days:
            raise ConfigError(
                "STREAMSEG_FREQ_HIGH_MAX_DAYS < STREAMSEG_FREQ_MEDIUM_MAX_DAYS < "
                "STREAMSEG_LAPSED_DAYS must hold"
            )
        if not 0 < self.at_risk_days < self.lapsed_days:
            raise ConfigError("STREAMSEG_AT_RISK_DAYS must be below STREAMSEG_LAPSED_DAYS")
        if self.half_life_days <= 0:
            raise ConfigError("STREAMSEG_HALF_LIFE_DAYS: must be > 0")
        if self.cluster_k < 1:
            raise ConfigError("STREAMSEG_CLUSTER_K: must be >= 1")
        if self.cluster_warmup < 1 or self.cluster_refresh_every < 1:
            raise ConfigError(
                "STREAMSEG_CLUSTER_WARMUP and STREAMSEG_CLUSTER_REFRESH_EVERY: must be >= 1"
            )
        if self.model_publish_interval_s <= 0:
            raise ConfigError("STREAMSEG_MODEL_PUBLISH_INTERVAL_S: must be > 0")
        if self.min_dwell_s < 0 or self.min_margin < 0:
            raise ConfigError("STREAMSEG_MIN_DWELL_S and STREAMSEG_MIN_MARGIN: must be >= 0")
        if min(self.freq_high_margin_days, self.freq_medium_margin_days,
               self.lifecycle_margin_days, self.channel_margin) < 0:
            raise ConfigError(
                "STREAMSEG_FREQ_HIGH_MARGIN_DAYS, STREAMSEG_FREQ_MEDIUM_MARGIN_DAYS, "
                "STREAMSEG_LIFECYCLE_MARGIN_DAYS and STREAMSEG_CHANNEL_MARGIN: must be >= 0"
            )
        lo, hi = self.event_time_window()
        if not lo < hi:
            raise ConfigError("STREAMSEG_EVENT_TIME_MIN must be before STREAMSEG_EVENT_TIME_MAX")
        if not 0.0 <= self.cluster_min_share < 1.0:
            raise ConfigError("STREAMSEG_CLUSTER_MIN_SHARE: must be in [0, 1)")
        if self.rfm_recency not in {"ranks", "bands"}:
            raise ConfigError(
                f"STREAMSEG_RFM_RECENCY: expected ranks or bands, got {self.rfm_recency!r}"
            )
        self.rfm_bands()
        if not 0.0 <= self.rfm_hold_margin < 0.2 or min(self.rfm_warmup_days,
                                                          self.rfm_hold_days) < 0:
            raise ConfigError(
                "STREAMSEG_RFM_HOLD_MARGIN: must be in [0, 0.2); STREAMSEG_RFM_WARMUP_DAYS and "
                "STREAMSEG_RFM_HOLD_DAYS: >= 0"
            )
        if not 1 <= self.cluster_min_customers <= self.cluster_sample_size:
            raise ConfigError(
                "1 <= STREAMSEG_CLUSTER_MIN_CUSTOMERS <= STREAMSEG_CLUSTER_SAMPLE_SIZE must hold"
            )
        if not 0.0 < self.channel_dominance <= 1.0:
            raise ConfigError("STREAMSEG_CHANNEL_DOMINANCE: must be in (0, 1]")
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
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise ConfigError(f"STREAMSEG_{var}: not an RFC 3339 time: {text!r}") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            out.append(moment.timestamp())
        return out[0], out[1]

    def fx_table(self) -> dict[str, float]:
        """Parse :attr:`fx_rates` (``CUR=rate,...``) into a mapping to the base currency.

        >>> Settings(fx_rates="EUR=1,USD=0.5").fx_table()
        {'EUR': 1.0, 'USD': 0.5}
        """
        table: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in self.fx_rates.split(","))):
            cur, sep, rate = part.partition("=")
            try:
                value = float(rate)
            except ValueError:
                value = -1.0
            if not sep or len(cur) != 3 or value <= 0:
                raise ConfigError(f"STREAMSEG_FX_RATES: bad entry {part!r} (want CUR=rate)")
            table[cur.upper()] = value
        if self.base_currency not in table:
            raise ConfigError("STREAMSEG_FX_RATES: must include STREAMSEG_BASE_CURRENCY")
        return table

    @property
    def bootstrap_servers(self) -> str:
        """The broker URL without the ``kafka://`` scheme, as aiokafka wants it.

        >>> Settings(broker="kafka://127.0.0.1:9092;kafka://127.0.0.1:9093").bootstrap_servers
        '127.0.0.1:9092,127.0.0.1:9093'
        """
        parts = [p.strip().removeprefix("kafka://") for p in self.broker.split(";")]
        return ",".join(p for p in parts if p)
