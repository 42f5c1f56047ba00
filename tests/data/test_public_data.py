"""Opt-in: import a slice of the public Complete Journey and CDNOW data and run quality.

Needs ``scripts/fetch-data`` (fills ``.cache/data/``, never committed) and the
``import`` extra (pandas, pyarrow); skips cleanly otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamseg.__main__ import main

DATA = Path(__file__).resolve().parents[2] / ".cache" / "data"
CJ = DATA / "transactions.parquet"
CDNOW = DATA / "CDNOW_master.txt"


def test_complete_journey_slice_imports_and_runs_quality(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not CJ.exists():
        pytest.skip("no .cache/data/transactions.parquet (run scripts/fetch-data)")
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pc = pytest.importorskip("pyarrow.compute")
    table = pq.read_table(CJ, columns=["household_id", "basket_id", "transaction_timestamp",
                                       "sales_value", "store_id"])
    households = sorted(set(table.column("household_id").to_pylist()))[:40]
    part = table.filter(pc.is_in(table.column("household_id"), value_set=pa.array(households)))
    src = tmp_path / "cj40.parquet"
    pq.write_table(part, src)
    events = tmp_path / "cj40.jsonl"
    rc = main(["import", str(src), "--customer", "household_id", "--time",
               "transaction_timestamp", "--amount", "sales_value", "--order", "basket_id",
               "--currency", "USD", "--channel", "store", "--out", str(events)])
    assert rc == 0
    lines = events.read_text().splitlines()
    baskets = len(set(part.column("basket_id").to_pylist()))
    assert len(lines) == baskets
    assert {json.loads(x)["customer_id"] for x in lines} == {str(h) for h in households}
    capsys.readouterr()
    assert main(["quality", str(events), "--json"]) == 0
    q = json.loads(capsys.readouterr().out)
    assert q["customers"] == 40 and q["dead_letters"] == 0
    for name in ("frequency", "lifecycle", "rfm"):
        assert q["agreement"][name]["compared"] == 40


def test_cdnow_imports_one_purchase_per_customer_and_day(tmp_path: Path) -> None:
    if not CDNOW.exists():
        pytest.skip("no .cache/data/CDNOW_master.txt (run scripts/fetch-data)")
    head = tmp_path / "CDNOW_head.txt"
    head.write_text("".join(CDNOW.read_text().splitlines(keepends=True)[:2001]))
    events = tmp_path / "cdnow.jsonl"
    # 1997 dates: shifted by 20 years in case the event-time window starts in 2000
    rc = main(["import", str(head), "--customer", "customer_id", "--time", "date",
               "--time-format", "%Y%m%d", "--amount", "dollar_value", "--quantity",
               "number_of_cds", "--currency", "USD", "--shift-days", "7305",
               "--out", str(events)])
    assert rc == 0
    rows = [line.split() for line in head.read_text().splitlines()[1:]]
    assert len(events.read_text().splitlines()) == len({(r[0], r[1]) for r in rows})
