"""``GET /customers/{id}`` reads the customer's own state, never a consent copy's marker.

Regression (review10, ``regrant_lookup.sh``): after a withdrawal and a grant, the
lookup answered ``200 {"suppressed": false, "segments": {}, "features":
{"purchases_total": 0, ...}}``. The consent copy on another partition had turned
its marker into a fresh, empty profile (flagged ``_copy``), and the lookup read
the table outside an event, where Faust's RocksDB store answers from the first
partition database that holds the key: the copy's. ``streamseg.lookupstate.stored`` reads
each owned partition on its own and skips copy markers.

A real Faust table with its RocksDB store (no broker): the values are put into
the partition databases as the agent writes them (``streamseg.batch.write``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust

from streamseg import codec
from streamseg.config import DAY, Settings
from streamseg.engine.events import Event
from streamseg.engine.features import CustomerState
from streamseg.engine.lookup import customer_answer
from streamseg.engine.processor import Engine
from streamseg.lookupstate import stored
from streamseg.punctuator import COPY, PARTITION


def value(state: CustomerState | None, partition: int, copy: bool = False) -> bytes:
    assert state is not None
    data: dict[str, Any] = state.to_dict()
    data[PARTITION] = partition
    if copy:
        data[COPY] = True
    return codec.dumps(data)


def table(tmp_path: Path) -> Any:
    app = faust.App("lookup-store", store="rocksdb://", tabledir=str(tmp_path),
                    broker="kafka://127.0.0.1:1")
    return app.Table("state", partitions=4, key_type=bytes, value_type=bytes)


def test_lookup_after_withdraw_and_grant_reads_the_real_state(tmp_path: Path) -> None:
    eng = Engine(Settings())
    real = None
    for i in range(3):
        real = eng.apply(real, Event("purchase", "purchase", f"p{i}", "g1", i * 7 * DAY,
                                     amount=30.0)).state
    withdraw = Event("consent", "consent_withdrawn", "w", "g1", 19 * DAY)
    grant = Event("consent", "consent_granted", "g", "g1", 21 * DAY)
    real = eng.apply(eng.apply(real, withdraw).state, grant).state
    # the copies on the other partitions: a marker, then the grant makes it a fresh profile
    marker = eng.apply(eng.apply(None, withdraw).state, grant).state
    t = table(tmp_path)
    store = t.data
    store._db_for_partition(0).put(b"g1", value(marker, 0, copy=True))
    store._db_for_partition(1).put(b"g1", value(marker, 1, copy=True))
    store._db_for_partition(2).put(b"g1", value(real, 2))
    store._db_for_partition(3)
    # the defect's mechanism: outside an event the store answers the first partition's value
    assert codec.loads(t.get(b"g1"))[COPY] is True

    data = stored(t, b"g1", {0, 1, 2, 3}, routed=1)
    assert data is not None and data[PARTITION] == 2
    status, body = customer_answer(eng, CustomerState.from_dict(data), 21 * DAY)
    assert status == 200 and not body["suppressed"]
    assert body["features"]["purchases_total"] == 3
    assert set(body["segments"]) == {"frequency", "lifecycle"}
    # only the partitions this worker owns are read (a standby's database is not)
    assert stored(t, b"g1", {0, 1, 3}, routed=1) is None
    assert stored(t, b"nobody", {0, 1, 2, 3}, routed=0) is None

