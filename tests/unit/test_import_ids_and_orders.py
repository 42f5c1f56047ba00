"""``streamseg import`` on real-world layouts (review 13): missing-value ids, float-formatted ids,
order ids reused over time, discount lines, Excel dates given as epoch, long customer ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamseg.__main__ import main

AMT = ["--amount", "amt", "--currency", "EUR"]


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- finding 3: NA, null, ... in an id column are missing values, not customers or orders


def test_missing_value_tokens_in_the_customer_column_are_bad_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out, rejects = tmp_path / "m.csv", tmp_path / "o.jsonl", tmp_path / "r.jsonl"
    src.write_text("cust,when,amt\nA,2016-07-02,10\n,2016-07-03,5\nNA,2016-07-04,7\n"
                   "null,2016-07-05,3\n?,2016-07-06,1\n")
    args = ["import", str(src), "--customer", "cust", "--time", "when", *AMT, "--missing", "?",
            "--out", str(out)]
    assert main(args) == 2
    assert capsys.readouterr().err == (f"streamseg: error: {src}:3: column cust: empty\n")
    assert main([*args, "--rejects", str(rejects)]) == 0
    assert "rows=5 rejected=4 purchases=1 customers=1" in capsys.readouterr().err
    assert [e["customer_id"] for e in lines(out)] == ["A"]
    assert [(r["row"], r["column"], r["message"].split(": ", 1)[1]) for r in lines(rejects)] == [
        (3, "cust", "column cust: empty"),
        (4, "cust", "column cust: must not be a missing value, got 'NA'"),
        (5, "cust", "column cust: must not be a missing value, got 'null'"),
        (6, "cust", "column cust: must not be a missing value, got '?'"),
    ]


def test_a_missing_value_token_in_the_order_column_is_a_bad_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "o.csv"
    src.write_text("cust,when,order,amt\nA,2016-07-02,o1,10\nB,2016-07-02,NA,4\n"
                   "C,2016-07-02,NA,5\n")
    args = ["import", str(src), "--customer", "cust", "--time", "when", "--order", "order", *AMT,
            "--out", str(tmp_path / "o.jsonl")]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"streamseg: error: {src}:3: column order: must not be a missing value, got 'NA'\n")


def test_profiles_name_a_missing_customer_id_the_same_way(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "p.csv"
    src.write_text("household_id,age\nNA,45-54\n")
    args = ["import", str(src), "--profiles", "--customer", "household_id", "--at",
            "2016-01-01T00:00:00Z", "--attribute", "age_band=age", "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"streamseg: error: {src}:2: column household_id: must not be a missing value, got 'NA'\n")


# -- finding 4: 17850.0 in a CSV is the id 17850, as in a Parquet float column


def test_a_csv_and_a_parquet_file_of_one_frame_give_the_same_ids(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    df = pd.DataFrame({"CustomerID": [17850.0, 13047.0], "InvoiceNo": [536365.0, 536366.0],
                       "InvoiceDate": pd.to_datetime(["2010-12-01 08:26", "2010-12-01 09:00"]),
                       "UnitPrice": [2.55, 1.0]})
    df.to_parquet(tmp_path / "retail.parquet")
    df.to_csv(tmp_path / "retail.csv", index=False)
    assert "17850.0,536365.0" in (tmp_path / "retail.csv").read_text()
    got = []
    for name in ("retail.parquet", "retail.csv"):
        out = tmp_path / f"{name}.jsonl"
        assert main(["import", str(tmp_path / name), "--customer", "CustomerID", "--time",
                     "InvoiceDate", "--order", "InvoiceNo", "--price", "UnitPrice",
                     "--currency", "GBP", "--out", str(out)]) == 0
        got.append(lines(out))
    assert got[0] == got[1]
    assert [(e["customer_id"], e["order_id"]) for e in got[1]] == [
        ("17850", "536365"), ("13047", "536366")]


def test_integral_float_text_is_normalised_in_id_columns_only(tmp_path: Path) -> None:
    src, out = tmp_path / "f.csv", tmp_path / "o.jsonl"
    src.write_text("cust,when,order,amt\n17850.0,2016-07-02,7.00,10.0\n17850,2016-07-02,7,1\n"
                   "17850.5,2016-07-03,v1.0,2\n")
    assert main(["import", str(src), "--customer", "cust", "--time", "when", "--order", "order",
                 *AMT, "--out", str(out)]) == 0
    assert [(e["customer_id"], e["order_id"], e["amount"]) for e in lines(out)] == [
        ("17850", "7", 11.0), ("17850.5", "v1.0", 2.0)]
    prof, pout = tmp_path / "p.csv", tmp_path / "p.jsonl"
    prof.write_text("hh,size\n17850.0,2.0\n")
    assert main(["import", str(prof), "--profiles", "--customer", "hh", "--at",
                 "2016-01-01T00:00:00Z", "--attribute", "x_size=size", "--out", str(pout)]) == 0
    assert [(r["customer_id"], r["attributes"]) for r in lines(pout)] == [
        ("17850", {"x_size": "2.0"})]  # attributes as they were: text stays text


# -- finding 5: an order id reused far apart in time is several purchases

RECEIPTS = ("cust,when,receipt,amt\nA,2016-07-02 10:00,1,10\nA,2016-08-02 11:00,1,20\n"
            "A,2017-01-05 09:00,1,30\nA,2016-07-02 18:00,1,5\nB,2016-09-01 08:00,1,7\n")


def test_an_order_id_reused_far_apart_in_time_is_separate_purchases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out = tmp_path / "receipts.csv", tmp_path / "o.jsonl"
    src.write_text(RECEIPTS)
    args = ["import", str(src), "--customer", "cust", "--time", "when", "--order", "receipt",
            *AMT, "--out", str(out)]
    assert main(args) == 0
    assert "rows=5 rejected=0 purchases=4 split=3 customers=2" in capsys.readouterr().err
    assert [(e["customer_id"], e["event_id"], e["order_id"], e["ts"], e["amount"])
            for e in lines(out)] == [
        ("A", "1", "1", "2016-07-02T10:00:00Z", 15.0),  # 10:00 and 18:00: one purchase
        ("A", "1@20160802T110000Z", "1", "2016-08-02T11:00:00Z", 20.0),
        ("B", "1@20160901T080000Z", "1", "2016-09-01T08:00:00Z", 7.0),
        ("A", "1@20170105T090000Z", "1", "2017-01-05T09:00:00Z", 30.0),
    ]
    first = out.read_bytes()
    src.write_text(RECEIPTS.splitlines()[0] + "\n" + "\n".join(RECEIPTS.splitlines()[:0:-1]))
    assert main(args) == 0  # rows in the other order: the same purchases and ids
    assert out.read_bytes() == first
    # a window of 6 hours splits the 10:00 and 18:00 lines too; 'inf' merges every line
    assert main([*args, "--order-window", "6"]) == 0
    assert "purchases=5 split=4" in capsys.readouterr().err
    src.write_text(RECEIPTS.replace("B,", "A,"))
    assert main([*args, "--order-window", "inf"]) == 0
    assert [(e["event_id"], e["amount"]) for e in lines(out)] == [("1", 72.0)]


def test_lines_of_one_order_within_the_window_must_share_the_customer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "o.csv"
    src.write_text("cust,when,order,amt\nA,2016-07-02 10:00,1,10\nB,2016-07-02 12:00,1,3\n")
    assert main(["import", str(src), "--customer", "cust", "--time", "when", "--order", "order",
                 *AMT, "--out", str(tmp_path / "o.jsonl")]) == 2
    assert capsys.readouterr().err == (
        f"streamseg: error: {src}:3: column cust: order 1 has 'A' at row 2, this row 'B'\n")


# -- finding 7: the lines of an order are netted; only an order netting to <= 0 is a bad row


def test_a_discount_line_lowers_the_order_amount(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out, rejects = tmp_path / "d.csv", tmp_path / "o.jsonl", tmp_path / "r.jsonl"
    src.write_text("cust,when,order,amt\nA,2016-07-02 10:00,O1,10\nA,2016-07-02 10:00,O1,-2\n"
                   "B,2016-07-03,R1,-4\nC,2016-07-03,C1,5\nC,2016-07-03,C1,-5\n"
                   "D,2016-07-04,F1,0\n")
    args = ["import", str(src), "--customer", "cust", "--time", "when", "--order", "order",
            *AMT, "--out", str(out), "--rejects", str(rejects)]
    assert main(args) == 0
    assert "rows=6 rejected=2 purchases=2 customers=2" in capsys.readouterr().err
    assert [(e["order_id"], e["amount"]) for e in lines(out)] == [("O1", 8.0), ("F1", 0.0)]
    assert [(r["row"], r["column"], r["values"]["order"]) for r in lines(rejects)] == [
        (4, "amt", "R1"), (5, "amt", "C1")]
    assert lines(rejects)[1]["message"] == (
        f"{src}:5: column amt: order C1: its lines net to 0, a return or a cancellation "
        "(the engine has no returns)")


def test_a_negative_unit_price_line_is_netted_too(tmp_path: Path) -> None:
    src, out = tmp_path / "d.csv", tmp_path / "o.jsonl"
    src.write_text("cust,when,order,price,qty\nA,2016-07-02,O1,2.5,4\nA,2016-07-02,O1,-1.5,1\n")
    assert main(["import", str(src), "--customer", "cust", "--time", "when", "--order", "order",
                 "--price", "price", "--quantity", "qty", "--currency", "EUR",
                 "--out", str(out)]) == 0
    assert [e["amount"] for e in lines(out)] == [8.5]


# -- finding 8: epoch seconds near 1970 (Excel serial dates) are refused unless asked for


def test_excel_serial_dates_given_as_epoch_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out = tmp_path / "excel.csv", tmp_path / "o.jsonl"
    src.write_text("cust,when,amt\nA,40513.35,10\nA,40514.5,3\n")
    args = ["import", str(src), "--customer", "cust", "--time", "when", "--time-format", "epoch",
            *AMT, "--out", str(out)]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"streamseg: error: {src}:2: column when: must be epoch seconds from "
        "1970-01-12T13:46:40Z (or --early-epoch), got '40513.35' = "
        "1970-01-01T11:15:13.350000Z; an Excel serial date? as one it is 2010-12-01T08:24:00Z\n")
    assert main([*args, "--early-epoch"]) == 0
    assert [e["ts"] for e in lines(out)] == ["1970-01-01T11:15:13.350000Z",
                                             "1970-01-01T11:15:14.500000Z"]
    src.write_text("cust,when,amt\nA,1000000,10\nA,1483271606,3\n")  # from 1e6 s: as given
    assert main(args) == 0
    assert [e["ts"] for e in lines(out)] == ["1970-01-12T13:46:40Z", "2017-01-01T11:53:26Z"]


# -- finding 9: a generated event id longer than 128 characters is shortened


def test_a_long_customer_id_gets_a_shortened_generated_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], assert_schema: Any
) -> None:
    cust = "x" * 120
    src, out = tmp_path / "long.csv", tmp_path / "o.jsonl"
    src.write_text(f"cust,when,amt\n{cust},2016-07-02,10\n{cust},2016-07-03,4\nc1,2016-07-02,1\n")
    args = ["import", str(src), "--customer", "cust", "--time", "when", *AMT, "--out", str(out)]
    assert main(args) == 0
    assert "rows=3 rejected=0 purchases=3 customers=2" in capsys.readouterr().err
    got = lines(out)
    for event in got:
        assert_schema("purchase", event)
    ids = [e["event_id"] for e in got if e["customer_id"] == cust]
    assert [len(i) for i in ids] == [128, 128] and ids[0] != ids[1]
    assert all(i.startswith("x" * 95 + "~") for i in ids)
    assert all(e["order_id"] == e["event_id"] for e in got)
    assert [e["event_id"] for e in got if e["customer_id"] == "c1"] == ["c1@20160702T000000Z"]
    first = out.read_bytes()
    assert main(args) == 0
    assert out.read_bytes() == first  # the same ids on every import
    prof, pout = tmp_path / "p.csv", tmp_path / "p.jsonl"
    prof.write_text(f"hh,size\n{cust},2\n")
    assert main(["import", str(prof), "--profiles", "--customer", "hh", "--at",
                 "2016-01-01T00:00:00Z", "--attribute", "household_size=size:int",
                 "--out", str(pout)]) == 0
    (record,) = lines(pout)
    assert_schema("customer-profile", record)
    assert len(record["event_id"]) == 128 and record["event_id"].startswith("profile:xxx")
