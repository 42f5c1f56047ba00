"""What a row of an order file holds for ``streamseg import``: the column mapping and its cells.

:class:`Mapping` names the columns (or fixed values); :class:`Order` is one purchase
under construction from its line items; :class:`Counts` is what an import did; the
``*_cell`` functions read one cell each and raise ``ValueError`` with the message a
bad row gets (``FILE:ROW: column X: message``, :class:`~streamseg.tools.rows.RowError`).
:mod:`streamseg.tools.importer` folds the rows into orders and validates the events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from streamseg.engine.events import format_ts
from streamseg.tools.cells import MISSING
from streamseg.tools.rows import RowCounts

ORDER_WINDOW = 24 * 3600.0  # lines of one order id further apart than this are two purchases


@dataclass(frozen=True, slots=True)
class Mapping:
    """Which column holds what (``currency`` / ``channel``: a fixed value instead of a column)."""

    customer: str
    time: str
    amount: str | None = None  # a line's (or a one-line order's) total ...
    order: str | None = None
    time_format: str | None = None
    currency: str | None = None
    currency_column: str | None = None
    channel: str | None = None
    channel_column: str | None = None
    quantity: str | None = None
    product: str | None = None
    shift_days: float = 0.0
    price: str | None = None  # ... or a unit price: the line's amount is price x quantity
    missing: frozenset[str] = MISSING  # customer / order id cells that mean "unknown"
    order_window: float = ORDER_WINDOW  # seconds
    early_epoch: bool = False  # take epoch seconds near 1970 as they are

    def __post_init__(self) -> None:
        if (self.amount is None) == (self.price is None):
            raise ValueError("a mapping names exactly one of amount and price")

    def columns(self) -> list[str]:
        """The columns to read, in a fixed order."""
        names = [self.customer, self.time, self.amount, self.price, self.order,
                 self.currency_column,
                 self.channel_column, self.quantity, self.product]
        return list(dict.fromkeys(n for n in names if n))

    def column_of(self, field_name: str | None) -> str | None:
        """The input column behind an event field (for error messages)."""
        top = (field_name or "").split(".")[0]
        return {
            "customer_id": self.customer, "ts": self.time, "amount": self.amount or self.price,
            "order_id": self.order, "event_id": self.order,
            "currency": self.currency_column or "--currency",
            "channel": self.channel_column or "--channel", "items": self.quantity,
        }.get(top, field_name)


@dataclass(slots=True)
class Order:
    """One purchase under construction from its line items."""

    customer: str
    ts: float  # the earliest line's time
    currency: str
    channel: str | None
    row: int
    values: dict[str, Any]  # the first row's (for a rejects file)
    last: float = 0.0  # the latest line's time
    amounts: list[float] = field(default_factory=list)
    items: dict[str, int] = field(default_factory=dict)
    negative: bool = False  # a line with a negative amount (a discount, a return)

    def __post_init__(self) -> None:
        self.last = self.ts


@dataclass(slots=True)
class Counts(RowCounts):
    """What an import did."""

    events: int = 0
    customers: int = 0
    split: int = 0  # purchases of an order id used again (further than the order window apart)


def text_cell(value: Any) -> str:
    """A text cell, stripped (a whole float such as Parquet's ``17850.0`` is that number);
    ``ValueError("empty")`` for an empty one.

    >>> text_cell(" web "), text_cell(17850.0)
    ('web', '17850')
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = "" if value is None else str(value).strip()
    if not text:
        raise ValueError("empty")
    return text


def stamp(ts: float) -> str:
    """``20260102T100000Z``: a time in generated ids.

    >>> stamp(0.0)
    '19700101T000000Z'
    """
    return format_ts(ts).replace("-", "").replace(":", "")


_MISSING_ANY_CASE = frozenset(m.lower() for m in MISSING)


def number_cell(value: Any, missing: frozenset[str] = MISSING) -> float:
    """A number cell; ``ValueError("empty")`` for an empty one, and one that names a missing
    value (``missing``: the import's ``--missing`` tokens and
    :data:`~streamseg.tools.cells.MISSING` in any case: ``NA``, ``null``, ``none``, ...),
    as the id cells.

    >>> number_cell(" 2.5 ")
    2.5
    >>> number_cell("NULL")
    Traceback (most recent call last):
    ...
    ValueError: must not be a missing value, got 'NULL'
    """
    if isinstance(value, int | float):
        return float(value)
    text = "" if value is None else str(value).strip()
    if not text:
        raise ValueError("empty")
    if text in missing or text.lower() in _MISSING_ANY_CASE:
        raise ValueError(f"must not be a missing value, got {text!r}")
    return float(text)


def amount_cell(value: Any, missing: frozenset[str] = MISSING) -> float:
    """A line's amount or unit price: a finite number (negative: a discount or a return).

    >>> amount_cell("4.00"), amount_cell(-2)
    (4.0, -2.0)
    """
    number = number_cell(value, missing)
    if not math.isfinite(number):
        raise ValueError(f"must be a finite number, got {value!r}")
    return number


def quantity_cell(value: Any, missing: frozenset[str] = MISSING) -> int:
    """A line's quantity: a whole number other than 0; a negative one (units returned or
    taken off, Online Retail's ``-1`` discount line) nets against the order's others."""
    number = number_cell(value, missing)
    if not number.is_integer() or number == 0:
        raise ValueError(f"must be a whole number other than 0, got {value!r}")
    return int(number)
