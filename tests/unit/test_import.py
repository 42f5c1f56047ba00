"""``streamseg import``: order files -> purchase events, exact output and error format."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streamseg.__main__ import main

ORDERS = """\
customer,when,line_total,basket,qty,sku,channel
c2,2026-01-03 09:00:00,2.50,b2,1,p1,web
c1,2026-01-02T10:00:00Z,5.10,b1,2,p1,app
c1,2026-01-02T10:00:00Z,4.90,b1,1,p2,app
c1,2026-01-02T10:00:00Z,1.00,b1,1,p1,app
c2,2026-01-01,0.00,b3,3,p9,store
"""

CDNOW_LIKE = (
    " customer_id  date number_of_cds  dollar_value\r\n"
    " 00001 20170101  1   11.77\r\n"
    " 00002 20170112  1   12.00\r\n"
    " 00002 20170112  5   77.00\r\n"
    " 00002 20170113  1   1.5\r\n"
)

Check = Callable[[str, Any], None]
BASKET_ARGS = ["--customer", "customer", "--time", "when", "--amount", "line_total",
               "--order", "basket", "--currency", "EUR"]


def events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_line_items_become_one_purchase_per_order_sorted_by_time(
    tmp_path: Path, assert_schema: Check
) -> None:
    src = tmp_path / "orders.csv"
    src.write_text(ORDERS)
    out = tmp_path / "events.jsonl"
    args = ["import", str(src), *BASKET_ARGS, "--quantity", "qty", "--product", "sku",
            "--channel-column", "channel", "--out", str(out)]
    assert main(args) == 0
    got = events(out)
    for event in got:
        assert_schema("purchase", event)
    assert got == [
        {"event_id": "b3", "order_id": "b3", "customer_id": "c2", "type": "purchase",
         "ts": "2026-01-01T00:00:00Z", "amount": 0.0, "currency": "EUR", "channel": "store",
         "items": [{"product_id": "p9", "quantity": 3}]},
        {"event_id": "b1", "order_id": "b1", "customer_id": "c1", "type": "purchase",
         "ts": "2026-01-02T10:00:00Z", "amount": 11.0, "currency": "EUR", "channel": "app",
         "items": [{"product_id": "p1", "quantity": 3}, {"product_id": "p2", "quantity": 1}]},
        {"event_id": "b2", "order_id": "b2", "customer_id": "c2", "type": "purchase",
         "ts": "2026-01-03T09:00:00Z", "amount": 2.5, "currency": "EUR", "channel": "web",
         "items": [{"product_id": "p1", "quantity": 1}]},
    ]


def test_date_only_rows_without_order_id_group_by_customer_and_day(
    tmp_path: Path, assert_schema: Check
) -> None:
    src = tmp_path / "CDNOW_master.txt"
    src.write_bytes(CDNOW_LIKE.encode())
    out = tmp_path / "cdnow.jsonl"
    args = ["import", str(src), "--customer", "customer_id", "--time", "date",
            "--time-format", "%Y%m%d", "--amount", "dollar_value", "--quantity",
            "number_of_cds", "--currency", "USD", "--channel", "store", "--out", str(out)]
    assert main(args) == 0
    got = events(out)
    for event in got:
        assert_schema("purchase", event)
    assert [(e["customer_id"], e["ts"], e["amount"], e["order_id"], e["items"]) for e in got] == [
        ("00001", "2017-01-01T00:00:00Z", 11.77, "00001@20170101T000000Z",
         [{"product_id": "row2", "quantity": 1}]),
        ("00002", "2017-01-12T00:00:00Z", 89.0, "00002@20170112T000000Z",
         [{"product_id": "row3", "quantity": 1}, {"product_id": "row4", "quantity": 5}]),
        ("00002", "2017-01-13T00:00:00Z", 1.5, "00002@20170113T000000Z",
         [{"product_id": "row5", "quantity": 1}]),
    ]


def test_parquet_gives_the_same_events_as_csv(tmp_path: Path, assert_schema: Check) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from datetime import datetime

    src = tmp_path / "t.parquet"
    pq.write_table(pa.table({
        "household_id": [7, 7, 8],
        "basket_id": [100, 100, 101],
        "transaction_timestamp": [datetime(2017, 1, 1, 11, 53, 26)] * 2
        + [datetime(2017, 1, 2)],
        "sales_value": [1.25, 2.0, 0.5],
        "store_id": [330, 330, 331],
    }), src)
    out = tmp_path / "t.jsonl"
    args = ["import", str(src), "--customer", "household_id", "--time",
            "transaction_timestamp", "--amount", "sales_value", "--order", "basket_id",
            "--currency", "USD", "--channel", "store", "--out", str(out)]
    assert main(args) == 0
    got = events(out)
    for event in got:
        assert_schema("purchase", event)
    assert [(e["customer_id"], e["order_id"], e["ts"], e["amount"]) for e in got] == [
        ("7", "100", "2017-01-01T11:53:26Z", 3.25), ("8", "101", "2017-01-02T00:00:00Z", 0.5)]


@pytest.mark.parametrize(("row", "message"), [
    ("c3,2026-01-05,-1,b9,1,p1,web", "orders.csv:7: column line_total: order b9: its lines net "
                                     "to -1, a return or a cancellation (the engine has no "
                                     "returns)"),
    ("c3,2026-01-05,x,b9,1,p1,web", "orders.csv:7: column line_total: cannot read 'x' "
                                    "(could not convert string to float: 'x')"),
    ("c3,yesterday,1,b9,1,p1,web", "orders.csv:7: column when: cannot read 'yesterday' "
                                   "(Invalid isoformat string: 'yesterday')"),
    ("c3,2026-01-02T11:00:00Z,1,b1,1,p1,app", "orders.csv:7: column customer: order b1 has 'c1' "
                                              "at row 3, this row 'c3'"),
    (",2026-01-05,1,b9,1,p1,web", "orders.csv:7: column customer: empty"),
])
def test_a_bad_row_stops_with_file_row_column_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], row: str, message: str
) -> None:
    src = tmp_path / "orders.csv"
    src.write_text(ORDERS + row + "\n")
    rc = main(["import", str(src), *BASKET_ARGS, "--out", str(tmp_path / "o.jsonl")])
    assert rc == 2
    assert capsys.readouterr().err == f"streamseg: error: {tmp_path}/{message}\n"


def test_schema_rules_name_the_input_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "orders.csv"
    src.write_text("customer,when,line_total\nc1,2026-01-05,2000000000\n")
    rc = main(["import", str(src), "--customer", "customer", "--time", "when", "--amount",
               "line_total", "--currency", "EUR", "--out", str(tmp_path / "o.jsonl")])
    assert rc == 2
    assert capsys.readouterr().err == (
        f"streamseg: error: {src}:2: column line_total: order c1@20260105T000000Z: "
        "schema_invalid: 2000000000.0 is greater than the maximum of 1000000000\n")


def test_missing_column_and_unknown_currency_are_clear(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "orders.csv"
    src.write_text(ORDERS)
    # a currency with no exchange rate, or a typo, is told before the file is read (a
    # review's import with --rejects read 817,741 rows, rejected every order and exited 0)
    assert main(["import", str(src), *BASKET_ARGS[:-1], "XYZ", "--rejects",
                 str(tmp_path / "r.jsonl")]) == 2
    assert capsys.readouterr().err.startswith(
        "streamseg import: error: --currency XYZ: no exchange rate for XYZ (known: CHF EUR "
        "GBP PLN SEK USD); add it to STREAMSEG_FX_RATES")
    assert not (tmp_path / "r.jsonl").exists()
    assert main(["import", str(src), *BASKET_ARGS[:-1], "eur"]) == 2
    assert capsys.readouterr().err == (
        "streamseg import: error: --currency eur: not an ISO 4217 code (three capital "
        "letters): --currency EUR?\n")
    args = ["import", str(src), *BASKET_ARGS, "--quantity", "quantity"]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"streamseg: error: {src}: column quantity: not in the file "
        "(columns: customer, when, line_total, basket, qty, sku, channel)\n")


def test_rejects_file_skips_bad_rows_and_keeps_the_rest(tmp_path: Path) -> None:
    src = tmp_path / "orders.csv"
    src.write_text(ORDERS + "c3,2026-01-05,x,b9,0,p1,web\nc3,2026-01-06,1,b8,0,p1,web\n")
    out, rejects = tmp_path / "o.jsonl", tmp_path / "rejects.jsonl"
    args = ["import", str(src), *BASKET_ARGS, "--quantity", "qty", "--out", str(out),
            "--rejects", str(rejects)]
    assert main(args) == 0
    assert [e["order_id"] for e in events(out)] == ["b3", "b1", "b2"]
    bad = events(rejects)
    assert [(r["row"], r["column"]) for r in bad] == [(7, "line_total"), (8, "qty")]
    assert bad[1]["message"] == f"{src}:8: column qty: must be a whole number other than 0, got '0'"
    assert bad[1]["values"]["basket"] == "b8"


def test_rejects_file_takes_a_short_row_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A row with fewer fields than the header is a bad row like any other."""
    src = tmp_path / "orders.csv"
    src.write_text(ORDERS + "c3,2026-01-05,1\nc3,2026-01-06,1,b8,1,p1,web\n")
    out, rejects = tmp_path / "o.jsonl", tmp_path / "rejects.jsonl"
    args = ["import", str(src), *BASKET_ARGS, "--out", str(out)]
    assert main(args) == 2  # without --rejects it stops there
    assert capsys.readouterr().err == (
        f"streamseg: error: {src}:7: 3 fields, the header has 7\n")
    assert main([*args, "--rejects", str(rejects)]) == 0
    assert [e["order_id"] for e in events(out)] == ["b3", "b1", "b2", "b8"]
    assert events(rejects) == [{
        "file": str(src), "row": 7, "column": None,
        "message": f"{src}:7: 3 fields, the header has 7",
        "values": {"customer": "c3", "when": "2026-01-05", "line_total": "1"}}]
    assert "rows=7 rejected=1 purchases=4 " in capsys.readouterr().err


def test_bytes_that_are_not_utf8_are_one_clear_line_or_a_rejected_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Latin-1 in a column the import reads: ``FILE:ROW: column X: not UTF-8 text``."""
    src, out, rejects = tmp_path / "orders.csv", tmp_path / "o.jsonl", tmp_path / "r.jsonl"
    src.write_bytes(ORDERS.encode() + b"caf\xe9,2026-01-05,1,b9,1,p1,web\n"
                    + b"c4,2026-01-06,1,b8,1,p\xe9,web\n")  # sku is not read: kept
    args = ["import", str(src), *BASKET_ARGS, "--out", str(out)]
    assert main(args) == 2
    assert capsys.readouterr().err == (f"streamseg: error: {src}:7: column customer: "
                                       "not UTF-8 text (byte 0xe9 at character 4)\n")
    assert main([*args, "--rejects", str(rejects)]) == 0
    assert [e["order_id"] for e in events(out)] == ["b3", "b1", "b2", "b8"]
    [bad] = events(rejects)
    assert (bad["row"], bad["column"], bad["values"]["customer"]) == (7, "customer", "caf\ufffd")
    capsys.readouterr()
    src.write_bytes(b"\xff\xfe garbage\x00\n")  # a UTF-16 file: not even a header
    assert main([*args, "--rejects", str(rejects)]) == 2
    assert capsys.readouterr().err == (
        f"streamseg: error: {src}:1: not UTF-8 text (byte 0xff at character 1)\n")


ONLINE_RETAIL_LIKE = """\
InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID
536365,85123A,6,12/1/2010 8:26,2.55,17850
536365,71053,6,12/1/2010 8:26,3.39,17850
536366,22633,6,12/1/2010 8:28,1.85,17850
C536379,D,-1,12/1/2010 9:41,27.5,14527
536381,22139,23,12/1/2010 9:41,4.25,15311
"""
RETAIL_ARGS = ["--customer", "CustomerID", "--time", "InvoiceDate", "--time-format",
               "%m/%d/%Y %H:%M", "--order", "InvoiceNo", "--currency", "GBP"]


def test_a_unit_price_column_times_quantity_is_the_amount(tmp_path: Path) -> None:
    """Online Retail-style lines: the amount is unit price x quantity, summed per order;
    a cancellation invoice (negative quantities only) is a return: a rejected row, reported
    in the price column as any order netting below 0, not a purchase."""
    src, out, rejects = tmp_path / "retail.csv", tmp_path / "o.jsonl", tmp_path / "r.jsonl"
    src.write_text(ONLINE_RETAIL_LIKE)
    args = ["import", str(src), *RETAIL_ARGS, "--price", "UnitPrice", "--quantity", "Quantity",
            "--product", "StockCode", "--out", str(out), "--rejects", str(rejects)]
    assert main(args) == 0
    got = {e["order_id"]: e["amount"] for e in events(out)}
    assert got == {"536365": 35.64, "536366": 11.1, "536381": 97.75}  # 6 * 2.55 + 6 * 3.39, ...
    assert [(r["row"], r["column"]) for r in events(rejects)] == [(5, "UnitPrice")]
    # no quantity column: one unit per line
    assert main(["import", str(src), *RETAIL_ARGS, "--price", "UnitPrice", "--out", str(out),
                 "--rejects", str(rejects)]) == 0
    assert {e["order_id"]: e["amount"] for e in events(out)}["536365"] == 5.94


def test_amount_and_price_exclude_each_other_and_one_is_needed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "retail.csv"
    src.write_text(ONLINE_RETAIL_LIKE)
    with pytest.raises(SystemExit) as exc:
        main(["import", str(src), *RETAIL_ARGS, "--price", "UnitPrice", "--amount", "UnitPrice"])
    assert exc.value.code == 2
    assert "argument --amount: not allowed with argument --price" in capsys.readouterr().err
    assert main(["import", str(src), *RETAIL_ARGS]) == 2
    assert capsys.readouterr().err.startswith(
        "streamseg import: error: orders need --time, --amount (or --price) and one of ")
    bad = tmp_path / "bad.csv"
    bad.write_text(ONLINE_RETAIL_LIKE.replace("3.39", "three"))
    assert main(["import", str(bad), *RETAIL_ARGS, "--price", "UnitPrice", "--quantity",
                 "Quantity"]) == 2
    assert capsys.readouterr().err == (
        f"streamseg: error: {bad}:3: column UnitPrice: cannot read 'three' "
        "(could not convert string to float: 'three')\n")


@pytest.mark.parametrize(("cell", "extra"), [("NA", []), ("null", []), ("None", []),
                                             ("-", ["--missing", "-"])])
def test_a_missing_amount_is_told_as_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cell: str, extra: list[str]
) -> None:
    """A review's shop export had an ``NA`` revenue: it read as "cannot read 'NA' (could not
    convert string to float)". Missing-value tokens (any case, and ``--missing``) read as
    missing in number cells, as in id cells."""
    missing = tmp_path / "missing.csv"
    missing.write_text(ONLINE_RETAIL_LIKE.replace("3.39", cell))
    assert main(["import", str(missing), *RETAIL_ARGS, "--price", "UnitPrice", "--quantity",
                 "Quantity", *extra]) == 2
    assert capsys.readouterr().err == (
        f"streamseg: error: {missing}:3: column UnitPrice: must not be a missing value, "
        f"got {cell!r}\n")


def test_a_file_without_a_currency_is_told_to_give_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A review's shop export had no currency column: the error says what to give."""
    src = tmp_path / "retail.csv"
    src.write_text(ONLINE_RETAIL_LIKE)
    no_currency = [a for a in RETAIL_ARGS if a not in ("--currency", "GBP")]
    assert main(["import", str(src), *no_currency, "--price", "UnitPrice"]) == 2
    assert capsys.readouterr().err.startswith(
        "streamseg import: error: give the currency of the amounts: --currency CODE "
        "(ISO 4217, e.g. --currency USD)")


def test_a_negative_quantity_line_nets_against_its_order_and_a_cancellation_is_a_return(
    tmp_path: Path,
) -> None:
    """Online Retail prices lines (``--price``): a ``-1`` discount line inside an order
    lowers its amount (it was a bad row, and the order imported at the full amount); a
    cancellation invoice of negative quantities only is a return, one bad row."""
    src = tmp_path / "retail.csv"
    src.write_text("InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
                   "536381,22719,36,2010-12-01T09:41:00Z,1.06,15311\n"
                   "536381,D,-1,2010-12-01T09:41:00Z,3.25,15311\n"
                   "C536379,22719,-2,2010-12-01T10:00:00Z,1.06,15311\n")
    got, rejected = _imported(src, "--customer", "CustomerID", "--time", "InvoiceDate",
                              "--order", "InvoiceNo", "--price", "UnitPrice", "--quantity",
                              "Quantity", "--product", "StockCode", "--currency", "GBP")
    [order] = got
    assert (order["order_id"], order["amount"]) == ("536381", 34.91)
    assert order["items"] == [{"product_id": "22719", "quantity": 36}]  # D netted to -1
    [bad] = rejected
    assert (bad["row"], bad["column"]) == (4, "UnitPrice")
    assert "order C536379: its lines net to -2.12, a return or a cancellation" in bad["message"]


def test_an_empty_amount_or_quantity_cell_says_empty(tmp_path: Path) -> None:
    src = tmp_path / "orders.csv"
    src.write_text(ORDERS + "c3,2026-01-05,,b9,1,p1,web\nc3,2026-01-06,1,b8, ,p1,web\n")
    _, rejected = _imported(src, *BASKET_ARGS, "--quantity", "qty")
    assert [r["message"] for r in rejected] == [
        f"{src}:7: column line_total: empty", f"{src}:8: column qty: empty"]


def test_with_amounts_a_negative_quantity_needs_a_negative_amount(tmp_path: Path) -> None:
    """A line of -1 with an unsigned amount of 10 was added to the order (20 + 10) and a
    return order of such lines became a purchase (found by a review)."""
    src = tmp_path / "orders.csv"
    src.write_text("customer,when,line_total,basket,qty,sku,channel\n"
                   "c1,2026-01-02,20,o1,1,A,web\nc1,2026-01-02,10,o1,-1,B,web\n"
                   "c2,2026-01-03,10,o2,-1,A,web\n"
                   "c3,2026-01-04,20,o3,2,A,web\nc3,2026-01-04,-10,o3,-1,A,web\n")
    imported, rejected = _imported(src, *BASKET_ARGS, "--quantity", "qty", "--product", "sku")
    got = {e["order_id"]: (e["amount"], e.get("items")) for e in imported}
    assert got == {"o3": (10.0, [{"product_id": "A", "quantity": 1}])}  # o1: a bad line
    assert [(r["row"], r["column"]) for r in rejected] == [(3, "qty"), (4, "qty"), (2, "qty")]


def test_an_order_with_a_bad_line_is_rejected_whole(tmp_path: Path) -> None:
    """Review 18 (Instacart): a line with amount ``4,00`` was rejected and its order
    imported at 16.00 instead of 24.00 -- a smaller purchase, a lower M, a wrong tier."""
    src = tmp_path / "orders.csv"
    src.write_text("customer,when,line_total,basket,qty,sku,channel\n"
                   "c1,2026-01-02,4.00,o1,1,A,web\nc1,2026-01-02,\"4,00\",o1,1,B,web\n"
                   "c1,2026-01-02,4.00,o1,1,C,web\nc2,2026-01-03,5.00,o2,1,A,web\n"
                   "c3,2026-01-04,1.00,,1,A,web\n")  # no order id: its order cannot be told
    imported, rejected = _imported(src, *BASKET_ARGS)
    assert [(e["order_id"], e["amount"]) for e in imported] == [("o2", 5.0)]
    assert [(r["row"], r["column"]) for r in rejected] == [
        (3, "line_total"), (6, "basket"), (2, "line_total")]
    assert rejected[2]["message"] == (
        f"{src}:2: column line_total: order o1: row 3 of this order is bad (its own line in "
        "the rejects): the order is not imported without it")
    # without an order column a customer's rows of one time are the order: the same rule
    dated = tmp_path / "dated.csv"
    dated.write_text("customer,when,line_total\nc1,2026-01-02,4.00\nc1,2026-01-02,NaN\n"
                     "c1,2026-01-03,2.00\n")
    imported, rejected = _imported(dated, "--customer", "customer", "--time", "when",
                                   "--amount", "line_total", "--currency", "EUR")
    assert [(e["ts"][:10], e["amount"]) for e in imported] == [("2026-01-03", 2.0)]
    assert [r["row"] for r in rejected] == [3, 2]
    # a bad line that adds nothing (amount 0; Complete Journey's quantity-0 lines) leaves
    # its order as it is
    zero = tmp_path / "zero.csv"
    zero.write_text("customer,when,line_total,basket,qty,sku,channel\n"
                    "c1,2026-01-02,4.00,o1,1,A,web\nc1,2026-01-02,0.00,o1,0,B,web\n"
                    "c1,2026-01-02,0.50,o2,1,A,web\nc1,2026-01-02,2.61,o2,0,B,web\n")
    imported, rejected = _imported(zero, *BASKET_ARGS, "--quantity", "qty")
    assert [(e["order_id"], e["amount"]) for e in imported] == [("o1", 4.0)]
    assert [(r["row"], r["column"]) for r in rejected] == [(3, "qty"), (5, "qty"), (4, "qty")]


def _imported(src: Path, *args: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``streamseg import SRC ARGS --out --rejects`` next to SRC: (events, rejects)."""
    out, rejects = src.with_suffix(".out.jsonl"), src.with_suffix(".rejects.jsonl")
    assert main(["import", str(src), *args, "--out", str(out), "--rejects", str(rejects)]) == 0
    return events(out), events(rejects)


def test_product_without_quantity_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review 18: ``--product`` without ``--quantity`` silently gave purchases no items."""
    src = tmp_path / "orders.csv"
    src.write_text(ORDERS)
    assert main(["import", str(src), *BASKET_ARGS, "--product", "sku",
                 "--out", str(tmp_path / "o.jsonl")]) == 2
    assert capsys.readouterr().err == (
        "streamseg import: error: --product needs --quantity (a line's units of the product); "
        "without both, purchases carry no items\n")
