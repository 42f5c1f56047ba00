"""After a rebalance the population models hold the customers of the owned partitions only.

Regression (code review, finding 5): ``Punctuator.reschedule`` restored the owned
customers into the population models but forgot nobody, so a worker that lost a
partition kept its customers with the values of that moment: the RFM ranking,
the value and cluster samples the trainer fits on, and ``moved()``, which kept
naming them (partition ticks and ``Engine._moved`` entries that never drained).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from streamseg import codec
from streamseg.config import DAY, Settings
from streamseg.engine.clusterfit import id_hash
from streamseg.engine.events import Event
from streamseg.engine.features import CustomerState
from streamseg.engine.processor import Engine
from streamseg.punctuator import PARTITION, Punctuator
from tests.unit.ingest_harness import Harness

POPULATION = ("rfm", "value", "cluster")  # the segmenters with a population model
BASE = datetime(2026, 1, 1, tzinfo=UTC)


class OwnedTable:
    """Like RocksDB, one store per partition: ``items()`` lists the owned partitions only."""

    def __init__(self) -> None:
        self.parts: dict[int, dict[bytes, bytes]] = {}
        self.owned: set[int] = set()

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        self.parts.setdefault(partition, {})[key] = value

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for p in sorted(self.owned):
            yield from self.parts.get(p, {}).items()


def shopper(eng: Engine, i: int, cid: str | None = None) -> CustomerState:
    """A customer with three visits (clusters sample from the third) and one purchase."""
    cid = cid or f"c{i}"
    state = None
    for v in range(3):
        state = eng.apply(state, Event("click", "page_view", f"{cid}v{v}", cid,
                                       DAY * (i + v))).state
    return eng.apply(state, Event("purchase", "purchase", f"{cid}p", cid, DAY * (i + 2) + 60,
                                  amount=10.0 * (i + 1))).state


def members(eng: Engine) -> dict[str, list[str]]:
    """Who each population model holds (its own bookkeeping, not only ``customers()``)."""
    rfm, value, cluster = (eng.segmenter(name) for name in POPULATION)
    out = {"rfm": sorted(rfm.values),  # type: ignore[union-attr]
           "value": sorted(value.local),  # type: ignore[union-attr]
           "cluster": sorted(cluster.local)}  # type: ignore[union-attr]
    for name in POPULATION:
        seg = eng.segmenter(name)
        assert seg is not None and sorted(getattr(seg, "customers", list)()) in ([], out[name])
    return out


def worker(settings: Settings, states: dict[str, tuple[int, CustomerState]],
           per_partition: bool) -> tuple[Engine, Punctuator, Any]:
    """A fresh worker over a table of ``states`` (customer -> (partition, state))."""
    table: Any = OwnedTable() if per_partition else {}
    for cid, (p, st) in states.items():
        data = st.to_dict()
        data[PARTITION] = p
        if per_partition:
            table.put(p, cid.encode(), codec.dumps(data))
        else:
            table[cid.encode()] = codec.dumps(data)
    eng = Engine(settings, wall=lambda: 1e12)
    ss = SimpleNamespace(settings=settings, state=table, clocks={}, app=SimpleNamespace())
    return eng, Punctuator(ss, eng), table  # type: ignore[arg-type]


def own(punct: Punctuator, table: Any, partitions: set[int]) -> None:
    """A rebalance: the new assignment, then the schedules rebuilt from the table."""
    if isinstance(table, OwnedTable):
        table.owned = partitions
    punct.assign(partitions)
    punct.reschedule()


@pytest.mark.parametrize("per_partition", [False, True], ids=["one-dict", "rocksdb-like"])
def test_a_revoked_partition_leaves_the_population_models(per_partition: bool) -> None:
    settings = Settings(partitions=2)
    src = Engine(settings, wall=lambda: 1e12)
    states = {f"c{i}": (i % 2, shopper(src, i)) for i in range(6)}
    eng, punct, table = worker(settings, states, per_partition)
    own(punct, table, {0, 1})
    everyone = [f"c{i}" for i in range(6)]
    assert members(eng) == {name: everyone for name in POPULATION}
    own(punct, table, {0})
    assert members(eng) == {name: ["c0", "c2", "c4"] for name in POPULATION}
    rfm = eng.segmenter("rfm")
    assert len(rfm.recency) == 3  # type: ignore[union-attr]  # the ranking itself too
    own(punct, table, {0, 1})  # partition 1 comes back: its customers are restored
    assert members(eng) == {name: everyone for name in POPULATION}


def test_moved_no_longer_names_the_customers_of_a_revoked_partition() -> None:
    settings = Settings(partitions=2, rfm_warmup_days=1, rfm_min_samples=3)
    src = Engine(settings, wall=lambda: 1e12)
    states = {f"c{i}": (i % 2, shopper(src, i)) for i in range(6)}
    eng, punct, table = worker(settings, states, per_partition=False)
    own(punct, table, {0, 1})
    punct.rescore(eng.moved())  # the warm-up ended: everybody to re-score, on both partitions
    assert {"c1", "c3"} <= set(punct.parts[0].rescore)
    eng._moved["c1"] = {2}  # named by moved(), its rescore not yet run
    eng.segmenter("rfm")._moved.update(dict.fromkeys(["c3", "c2"]))  # type: ignore[union-attr]
    own(punct, table, {0})
    assert sorted(punct.parts) == [0]
    assert sorted(punct.parts[0].rescore) == ["c0", "c2", "c4"]
    assert set(eng._moved) <= {"c0", "c2", "c4"}
    assert set(eng.moved()) <= {"c0", "c2", "c4"}
    assert set(eng._moved) <= {"c0", "c2", "c4"}


def test_the_trainers_sample_is_drawn_again_from_the_owned_customers() -> None:
    # a sample of 2 (bottom-2 by id hash): the two smallest hashes live on partition 1;
    # once partition 1 is gone the sample is the bottom 2 of partition 0's customers
    settings = Settings(partitions=2, value_sample_size=2, cluster_sample_size=2)
    src = Engine(settings, wall=lambda: 1e12)
    ids = sorted((f"s{i}" for i in range(6)), key=id_hash)
    states = {cid: (1 if cid in ids[:2] else 0, shopper(src, i, cid)) for i, cid in enumerate(ids)}
    eng, punct, table = worker(settings, states, per_partition=False)
    own(punct, table, {0, 1})
    for name in ("value", "cluster"):
        assert sorted(eng.segmenter(name).population.rows) == sorted(ids[:2])  # type: ignore[union-attr]
    own(punct, table, {0})
    for name in ("value", "cluster"):
        assert sorted(eng.segmenter(name).population.rows) == sorted(ids[2:4])  # type: ignore[union-attr]


def test_customers_of_a_kept_partition_stay_whenever_they_were_learned() -> None:
    # through the real Ingest: a customer first seen after the last rebuild (its state
    # written by its batch) stays after the next rebalance, whatever its partition's history
    h = Harness(Settings(partitions=2, source_idle_s=0.0, max_future_skew_s=7 * DAY))

    def buy(eid: str, cid: str, days: float) -> bytes:
        return codec.dumps({"event_id": eid, "customer_id": cid, "order_id": eid,
                            "ts": (BASE + timedelta(days=days)).isoformat(),
                            "amount": 20.0, "currency": "EUR"})

    try:
        for i in range(4):
            h.send("purchase", f"c{i}".encode(), buy(f"e{i}", f"c{i}", i), partition=i % 2)
        h.ingest.punctuator.assign({0, 1})
        assert h.ingest.due_ticks() is not None  # rebuilt from the table
        h.send("purchase", b"late", buy("e9", "late", 5.0), partition=0)  # after the rebuild
        h.ingest.punctuator.assign({0})
        h.loop.run_until_complete(h.ingest.timer_ticks())  # rebuilt: partition 1 forgotten
        assert members(h.ingest.engine)["rfm"] == ["c0", "c2", "late"]
    finally:
        h.close()
