"""The Faust app: topics and tables. The only module that creates Faust objects.

Everything here is transport: names, partitions, serialisers. The engine
never sees a Faust object; the agents (``streamseg.agents``) translate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streamseg.config import Settings
from streamseg.errors import ConfigError
from streamseg.leanmonitor import LeanMonitor

log = logging.getLogger(__name__)

RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


@dataclass(frozen=True, slots=True)
class Streamseg:
    """The Faust app with its topics and table, built from :class:`Settings`."""

    settings: Settings
    app: faust.App
    inputs: faust.TopicT
    changes: faust.TopicT
    segments: faust.TopicT
    dead_letters: faust.TopicT
    ticks: faust.TopicT
    state: faust.types.TableT[bytes, bytes]
    models: faust.TopicT  # compacted model snapshots (key = segmenter name)
    # per partition, the highest event time seen there (key ``clock:<partition>``)
    clocks: faust.types.TableT[bytes, bytes]


def input_topics(settings: Settings) -> dict[str, str]:
    """Topic name -> stream kind for everything the ingest agent reads."""
    return {
        settings.topic_clickstream: "click",
        settings.topic_purchases: "purchase",
        settings.topic_consent: "consent",
        settings.topic_profiles: "profile",
        settings.topic_ticks: "tick",
    }


def web_options(settings: Settings) -> dict[str, Any]:
    """Faust web-server settings for the lookup API (``streamseg.web``).

    ``web_host`` is what other workers use to reach this one when they route a
    lookup here (Faust's ``canonical_url``); it defaults to the hostname.
    Faust's built-in views (``/table``, ``/router``, ``/stats``, ``/graph``) are off.

    >>> web_options(Settings(web_port=0))
    {'web_enabled': False}
    >>> web_options(Settings(web_port=8080, web_host="10.0.0.5"))["canonical_url"]
    'http://10.0.0.5:8080'
    """
    if settings.web_port == 0:
        return {"web_enabled": False}
    options: dict[str, Any] = {
        "web_enabled": True,
        "web_port": settings.web_port,
        "web_bind": settings.web_bind,
        # Faust's own /table views would dump raw profiles (withdrawn customers
        # too); /router, /stats and /graph are internals: the API is ours only
        "web_tables_enabled": False,
        "web_router_enabled": False,
        "web_stats_enabled": False,
        "web_graph_enabled": False,
        "web_metrics_enabled": False,  # /performance: Faust's monitor, lean here
    }
    if settings.web_host:
        options["web_host"] = settings.web_host
        options["canonical_url"] = f"http://{settings.web_host}:{settings.web_port}"
    return options


class App(faust.App):
    """:class:`faust.App` that looks its event class up once.

    Faust calls :meth:`create_event` for every input message, and its version
    reads ``conf.Event`` from the settings registry each time (a descriptor
    lookup: 3% of the worker's main thread in a profile of ``streamseg bench
    --peers``, 2026-11-27). The event class is a setting fixed at construction.
    """

    _event_class: Any = None

    def create_event(self, key: Any, value: Any, headers: Any, message: Any) -> Any:
        """Create a :class:`faust.Event` (the class of ``conf.Event``)."""
        event_class = self._event_class
        if event_class is None:
            event_class = self._event_class = self.conf.Event
        return event_class(self, key, value, headers, message)


def build_app(settings: Settings) -> Streamseg:
    """Create the Faust app, topics and the changelog-backed customer-state table."""
    app = App(
        settings.app_id,
        broker=settings.broker,
        store=settings.store,
        datadir=settings.data_dir,
        processing_guarantee=settings.processing_guarantee,
        topic_partitions=settings.partitions,
        # the changelogs and any topic Faust declares itself (its leader topic)
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        **web_options(settings),
        producer_acks=-1,
        producer_linger=settings.producer_linger_s,
        stream_wait_empty=False,
        stream_buffer_maxsize=settings.stream_buffer_maxsize,
        broker_commit_every=1000,
        broker_commit_interval=settings.broker_commit_interval_s,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        monitor=LeanMonitor(),  # per-message statistics only fed /stats, /performance (off)
    )
    return Streamseg(
        settings=settings,
        app=app,
        inputs=app.topic(*input_topics(settings), **RAW),
        changes=app.topic(settings.topic_changes, **RAW),
        segments=app.topic(settings.topic_segments, **RAW),
        dead_letters=app.topic(settings.topic_dead_letters, **RAW),
        ticks=app.topic(settings.topic_ticks, **RAW),
        models=app.topic(settings.topic_models, partitions=1, **RAW),
        state=app.Table(
            TABLES[0],
            partitions=settings.partitions,
            key_type=bytes,
            value_type=bytes,
            options=store_options(settings),
        ),
        clocks=app.Table(
            TABLES[1],
            partitions=settings.partitions,
            key_type=bytes,
            value_type=bytes,
            options=store_options(settings),
        ),
    )


def store_options(settings: Settings) -> dict[str, int] | None:
    """Faust's RocksDB store options (public ``Table(options=...)``) from the settings; None
    for the memory store.

    >>> store_options(Settings(store_cache_mb=256, store_write_buffer_mb=16))
    {'block_cache_size': 268435456, 'write_buffer_size': 16777216}
    >>> store_options(Settings(store="memory://")) is None
    True
    """
    if not settings.store.startswith("rocksdb:"):
        return None
    return {"block_cache_size": settings.store_cache_mb * 2**20,
            "write_buffer_size": settings.store_write_buffer_mb * 2**20}


TABLES = ("customer-state", "partition-clock")


def changelog(settings: Settings, table: str) -> str:
    """Faust's changelog topic of ``table`` (``<app id>-<table>-changelog``).

    >>> changelog(Settings(app_id="s"), "partition-clock")
    's-partition-clock-changelog'
    """
    return f"{settings.app_id}-{table}-changelog"


def topic_specs(settings: Settings) -> list[NewTopic]:
    """Every topic streamseg reads or writes, and its tables' changelogs, each with
    ``STREAMSEG_REPLICATION_FACTOR`` replicas.

    >>> {spec.replication_factor for spec in topic_specs(Settings(replication_factor=3))}
    {3}
    """
    compacted = {"cleanup.policy": "compact"}
    letters: dict[str, str] = {}
    if settings.dead_letter_retention_days > 0:
        letters["retention.ms"] = str(int(settings.dead_letter_retention_days * 86_400_000))
    p, r = settings.partitions, settings.replication_factor
    return [
        NewTopic(settings.topic_clickstream, p, r),
        NewTopic(settings.topic_purchases, p, r),
        NewTopic(settings.topic_consent, p, r),
        NewTopic(settings.topic_profiles, p, r),
        NewTopic(settings.topic_ticks, p, r),
        NewTopic(settings.topic_changes, p, r),
        NewTopic(settings.topic_segments, p, r, topic_configs=compacted),
        NewTopic(settings.topic_dead_letters, p, r, topic_configs=letters),
        NewTopic(settings.topic_models, 1, r, topic_configs=compacted),
        # the tables' changelogs, created before the app starts: Faust declares them
        # itself too, but an agent that writes a table before the new topic is in
        # its metadata crashes (PartitionsMismatch, "0 partitions")
        *(NewTopic(changelog(settings, table), p, r, topic_configs=compacted)
          for table in TABLES),
    ]


def co_partitioned(settings: Settings) -> list[str]:
    """The topics that must have ``STREAMSEG_PARTITIONS`` partitions: the inputs (a
    customer's events, ticks and state share a partition number) and the tables'
    changelogs (Faust stops an agent whose changelog differs: PartitionsMismatch).

    >>> co_partitioned(Settings(app_id="s"))[-2:]
    ['s-customer-state-changelog', 's-partition-clock-changelog']
    """
    return [settings.topic_clickstream, settings.topic_purchases, settings.topic_consent,
            settings.topic_profiles, settings.topic_ticks,
            *(changelog(settings, table) for table in TABLES)]


def mismatches(settings: Settings, counts: dict[str, int]) -> list[str]:
    """``topic (N partitions)`` for each existing co-partitioned topic whose partition
    count is not ``STREAMSEG_PARTITIONS``.

    >>> mismatches(Settings(app_id="s", partitions=1), {"s-customer-state-changelog": 4})
    ['s-customer-state-changelog (4 partitions)']
    """
    return [f"{name} ({counts[name]} partitions)" for name in co_partitioned(settings)
            if name in counts and counts[name] != settings.partitions]


async def partition_counts(settings: Settings) -> dict[str, int]:
    """Partition count of each existing co-partitioned topic (admin metadata)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        return await _counts(admin, settings, set(await admin.list_topics()))
    finally:
        await admin.close()


async def _counts(admin: AIOKafkaAdminClient, settings: Settings,
                  existing: set[str]) -> dict[str, int]:
    names = [n for n in co_partitioned(settings) if n in existing]
    described = await admin.describe_topics(names) if names else []
    return {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}


def check_partitions(settings: Settings, counts: dict[str, int]) -> None:
    """Raise :class:`ConfigError` (one line) when a co-partitioned topic has another count."""
    bad = mismatches(settings, counts)
    if bad:
        raise ConfigError(
            f"STREAMSEG_PARTITIONS={settings.partitions}, but {', '.join(bad)}: inputs, ticks "
            "and table changelogs must have the same partition count (set STREAMSEG_PARTITIONS "
            "to it, or use a new STREAMSEG_APP_ID / topics)")


def check_replication(settings: Settings, brokers: int) -> None:
    """Raise :class:`ConfigError` (one line) when ``STREAMSEG_REPLICATION_FACTOR`` exceeds
    the cluster's broker count (Kafka cannot place more replicas than brokers).

    >>> check_replication(Settings(replication_factor=3), 3)
    >>> try:
    ...     check_replication(Settings(replication_factor=2), 1)
    ... except ConfigError as exc:
    ...     print(str(exc)[:79])
    STREAMSEG_REPLICATION_FACTOR=2, but the cluster at 127.0.0.1:9092 has 1 broker:
    """
    if settings.replication_factor > brokers:
        raise ConfigError(
            f"STREAMSEG_REPLICATION_FACTOR={settings.replication_factor}, but the cluster at "
            f"{settings.bootstrap_servers} has {brokers} broker{'s' if brokers != 1 else ''}: "
            f"a topic cannot have more replicas than brokers (set STREAMSEG_REPLICATION_FACTOR "
            f"to at most {brokers}, or add brokers)")


async def _brokers(admin: AIOKafkaAdminClient) -> int:
    cluster = await admin.describe_cluster()
    return len(cluster.get("brokers") or ())


async def broker_count(settings: Settings) -> int:
    """How many brokers the cluster reports (admin metadata)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        return await _brokers(admin)
    finally:
        await admin.close()


async def ensure_topics(settings: Settings) -> list[str]:
    """Create missing topics (co-partitioned inputs, compacted outputs); return those created.

    First the replication factor is checked against the cluster's brokers
    (:func:`check_replication`) and the co-partitioned topics that exist against
    ``STREAMSEG_PARTITIONS`` (:func:`check_partitions`): either raises before
    anything is created, so a refused start leaves the topics as they were.
    Topics that exist keep their partitions and replicas.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    created: list[str] = []
    try:
        check_replication(settings, await _brokers(admin))
        existing = set(await admin.list_topics())
        check_partitions(settings, await _counts(admin, settings, existing))
        for spec in topic_specs(settings):
            if spec.name in existing:
                continue
            try:
                await admin.create_topics([spec])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
    if created:
        log.info("created topics: %s", ", ".join(created))
    return created
