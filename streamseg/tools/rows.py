"""Rows of a tabular order file (CSV, TSV, whitespace-separated text, Parquet) and their times.

Each reader yields ``(row, values)``: ``row`` is the 1-based line number in a
text file (the header is line 1, so the first data row is line 2) or the
1-based data row number in a Parquet file; ``values`` maps the requested
column names to raw values (text for text files, Python values for Parquet).

Parquet needs the ``streamseg[import]`` extra (pyarrow).

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "o.txt").write_text(" customer_id  date  cds  dollars\\r\\n"
...                              " 00001 19970101  1  11.77\\r\\n")
>>> list(read_rows(d / "o.txt", "whitespace", ["customer_id", "dollars"]))
[(2, {'customer_id': '00001', 'dollars': '11.77'})]
>>> _ = (d / "o.csv").write_text("a,b\\n1,x\\n2,y\\n")
>>> [r for r, v in read_rows(d / "o.csv", "csv", ["b"])]
[2, 3]
>>> list(read_rows(d / "o.csv", "csv", ["c"]))
Traceback (most recent call last):
...
streamseg.tools.rows.RowError: ...o.csv: column c: not in the file (columns: a, b)
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

from streamseg import codec
from streamseg.engine.events import format_ts
from streamseg.errors import InputFileError

FORMATS = ("csv", "tsv", "whitespace", "parquet")
# cell values that mean "unknown" (besides those given with --missing): an id column with one
# is a bad row, an attribute column with one leaves the attribute out
MISSING = frozenset({"", "nan", "NaN", "NA", "N/A", "null", "None"})
ID_MAX = 128  # the schemas' maxLength of event_id, order_id and customer_id
# epoch seconds closer to 1970-01-01 than this are refused unless asked for (Excel serial
# dates, days, ...): 1e6 s is 11.6 days
EPOCH_FLOOR = 1e6
_EXCEL_DAY0 = -25_569 * 86_400.0  # epoch seconds of Excel's day 0 (1899-12-30)
_EXCEL_2100 = 73_051  # Excel's serial date of 2100-01-01
_INTEGRAL = re.compile(r"(-?[0-9]+)\.0+")
# what splits a value of a text row in two (a row with more fields than the header)
_SPLIT = {"csv": "an unquoted comma", "tsv": "a tab", "whitespace": "a space"}
BATCH_ROWS = 65_536


class RowError(InputFileError):
    """A bad row (or column) of an import file: ``FILE:ROW: column X: message``.

    >>> str(RowError("o.csv", 7, "amount", "not a number: 'x'"))
    "o.csv:7: column amount: not a number: 'x'"
    >>> str(RowError("o.csv", None, "amount", "not in the file"))
    'o.csv: column amount: not in the file'
    """

    def __init__(self, path: str, row: int | None, column: str | None, message: str) -> None:
        super().__init__(path, row, column, message)
        where = f"{path}:{row}" if row else path
        col = f" column {column}:" if column else ""
        self.args = (f"{where}:{col} {message}",)
        self.row = row
        self.column = column

    def __str__(self) -> str:
        return str(self.args[0])


Reject = Callable[[RowError, dict[str, Any]], None]


def reject_writer(sink: IO[bytes]) -> Reject:
    """A :data:`Reject` that writes each bad row to ``sink`` as a JSON line.

    >>> import io
    >>> buf = io.BytesIO()
    >>> reject_writer(buf)(RowError("o.csv", 7, "amount", "not a number"), {"amount": "x"})
    >>> buf.getvalue()[:48]
    b'{"column":"amount","file":"o.csv","message":"o.c'
    """

    def reject(err: RowError, values: dict[str, Any]) -> None:
        record = {"file": err.path, "row": err.row, "column": err.column,
                  "message": str(err), "values": {k: str(v) for k, v in values.items()}}
        sink.write(codec.dumps(record) + b"\n")

    return reject


@dataclass(slots=True)
class RowCounts:
    """Rows read and rows rejected by an import (the importers add their own counts)."""

    rows: int = 0
    rejected: int = 0


def guess_format(path: Path) -> str:
    """The format implied by a file name.

    >>> [guess_format(Path(p)) for p in ("a.parquet", "a.tsv", "CDNOW_master.txt", "a.csv")]
    ['parquet', 'tsv', 'whitespace', 'csv']
    """
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".tsv":
        return "tsv"
    if suffix in (".txt", ".dat"):
        return "whitespace"
    return "csv"


def read_rows(path: Path, fmt: str, columns: list[str],
              bad: Reject | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row, {column: value})`` for each data row of ``path``, only ``columns``.

    A row that cannot be read (fewer or more fields than the header: a value
    with an unquoted comma is two fields) raises a :class:`RowError`, or, with
    ``bad``, is given to ``bad`` with the values it has, and the reading goes
    on. A file that cannot be read at all (missing, no header, a column not in
    it) always raises.

    >>> import tempfile, pathlib
    >>> src = pathlib.Path(tempfile.mkdtemp()) / "o.csv"
    >>> _ = src.write_text("a,b\\n1,x\\n2\\n3,z\\n4,1,5\\n")
    >>> skipped = []
    >>> list(read_rows(src, "csv", ["a", "b"], lambda err, v: skipped.append((err.row, v))))
    [(2, {'a': '1', 'b': 'x'}), (4, {'a': '3', 'b': 'z'})]
    >>> skipped
    [(3, {'a': '2'}), (5, {'a': '4', 'b': '1'})]
    """
    if fmt == "parquet":
        yield from _parquet(path, columns)
        return
    try:
        # undecodable bytes become lone surrogates, found per row below
        handle = path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")
    except OSError as exc:
        raise RowError(str(path), None, None, exc.strerror or str(exc)) from None
    with handle:
        if fmt == "whitespace":
            lines: Iterator[list[str]] = (line.split() for line in handle)
        else:
            lines = csv.reader(handle, delimiter="\t" if fmt == "tsv" else ",")
        header = next(lines, None)
        if header is None:
            raise RowError(str(path), None, None, "empty file (no header row)")
        for name in header:
            if (undecodable := _not_utf8(name)) is not None:
                raise RowError(str(path), 1, None, undecodable)
        index = _index(str(path), [h.strip() for h in header], columns)
        for number, fields in enumerate(lines, start=2):
            if not fields or not any(f.strip() for f in fields):
                continue  # blank line
            values = {name: fields[i].strip() for name, i in index.items() if i < len(fields)}
            err = None
            if len(fields) != len(header):
                hint = "" if len(fields) < len(header) else f" ({_SPLIT[fmt]} in a value?)"
                err = RowError(str(path), number, None,
                               f"{len(fields)} fields, the header has {len(header)}{hint}")
            for name, value in values.items():
                if err is None and (undecodable := _not_utf8(value)) is not None:
                    err = RowError(str(path), number, name, undecodable)
            if err is None:
                yield number, values
            elif bad is None:
                raise err
            else:
                bad(err, {name: _text(value) for name, value in values.items()})


# the times a datetime can hold (UTC): years 1 to 9999
FIRST_TS = datetime.min.replace(tzinfo=UTC).timestamp()
END_TS = datetime.max.replace(tzinfo=UTC).timestamp()  # exclusive
OUT_OF_RANGE = "must be a time in the years 1 to 9999 UTC"


def id_text(value: Any, missing: frozenset[str] = MISSING) -> str:
    """The id in a customer or order id cell. Raises ``ValueError`` for an empty or missing one.

    A whole number held as a float is that number (a Parquet float column's ``17850.0``),
    and so is text of the same form, digits, a point and zeros only (``17850.0`` in a CSV
    written from that column), so both give the live stream's ``17850``:

    >>> id_text(17850.0), id_text("17850.0"), id_text(" 17850.00 "), id_text("00001")
    ('17850', '17850', '17850', '00001')
    >>> id_text("17850.5"), id_text("1.0e4"), id_text("v1.0")  # not of that form: as they are
    ('17850.5', '1.0e4', 'v1.0')
    >>> id_text("NA")
    Traceback (most recent call last):
    ...
    ValueError: must not be a missing value, got 'NA'
    >>> id_text(float("nan")), id_text("")
    Traceback (most recent call last):
    ...
    ValueError: empty
    """
    if value is None:
        raise ValueError("empty")
    if isinstance(value, float):
        if math.isnan(value):
            raise ValueError("empty")
        if value.is_integer():
            return str(int(value))
    text = str(value).strip()
    if not text:
        raise ValueError("empty")
    if text in missing:
        raise ValueError(f"must not be a missing value, got {text!r}")
    if "." in text and (whole := _INTEGRAL.fullmatch(text)) is not None:
        return str(int(whole.group(1)))
    return text


def short_id(text: str) -> str:
    """A generated event or order id, shortened if it is longer than the schemas' 128 characters.

    A longer id becomes its first 95 characters, ``~`` and the first 32 hex digits of the
    SHA-256 of the whole id (UTF-8): 128 characters, the same for the same id.

    >>> short_id("c1@20260102T100000Z")
    'c1@20260102T100000Z'
    >>> long = short_id("x" * 120 + "@20160702T000000Z")
    >>> len(long), long[94:97], long == short_id("x" * 120 + "@20160702T000000Z")
    (128, 'x~d', True)
    """
    if len(text) <= ID_MAX:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{text[:ID_MAX - 33]}~{digest}"


def parse_time(value: Any, fmt: str | None, early_epoch: bool = False) -> float:
    """Epoch seconds of a cell; naive times are UTC. Raises ``ValueError``.

    With ``fmt="epoch"``, seconds within :data:`EPOCH_FLOOR` of 1970-01-01 are refused
    (Excel serial dates, days since 1970, ...) unless ``early_epoch``.

    >>> parse_time("19970101", "%Y%m%d"), parse_time("2017-01-01 11:53:26", None)
    (852076800.0, 1483271606.0)
    >>> parse_time(datetime(2017, 1, 1, 11, 53, 26), None), parse_time("1483271606", "epoch")
    (1483271606.0, 1483271606.0)
    >>> parse_time("9999-12-31T23:59:59-01:00", None)
    Traceback (most recent call last):
    ...
    ValueError: must be a time in the years 1 to 9999 UTC, got '9999-12-31T23:59:59-01:00'
    >>> parse_time("1767600000000", "epoch")
    Traceback (most recent call last):
    ...
    ValueError: must be a time in the years 1 to 9999 UTC, got '1767600000000' \
(epoch seconds; it looks like milliseconds: 2026-01-05T08:00:00Z)
    >>> parse_time("40513.35", "epoch")
    Traceback (most recent call last):
    ...
    ValueError: must be epoch seconds from 1970-01-12T13:46:40Z (or --early-epoch), \
got '40513.35' = 1970-01-01T11:15:13.350000Z; an Excel serial date? \
as one it is 2010-12-01T08:24:00Z
    >>> parse_time("40513.35", "epoch", early_epoch=True)
    40513.35
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif fmt == "epoch":
        seconds = float(value)
        if not math.isfinite(seconds):
            raise ValueError(f"not a time: {value!r}")
        if not FIRST_TS <= seconds < END_TS:
            raise ValueError(f"{OUT_OF_RANGE}, got {value!r} (epoch seconds{_unit(seconds)})")
        if not early_epoch and -EPOCH_FLOOR < seconds < EPOCH_FLOOR:
            raise ValueError(_early(value, seconds))
        return seconds
    elif value is None or str(value).strip() == "":
        raise ValueError("empty")
    elif fmt:
        moment = datetime.strptime(str(value).strip(), fmt)
    else:
        moment = datetime.fromisoformat(str(value).strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = moment.timestamp()
    if not FIRST_TS <= seconds < END_TS:  # e.g. 9999-12-31T23:59:59-01:00
        raise ValueError(f"{OUT_OF_RANGE}, got {value!r}")
    return seconds


def _early(value: Any, seconds: float) -> str:
    """Why epoch seconds this close to 1970 are refused, with the Excel reading if it fits.

    >>> _early("-5", -5.0)
    "must be epoch seconds from 1970-01-12T13:46:40Z (or --early-epoch), got '-5' = \
1969-12-31T23:59:55Z"
    """
    msg = (f"must be epoch seconds from {format_ts(EPOCH_FLOOR)} (or --early-epoch), "
           f"got {value!r} = {format_ts(seconds)}")
    if 1 <= seconds < _EXCEL_2100:  # Excel's serial dates count days from 1899-12-30
        msg += f"; an Excel serial date? as one it is {format_ts(_EXCEL_DAY0 + seconds * 86_400)}"
    return msg


def _unit(seconds: float) -> str:
    """A hint for epoch seconds out of range: the unit they would fit in, if any.

    >>> _unit(1767600000123456), _unit(1e30)
    ('; it looks like microseconds: 2026-01-05T08:00:00.123456Z', '')
    """
    for unit, per_second in (("milliseconds", 1e3), ("microseconds", 1e6), ("nanoseconds", 1e9)):
        if FIRST_TS <= seconds / per_second < END_TS:
            return f"; it looks like {unit}: {format_ts(seconds / per_second)}"
    return ""


def _not_utf8(text: str) -> str | None:
    """Why ``text`` (decoded with ``surrogateescape``) is not UTF-8, or None if it is.

    >>> _not_utf8(b"caf\\xe9".decode("utf-8", "surrogateescape")), _not_utf8("café")
    ('not UTF-8 text (byte 0xe9 at character 4)', None)
    """
    for i, char in enumerate(text):
        if "\udc80" <= char <= "\udcff":
            return f"not UTF-8 text (byte 0x{ord(char) - 0xDC00:02x} at character {i + 1})"
    return None


def _text(value: str) -> str:
    """``value`` with each undecodable byte shown as U+FFFD (for a rejects file)."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _index(path: str, header: list[str], columns: list[str]) -> dict[str, int]:
    for name in columns:
        if name not in header:
            raise RowError(path, None, name, f"not in the file (columns: {', '.join(header)})")
    return {name: header.index(name) for name in columns}


def _parquet(path: Path, columns: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise RowError(
            str(path), None, None, "reading Parquet needs pyarrow: pip install 'streamseg[import]'"
        ) from None
    try:
        pf = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise RowError(str(path), None, None, f"not a readable Parquet file ({exc})") from None
    _index(str(path), list(pf.schema_arrow.names), columns)
    number = 1
    for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=columns):
        values = [batch.column(name).to_pylist() for name in columns]
        for row in zip(*values, strict=True):
            yield number, dict(zip(columns, row, strict=True))
            number += 1
