"""``STREAMSEG_REPLICATION_FACTOR``: the replicas of every topic the worker creates.

Regression (review12 finding 7): every topic the worker created, and Faust's table
changelogs, had replication factor 1, hard-coded (``ensure_topics(settings,
replication=1)``, ``topic_specs``), with no setting: in production one broker's
disk held the only copy of the customer states' changelog. The setting feeds
streamseg's own topic creation and Faust's ``topic_replication_factor`` (the
changelogs and Faust's leader topic). That a factor above the broker count stops
the worker in one line is tested on the real broker
(``tests/integration/test_replication_factor.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streamseg.app import build_app, check_replication, topic_specs
from streamseg.config import Settings
from streamseg.errors import ConfigError


def test_default_is_one_for_a_single_development_broker() -> None:
    settings = Settings.from_env({})
    assert settings.replication_factor == 1
    assert {spec.replication_factor for spec in topic_specs(settings)} == {1}


def test_every_created_topic_and_faust_changelogs_get_the_factor(tmp_path: object) -> None:
    settings = Settings.from_env({"STREAMSEG_REPLICATION_FACTOR": "3",
                                  "STREAMSEG_STORE": "memory://", "STREAMSEG_WEB_PORT": "0"})
    specs = topic_specs(settings)
    assert {spec.replication_factor for spec in specs} == {3}
    assert {"streamseg-customer-state-changelog",
            "streamseg-partition-clock-changelog"} <= {spec.name for spec in specs}
    ss = build_app(settings)
    assert ss.app.conf.topic_replication_factor == 3  # Faust's changelogs and leader topic


def test_more_replicas_than_brokers_is_one_line_naming_the_variable() -> None:
    check_replication(Settings(replication_factor=3), 3)
    with pytest.raises(ConfigError) as err:
        check_replication(Settings(replication_factor=3, broker="kafka://k1:9092"), 2)
    assert str(err.value).startswith(
        "STREAMSEG_REPLICATION_FACTOR=3, but the cluster at k1:9092 has 2 brokers")
    assert "\n" not in str(err.value)


def test_the_rocksdb_memory_settings_reach_faust_s_store(tmp_path: Path) -> None:
    """``STREAMSEG_STORE_CACHE_MB`` / ``_WRITE_BUFFER_MB`` bound RocksDB's memory per table
    partition (Faust's defaults: a 2 GiB block cache and 64 MiB write buffers each)."""
    settings = Settings.from_env({"STREAMSEG_STORE_CACHE_MB": "32",
                                  "STREAMSEG_STORE_WRITE_BUFFER_MB": "8",
                                  "STREAMSEG_DATA_DIR": str(tmp_path), "STREAMSEG_WEB_PORT": "0"})
    ss = build_app(settings)
    for table in (ss.state, ss.clocks):
        opts = table.data.rocksdb_options  # type: ignore[attr-defined]
        assert (opts.block_cache_size, opts.write_buffer_size) == (32 * 2**20, 8 * 2**20)
    default = build_app(Settings.from_env({"STREAMSEG_DATA_DIR": str(tmp_path / "d"),
                                           "STREAMSEG_WEB_PORT": "0"}))
    opts = default.state.data.rocksdb_options  # type: ignore[attr-defined]
    assert (opts.block_cache_size, opts.write_buffer_size) == (2048 * 2**20, 64 * 2**20)
