"""``STREAMSEG_PSEUDONYMISE_KEY`` turned on for an app id that already has raw-id states.

Regression (review12 finding 5, scenario D): a worker restarted with the key set on
existing state kept the raw-id states and records; new events of a customer went
to its alias (a second, empty profile), and an erasure request erased the alias
only: the raw profile stayed in the table and the compacted topics. Nothing said
so. The worker now counts, whenever it re-reads its table after an assignment,
the states whose key is not an alias (``streamseg_table_raw_ids``) and logs one
ERROR naming ``STREAMSEG_PSEUDONYMISE_KEY`` (the README says the key must be set
from an app id's first run).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from unit.ingest_harness import Harness

from streamseg.config import DAY, Settings
from streamseg.engine.validate import pseudonymise

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEY = "review12-secret-key"


def click(eid: str, cid: str, days: float) -> dict[str, Any]:
    ts = (T0 + timedelta(days=days)).isoformat().replace("+00:00", "Z")
    return {"event_id": eid, "customer_id": cid, "ts": ts, "type": "page_view",
            "channel": "web", "device": "desktop"}


def fed(settings: Settings, ids: list[str], harness: Harness | None = None) -> Harness:
    """A worker (``settings``) over ``harness``'s table if given; one click per id."""
    h = Harness(settings)
    if harness is not None:  # the same changelog-backed tables, another start
        h.app.state, h.app.clocks = harness.app.state, harness.app.clocks
    for i, cid in enumerate(ids):
        h.send_json("click", click(f"e-{cid}-{i}", cid, 1 + i))
    return h


def raw_ids(h: Harness) -> float | None:
    return h.registry.get_sample_value("streamseg_table_raw_ids")


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_key_turned_on_over_raw_states_is_an_error_and_a_gauge(
        caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(max_future_skew_s=365 * DAY)
    before = fed(settings, ["c000297", "c000001"])
    assert set(before.app.state) == {b"c000297", b"c000001"}
    caplog.set_level(logging.INFO)
    after = fed(Settings(max_future_skew_s=365 * DAY, pseudonymise_key=KEY), ["c000297"], before)
    after.ingest.due_ticks()  # the timer: the schedules are rebuilt from the table
    assert pseudonymise(KEY, "c000297").encode() in after.app.state  # a second profile
    assert raw_ids(after) == 2.0
    logged = errors(caplog)
    assert len(logged) == 1 and logged[0].startswith("STREAMSEG_PSEUDONYMISE_KEY is set, but 2 ")
    # the next assignment re-reads the table: the gauge again, no second log line
    after.ingest.punctuator.assign({0, 1, 2, 3})
    after.ingest.due_ticks()
    assert raw_ids(after) == 2.0 and len(errors(caplog)) == 1
    for h in (before, after):
        h.close()


def test_no_error_with_aliases_only_or_without_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    pseudo = fed(Settings(max_future_skew_s=365 * DAY, pseudonymise_key=KEY), ["c1", "c2"])
    restarted = fed(Settings(max_future_skew_s=365 * DAY, pseudonymise_key=KEY), [], pseudo)
    restarted.ingest.due_ticks()
    assert raw_ids(restarted) == 0.0
    plain = fed(Settings(max_future_skew_s=365 * DAY), ["c1"])
    plain.ingest.due_ticks()
    assert raw_ids(plain) == 0.0
    assert errors(caplog) == []
    for h in (pseudo, restarted, plain):
        h.close()
