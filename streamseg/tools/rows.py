"""Rows of a tabular order file (CSV, TSV, whitespace-separated text, Parquet), cells raw.

Each reader yields ``(row, values)``: ``row`` is the 1-based line number in a
text file (the header is line 1, so the first data row is line 2) or the
1-based data row number in a Parquet file; ``values`` maps the requested
column names to raw values (text for text files, Python values for Parquet).

Parquet needs the ``streamseg[import]`` extra (pyarrow). What a cell holds (an id, a time) is
read by :mod:`streamseg.tools.cells`.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from streamseg import codec
from streamseg.errors import InputFileError

FORMATS = ("csv", "tsv", "whitespace", "parquet")
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


def _conversion_hint(name: str, header: list[str]) -> str:
    """A hint when ``COLUMN:WORD`` names no column but ``COLUMN`` does: ``--attribute``'s
    ``:CONVERT`` with an unknown conversion is read as part of the column name.

    >>> _conversion_hint("age:float", ["c", "age"])
    "; 'float' is not a conversion (text, int, number, bool, slug)"
    >>> _conversion_hint("a:b", ["c"])
    ''
    """
    from streamseg.tools.profiles import CONVERTERS  # (profiles imports this module)

    column, colon, word = name.rpartition(":")
    if not colon or column not in header:
        return ""
    return f"; {word!r} is not a conversion ({', '.join(CONVERTERS)})"


def _index(path: str, header: list[str], columns: list[str]) -> dict[str, int]:
    for name in columns:
        if name not in header:
            raise RowError(path, None, name, f"not in the file (columns: {', '.join(header)})"
                           + _conversion_hint(name, header))
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
