"""A cell of an import file read as what it holds: a customer or order id, or a time.

The importers (:mod:`streamseg.tools.importer`, :mod:`streamseg.tools.profiles`) read
rows with :func:`streamseg.tools.rows.read_rows` and turn each cell into an event's
value here: :func:`id_text` (a whole number held as a float is that number; a
:data:`MISSING` value is refused), :func:`short_id` (a generated id kept within the
schemas' 128 characters) and :func:`parse_time` (epoch seconds, naive times UTC, within
the years 1 to 9999; epoch seconds near 1970 refused unless asked for). Each raises
``ValueError``; the importer reports it as the row's :class:`~streamseg.tools.rows.RowError`.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC, date, datetime
from typing import Any

from streamseg.engine.events import format_ts

# cell values that mean "unknown" (besides those given with --missing): an id or number column
# with one is a bad row, an attribute column with one leaves the attribute out
MISSING = frozenset({"", "nan", "NaN", "NA", "N/A", "null", "None"})
ID_MAX = 128  # the schemas' maxLength of event_id, order_id and customer_id
# epoch seconds closer to 1970-01-01 than this are refused unless asked for (Excel serial
# dates, days, ...): 1e6 s is 11.6 days
EPOCH_FLOOR = 1e6
_EXCEL_DAY0 = -25_569 * 86_400.0  # epoch seconds of Excel's day 0 (1899-12-30)
_EXCEL_2100 = 73_051  # Excel's serial date of 2100-01-01
_INTEGRAL = re.compile(r"(-?[0-9]+)\.0+")

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
    >>> parse_time("19970101", "epoch")
    Traceback (most recent call last):
    ...
    ValueError: must be epoch seconds, got '19970101' = 1970-08-20T03:15:01Z; it looks like \
a date YYYYMMDD (1997-01-01): use --time-format %Y%m%d (or --early-epoch to read it as seconds)
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
        day = _yyyymmdd(seconds)
        if not early_epoch and day is not None:
            raise ValueError(f"must be epoch seconds, got {value!r} = {format_ts(seconds)}; it "
                             f"looks like a date YYYYMMDD ({day}): use --time-format %Y%m%d "
                             "(or --early-epoch to read it as seconds)")
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


def _yyyymmdd(seconds: float) -> str | None:
    """The date that epoch ``seconds`` spell as YYYYMMDD digits (1900-2099), if they do:
    an 8-digit date column read with ``--time-format epoch`` gives times in 1970-1973.

    >>> _yyyymmdd(19970101.0), _yyyymmdd(1483271606.0), _yyyymmdd(19971301.0)
    ('1997-01-01', None, None)
    """
    if not seconds.is_integer() or not 19_000_101 <= seconds <= 20_991_231:
        return None
    try:
        return datetime.strptime(str(int(seconds)), "%Y%m%d").date().isoformat()
    except ValueError:
        return None


def _unit(seconds: float) -> str:
    """A hint for epoch seconds out of range: the unit they would fit in, if any.

    >>> _unit(1767600000123456), _unit(1e30)
    ('; it looks like microseconds: 2026-01-05T08:00:00.123456Z', '')
    """
    for unit, per_second in (("milliseconds", 1e3), ("microseconds", 1e6), ("nanoseconds", 1e9)):
        if FIRST_TS <= seconds / per_second < END_TS:
            return f"; it looks like {unit}: {format_ts(seconds / per_second)}"
    return ""
