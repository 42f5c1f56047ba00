"""``streamseg import``: rows with too many fields and times a datetime cannot hold are bad rows
(one ``FILE:ROW: ...`` line and exit 2, or a line in the rejects file), never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamseg.__main__ import main

EXTRA_COLUMN = """\
customer,ts,order,line_total
c1,2026-01-01T10:00:00Z,o1,1,234.50
c2,2026-01-01T10:00:00Z,o2,7
c3,2026-01-01T11:00:00Z,o3,"1,234.50"
"""
ORDER_ARGS = ["--customer", "customer", "--time", "ts", "--order", "order",
              "--amount", "line_total", "--currency", "EUR"]
EPOCH_ARGS = ["--customer", "c", "--time", "t", "--time-format", "epoch", "--amount", "a",
              "--currency", "EUR"]


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_row_with_more_fields_than_the_header_is_a_bad_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unquoted ``1,234.50`` is two fields: not the amount 1.0 with a field dropped."""
    src, out, rejects = tmp_path / "orders.csv", tmp_path / "o.jsonl", tmp_path / "r.jsonl"
    src.write_text(EXTRA_COLUMN)
    args = ["import", str(src), *ORDER_ARGS, "--out", str(out)]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"streamseg: error: {src}:2: 5 fields, the header has 4 (an unquoted comma in a value?)\n")
    assert main([*args, "--rejects", str(rejects)]) == 0
    short, quoted = lines(rejects)
    assert short == {
        "file": str(src), "row": 2, "column": None,
        "message": f"{src}:2: 5 fields, the header has 4 (an unquoted comma in a value?)",
        "values": {"customer": "c1", "ts": "2026-01-01T10:00:00Z", "order": "o1",
                   "line_total": "1"}}
    # quoted, it is one field (not a number either: no thousands separators)
    assert quoted["message"] == (f"{src}:4: column line_total: cannot read '1,234.50' "
                                 "(could not convert string to float: '1,234.50')")
    assert [(e["order_id"], e["amount"]) for e in lines(out)] == [("o2", 7.0)]
    assert "rows=3 rejected=2 purchases=1 customers=1 " in capsys.readouterr().err


@pytest.mark.parametrize(("name", "text", "message"), [
    ("orders.tsv", "customer\tts\torder\tline_total\nc1\t2026-01-01\to1\t1\t2\n",
     "5 fields, the header has 4 (a tab in a value?)"),
    ("orders.txt", "customer ts order line_total\nc1 2026-01-01 o 1 1\n",
     "5 fields, the header has 4 (a space in a value?)"),
])
def test_too_many_fields_names_the_separator_of_the_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, message: str
) -> None:
    src = tmp_path / name
    src.write_text(text)
    assert main(["import", str(src), *ORDER_ARGS, "--out", str(tmp_path / "o.jsonl")]) == 2
    assert capsys.readouterr().err == f"streamseg: error: {src}:2: {message}\n"


EPOCH = """\
c,t,a
c1,1767600000000,5
c2,1767600000,5
c3,1767600000.5,5
c4,1767600000123456,5
c5,1767600000123456789,5
c6,1e30,5
"""
RANGE = "column t: must be a time in the years 1 to 9999 UTC, got"


def test_epoch_values_out_of_range_as_seconds_are_bad_rows_that_name_the_unit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Milliseconds read as seconds would be the year 57983: a bad row that says what it looks
    like (the value is not reinterpreted: ``epoch`` means seconds)."""
    src, out, rejects = tmp_path / "epoch.csv", tmp_path / "o.jsonl", tmp_path / "r.jsonl"
    src.write_text(EPOCH)
    args = ["import", str(src), *EPOCH_ARGS, "--out", str(out)]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"streamseg: error: {src}:2: {RANGE} '1767600000000' "
        "(epoch seconds; it looks like milliseconds: 2026-01-05T08:00:00Z)\n")
    assert main([*args, "--rejects", str(rejects)]) == 0
    bad = lines(rejects)
    assert [(r["row"], r["column"], r["values"]) for r in bad] == [
        (n, "t", {"c": f"c{n - 1}", "t": t, "a": "5"})
        for n, t in ((2, "1767600000000"), (5, "1767600000123456"),
                     (6, "1767600000123456789"), (7, "1e30"))]
    assert [r["message"].split(f"{RANGE} ")[1] for r in bad] == [
        "'1767600000000' (epoch seconds; it looks like milliseconds: 2026-01-05T08:00:00Z)",
        "'1767600000123456' (epoch seconds; it looks like microseconds: "
        "2026-01-05T08:00:00.123456Z)",
        "'1767600000123456789' (epoch seconds; it looks like nanoseconds: "
        "2026-01-05T08:00:00.123457Z)",
        "'1e30' (epoch seconds)"]
    assert [e["ts"] for e in lines(out)] == ["2026-01-05T08:00:00Z", "2026-01-05T08:00:00.500000Z"]
    assert "rows=6 rejected=4 purchases=2 customers=2 " in capsys.readouterr().err


def test_a_time_past_the_year_9999_in_utc_is_a_bad_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``9999-12-31T23:59:59-01:00`` is 10000-01-01T00:59:59Z; the first instant at +01:00 is
    in the year 0; ``--shift-days`` can push a time out too."""
    src, out, rejects = tmp_path / "y.csv", tmp_path / "o.jsonl", tmp_path / "r.jsonl"
    src.write_text("c,t,a\nc1,9999-12-31T23:59:59-01:00,5\nc2,0001-01-01T00:00:00+01:00,5\n"
                   "c3,9999-12-31T23:59:59Z,5\n")
    args = ["import", str(src), "--customer", "c", "--time", "t", "--amount", "a",
            "--currency", "EUR", "--out", str(out)]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"streamseg: error: {src}:2: {RANGE} '9999-12-31T23:59:59-01:00'\n")
    assert main([*args, "--rejects", str(rejects)]) == 0
    bad = lines(rejects)
    assert [(r["row"], r["message"]) for r in bad] == [
        (2, f"{src}:2: {RANGE} '9999-12-31T23:59:59-01:00'"),
        (3, f"{src}:3: {RANGE} '0001-01-01T00:00:00+01:00'"),
        # a time a datetime holds but outside the accepted event-time window: the row's values
        (4, f"{src}:4: column t: order c3@99991231T235959Z: timestamp_out_of_range: "
            "event time outside 1970-01-01T00:00:00Z .. 2100-01-01T00:00:00Z")]
    assert bad[2]["values"] == {"c": "c3", "t": "9999-12-31T23:59:59Z", "a": "5"}
    assert lines(out) == []
    capsys.readouterr()
    src.write_text("c,t,a\nc3,9999-12-31T23:59:59Z,5\n")
    assert main([*args, "--shift-days", "1"]) == 2
    assert capsys.readouterr().err == (
        f"streamseg: error: {src}:2: column t: must be a time in the years 1 to 9999 UTC "
        "after --shift-days 1, got '9999-12-31T23:59:59Z'\n")


def test_an_order_outside_the_window_is_rejected_with_its_first_rows_values(
    tmp_path: Path,
) -> None:
    src, rejects = tmp_path / "orders.csv", tmp_path / "r.jsonl"
    src.write_text("customer,ts,order,line_total\nc1,2100-06-01T00:00:00Z,o1,2\n"
                   "c1,2100-06-01T00:00:00Z,o1,3\nc2,2026-01-01T00:00:00Z,o2,4\n")
    assert main(["import", str(src), *ORDER_ARGS, "--out", str(tmp_path / "o.jsonl"),
                 "--rejects", str(rejects)]) == 0
    assert lines(rejects) == [{
        "file": str(src), "row": 2, "column": "ts",
        "message": f"{src}:2: column ts: order o1: timestamp_out_of_range: "
                   "event time outside 1970-01-01T00:00:00Z .. 2100-01-01T00:00:00Z",
        "values": {"customer": "c1", "ts": "2100-06-01T00:00:00Z", "order": "o1",
                   "line_total": "2"}}]


def test_profile_import_reports_an_out_of_range_time_as_a_bad_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "people.csv"
    src.write_text("c,t,band\nc1,1767600000000,gold\n")
    assert main(["import", str(src), "--profiles", "--customer", "c", "--time", "t",
                 "--time-format", "epoch", "--attribute", "x_band=band",
                 "--out", str(tmp_path / "p.jsonl")]) == 2
    assert capsys.readouterr().err == (
        f"streamseg: error: {src}:2: column t: bad time: must be a time in the years 1 to 9999 "
        "UTC, got '1767600000000' (epoch seconds; it looks like milliseconds: "
        "2026-01-05T08:00:00Z)\n")


def test_a_date_column_read_as_epoch_seconds_is_a_bad_row_that_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """YYYYMMDD digits read with ``--time-format epoch`` were accepted as seconds in 1970
    (19970101 -> 1970-08-20): every order of a 1997 file imported 27 years early."""
    src, out = tmp_path / "days.csv", tmp_path / "o.jsonl"
    src.write_text("c,t,a\nc1,19970101,5\n")
    args = ["import", str(src), *EPOCH_ARGS, "--out", str(out)]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"streamseg: error: {src}:2: column t: must be epoch seconds, got '19970101' = "
        "1970-08-20T03:15:01Z; it looks like a date YYYYMMDD (1997-01-01): use --time-format "
        "%Y%m%d (or --early-epoch to read it as seconds)\n")
    assert main([*args, "--early-epoch"]) == 0
    assert lines(out)[0]["ts"] == "1970-08-20T03:15:01Z"
