"""``streamseg import --profiles``: a customer table (CSV/Parquet) -> profile records.

Each row of a demographics (or CRM) file becomes one ``customer-profiles``
record (``streamseg/schemas/customer-profile.schema.json``): the customer id
column, the event time (a fixed ``--at`` time, or a ``--time`` column) and the
attributes, each mapped from a column with ``ATTRIBUTE=COLUMN[:CONVERT]``:

* ``text`` (default): the cell as text (``1.0`` -> ``1``);
* ``int``: a whole number, a trailing ``+`` dropped (``5+`` -> 5, for open bands);
* ``number``: a number;
* ``bool``: true/false, yes/no, y/n, 1/0;
* ``slug``: lowercase, runs of other characters -> ``_`` (``Probable Renter`` ->
  ``probable_renter``), for the enumerated known attributes.

An empty cell (or one of the ``missing`` tokens) leaves the attribute out of the
record: it is not a removal (a removal is a ``null`` sent on the topic). A row with no
attribute left gives no record (counted as ``empty``). Every record is checked with the
worker's :class:`~streamseg.engine.validate.Validator`; a bad row stops the import with
``FILE:ROW: column X: message``, or with ``rejects`` it is written there and skipped.
The event id is ``profile:<customer>@<time>``: importing the same file again at the same
time gives the same ids (the worker skips them as duplicates).

Examples
--------
>>> import io, tempfile, pathlib
>>> f = pathlib.Path(tempfile.mkdtemp()) / "demo.csv"
>>> _ = f.write_text("hh,age,size,own\\n7,45-54,5+,Probable Renter\\n8,,2,\\n")
>>> m = ProfileMapping(customer="hh", at="2017-01-01T00:00:00Z", attributes=parse_attributes(
...     ["age_band=age", "household_size=size:int", "home_ownership=own:slug"]))
>>> out = io.BytesIO()
>>> run(f, "csv", m, Settings(), out)
ProfileCounts(rows=2, rejected=0, empty=0, records=2, customers=2)
>>> print(out.getvalue().decode().strip())  # doctest: +NORMALIZE_WHITESPACE
{"attributes":{"age_band":"45-54","home_ownership":"probable_renter","household_size":5},\
"customer_id":"7","event_id":"profile:7@20170101T000000Z","ts":"2017-01-01T00:00:00Z","type":"profile"}
{"attributes":{"household_size":2},"customer_id":"8","event_id":"profile:8@20170101T000000Z",\
"ts":"2017-01-01T00:00:00Z","type":"profile"}
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from streamseg import codec
from streamseg.config import Settings
from streamseg.engine.events import format_ts
from streamseg.engine.validate import Invalid, Validator
from streamseg.errors import InputFileError
from streamseg.tools.cells import MISSING, id_text, parse_time, short_id
from streamseg.tools.rows import RowCounts, RowError, read_rows, reject_writer

_SLUG = re.compile(r"[^a-z0-9]+")
_WHOLE = re.compile(r"\s*([0-9]+)\s*\+?\s*")
_TRUE, _FALSE = frozenset({"true", "yes", "y", "1"}), frozenset({"false", "no", "n", "0"})


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _int(value: Any) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer():
        return int(value)
    match = _WHOLE.fullmatch(str(value))
    if match is None:
        raise ValueError(f"not a whole number: {value!r}")
    return int(match.group(1))


def _number(value: Any) -> float | int:
    number = value if isinstance(value, int | float) else float(str(value).strip())
    if isinstance(number, bool) or not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    return number


def _bool(value: Any) -> bool:
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _slug(value: Any) -> str:
    return _SLUG.sub("_", _text(value).lower()).strip("_")


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "text": _text, "int": _int, "number": _number, "bool": _bool, "slug": _slug,
}


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute of the records: its name, source column and converter name."""

    name: str
    column: str
    convert: str = "text"


def parse_attributes(specs: list[str]) -> list[Attribute]:
    """``ATTRIBUTE=COLUMN[:CONVERT]`` options -> :class:`Attribute` (raises ``InputFileError``).

    >>> parse_attributes(["household_size=household_size:int", "x_comp=household_comp"])[0]
    Attribute(name='household_size', column='household_size', convert='int')
    >>> parse_attributes(["x_t=a:b"])[0]  # not a conversion: part of the column name
    Attribute(name='x_t', column='a:b', convert='text')
    >>> parse_attributes(["age"])
    Traceback (most recent call last):
    ...
    streamseg.errors.InputFileError: --attribute:1: 'age' is not ATTRIBUTE=COLUMN[:CONVERT]
    """
    out: list[Attribute] = []
    for i, spec in enumerate(specs, start=1):
        name, eq, rest = spec.partition("=")
        column, _, convert = rest.rpartition(":")
        if convert not in CONVERTERS:  # no conversion (a column name may hold a ':')
            column, convert = rest, "text"
        if not eq or not name.strip() or not column.strip():
            raise InputFileError("--attribute", i, None,
                                 f"{spec!r} is not ATTRIBUTE=COLUMN[:CONVERT]")
        out.append(Attribute(name.strip(), column.strip(), convert))
    return out


@dataclass(frozen=True, slots=True)
class ProfileMapping:
    """Customer column, time (fixed ``at`` or a ``time`` column) and the attributes."""

    customer: str
    attributes: list[Attribute]
    at: str | None = None
    time: str | None = None
    time_format: str | None = None
    missing: frozenset[str] = MISSING
    early_epoch: bool = False

    def columns(self) -> list[str]:
        names = [self.customer, self.time, *(a.column for a in self.attributes)]
        return list(dict.fromkeys(n for n in names if n))


@dataclass(slots=True)
class ProfileCounts(RowCounts):
    """What a profile import did."""

    empty: int = 0
    records: int = 0
    customers: int = 0


@dataclass(slots=True)
class ProfileImporter:
    """Rows -> validated profile records, sorted by (time, customer)."""

    path: str
    m: ProfileMapping
    validator: Validator
    reject: Callable[[RowError, dict[str, Any]], None] | None = None
    counts: ProfileCounts = field(default_factory=ProfileCounts)
    records: dict[str, tuple[float, int, dict[str, Any]]] = field(default_factory=dict)

    def add(self, row: int, values: dict[str, Any]) -> None:
        try:
            self._add(row, values)
        except RowError as err:
            self.bad(err, values)
        else:
            self.counts.rows += 1

    def bad(self, err: RowError, values: dict[str, Any]) -> None:
        """A bad row (also one the reader could not split): stop, or reject it."""
        self.counts.rows += 1
        if self.reject is None:
            raise err
        self.counts.rejected += 1
        self.reject(err, values)

    def _blank(self, value: Any) -> bool:
        return value is None or (isinstance(value, float) and math.isnan(value)) or (
            _text(value) in self.m.missing)

    def _add(self, row: int, values: dict[str, Any]) -> None:
        m = self.m
        try:
            customer = id_text(values[m.customer], m.missing)
        except ValueError as exc:
            raise RowError(self.path, row, m.customer, str(exc)) from None
        try:
            ts = (parse_time(values[m.time], m.time_format, m.early_epoch) if m.time
                  else parse_time(m.at, None))
        except (ValueError, TypeError) as exc:
            raise RowError(self.path, row, m.time or "--at", f"bad time: {exc}") from None
        attributes: dict[str, Any] = {}
        for a in m.attributes:
            raw = values[a.column]
            if self._blank(raw):
                continue
            try:
                attributes[a.name] = CONVERTERS[a.convert](raw)
            except (ValueError, TypeError) as exc:
                raise RowError(self.path, row, a.column, str(exc)) from None
        if not attributes:
            self.counts.empty += 1
            return
        stamp = format_ts(ts).replace("-", "").replace(":", "")
        event_id = short_id(f"profile:{customer}@{stamp}")
        if event_id in self.records:
            first = self.records[event_id][1]
            raise RowError(self.path, row, m.customer,
                           f"customer {customer} has a row at the same time already (row {first})")
        record = {"event_id": event_id, "customer_id": customer, "type": "profile",
                  "ts": format_ts(ts), "attributes": attributes}
        res = self.validator.check_record("profile", None, record)
        if isinstance(res, Invalid):
            raise RowError(self.path, row, self._column(res.field), f"{res.reason}: {res.message}")
        self.records[event_id] = (ts, row, record)

    def _column(self, field_name: str | None) -> str | None:
        name = (field_name or "").removeprefix("attributes.")
        for a in self.m.attributes:
            if a.name == name:
                return a.column
        return {"customer_id": self.m.customer, "ts": self.m.time or "--at"}.get(
            name, field_name)

    def output(self) -> list[dict[str, Any]]:
        ordered = sorted(self.records.values(), key=lambda r: (r[0], r[2]["customer_id"]))
        out = [rec for _, _, rec in ordered]
        self.counts.records = len(out)
        self.counts.customers = len({r["customer_id"] for r in out})
        return out


def run(path: Path, fmt: str, mapping: ProfileMapping, settings: Settings, out: IO[bytes],
        rejects: IO[bytes] | None = None) -> ProfileCounts:
    """Import ``path`` into profile records (JSON lines on ``out``)."""
    reject = None if rejects is None else reject_writer(rejects)

    imp = ProfileImporter(str(path), mapping, Validator(settings), reject)
    for row, values in read_rows(path, fmt, mapping.columns(), imp.bad):
        imp.add(row, values)
    for record in imp.output():
        out.write(codec.dumps(record) + b"\n")
    return imp.counts


def cli(args: Any, settings: Settings, fmt: str) -> int:
    """``streamseg import FILE --profiles --customer C (--at T | --time COL) --attribute ...``."""
    from streamseg.replay import open_out

    if bool(args.at) == bool(args.time) or not args.attribute:
        print("streamseg import: error: --profiles needs --customer, one of --at TIME or "
              "--time COLUMN, and at least one --attribute ATTRIBUTE=COLUMN[:CONVERT]",
              file=sys.stderr)
        return 2
    mapping = ProfileMapping(
        customer=args.customer, attributes=parse_attributes(args.attribute), at=args.at,
        time=args.time, time_format=args.time_format,
        missing=MISSING | frozenset(args.missing or ()), early_epoch=args.early_epoch,
    )
    with open_out(args.out) as out, open_out(args.rejects) as rejects:
        assert out is not None
        counts = run(args.file, fmt, mapping, settings, out, rejects)
    print(f"imported {args.file}: rows={counts.rows} rejected={counts.rejected} "
          f"empty={counts.empty} profiles={counts.records} customers={counts.customers} "
          f"-> {args.out}", file=sys.stderr)
    return 0
