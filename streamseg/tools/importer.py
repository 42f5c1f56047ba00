"""``streamseg import``: an order or transaction file -> purchase events (JSON lines, by time).

A column mapping names the customer, timestamp, amount and (optionally) order
id columns; instead of an amount, a unit price column (``price``): a line's
amount is then price x quantity (the quantity column, or 1 without one), as in
files such as Online Retail (``Quantity``, ``UnitPrice``). Line items of one
order become one purchase: the amounts are summed, the time is the earliest
line's, quantities (per product) become ``items``. With no order-id column,
the rows of one customer with the same timestamp are one purchase (order id
``<customer>@<time>``), which is how date-only files such as CDNOW read: one
purchase per customer per day. Lines of one order id more than ``order_window``
(24 h) apart are separate purchases (receipt numbers come round again): the earliest
keeps the order id as event id, a later one gets ``<order>@<time>``. The lines of an
order are netted (a negative line is a discount); an order netting to less than 0, or to
0 with a negative line, is a return or a cancellation: a bad row. An empty customer or
order id, or a missing-value token (``NA``, ``null``, ... and ``missing``), is a bad row;
an id written as a whole number with a zero fraction (``17850.0``) is that number, as a
Parquet float column gives it. Generated ids longer than 128 characters are shortened
(:func:`~streamseg.tools.cells.short_id`).

Times: RFC 3339 / ISO 8601 text by default, or ``--time-format`` (a
``strptime`` format such as ``%Y%m%d``, or ``epoch`` for seconds, refusing values
within 1e6 s of 1970 unless ``early_epoch``); a time with no UTC offset is taken as
UTC. Every event is checked with the worker's
:class:`~streamseg.engine.validate.Validator` (``streamseg/schemas/purchase.schema.json``
plus FX and time-window rules). A bad row stops the import with
``FILE:ROW: column X: message`` (exit 2), or with ``rejects`` it is written there
(JSON lines) and skipped, and so is the rest of its order (one more rejects line at the
order's first row) unless the row's amount reads as 0: no purchase is imported with
another amount than its lines give.

Examples
--------
>>> import io, tempfile, pathlib
>>> f = pathlib.Path(tempfile.mkdtemp()) / "orders.csv"
>>> _ = f.write_text("cust,when,total,order\\nc1,2026-01-02T10:00:00Z,5.5,o1\\n"
...                  "c1,2026-01-02T10:00:00Z,4.5,o1\\nc2,2026-01-01,3,o2\\n")
>>> m = Mapping(customer="cust", time="when", amount="total", order="order", currency="EUR")
>>> out = io.BytesIO()
>>> run(f, "csv", m, Settings(), out).events
2
>>> print(out.getvalue().decode().strip())
{"amount":3.0,"currency":"EUR","customer_id":"c2","event_id":"o2","order_id":"o2","ts":"2026-01-01T00:00:00Z","type":"purchase"}
{"amount":10.0,"currency":"EUR","customer_id":"c1","event_id":"o1","order_id":"o1","ts":"2026-01-02T10:00:00Z","type":"purchase"}
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import IO, Any

from streamseg import codec
from streamseg.config import DAY, Settings
from streamseg.engine.events import format_ts
from streamseg.engine.features import CHANNELS
from streamseg.engine.validate import Invalid, Validator
from streamseg.tools.cells import (
    END_TS,
    FIRST_TS,
    MISSING,
    OUT_OF_RANGE,
    id_text,
    parse_time,
    short_id,
)
from streamseg.tools.orderlines import (
    Counts,
    Mapping,
    Order,
    amount_cell,
    quantity_cell,
    stamp,
    text_cell,
)
from streamseg.tools.rows import (
    Reject,
    RowError,
    guess_format,
    read_rows,
    reject_writer,
)


class Importer:
    """Folds rows into orders; :meth:`events` gives the validated purchase events."""

    def __init__(self, path: str, mapping: Mapping, settings: Settings, reject: Reject | None):
        self.path, self.m, self.reject = path, mapping, reject
        self.validator = Validator(settings)
        # order key -> its purchases (more than one: the id reused further apart in time
        # than the order window)
        self.orders: dict[str, list[Order]] = {}
        self.counts = Counts()
        self._id = partial(id_text, missing=mapping.missing)  # a customer or order id cell
        self._amount = partial(amount_cell, missing=mapping.missing)  # --missing counts here too
        self._quantity = partial(quantity_cell, missing=mapping.missing)
        # order key -> the first bad row of that order (with --rejects): the order is not
        # imported without it
        self.broken: dict[str, RowError] = {}

    def _fail(self, err: RowError, values: dict[str, Any]) -> None:
        if self.reject is None:
            raise err
        self.counts.rejected += 1
        self.reject(err, values)

    def _cell(self, row: int, values: dict[str, Any], col: str, parse: Callable[[Any], Any]) -> Any:
        try:
            return parse(values[col])
        except (ValueError, TypeError) as exc:
            msg = str(exc) if "empty" in str(exc) or "must" in str(exc) else (
                f"cannot read {values[col]!r} ({exc})")
            raise RowError(self.path, row, col, msg) from None

    def bad(self, err: RowError, values: dict[str, Any]) -> None:
        """A row the reader could not split into columns: stop, or reject it."""
        self.counts.rows += 1
        self._fail(err, values)

    def add(self, row: int, values: dict[str, Any]) -> None:
        """Fold one row into its order (or reject it)."""
        self.counts.rows += 1
        try:
            self._add(row, values)
        except RowError as err:
            self._fail(err, values)
            key = self._key_of(row, values)
            if key is not None and not self._adds_nothing(values):
                self.broken.setdefault(key, err)

    def _adds_nothing(self, values: dict[str, Any]) -> bool:
        """Whether a bad row's amount (or unit price) reads as exactly 0: leaving it out
        leaves its order's amount as it is (Complete Journey's lines of quantity 0)."""
        try:
            return amount_cell(values[str(self.m.amount or self.m.price)]) == 0.0
        except (ValueError, TypeError, KeyError):
            return False

    def _key_of(self, row: int, values: dict[str, Any]) -> str | None:
        """The order key of a bad row, when its order can still be told (else None)."""
        m = self.m
        try:
            if m.order:
                return str(self._cell(row, values, m.order, self._id))
            customer = self._cell(row, values, m.customer, self._id)
            ts = self._time(row, values)
        except RowError:
            return None
        return f"{customer}@{stamp(ts)}"

    def _time(self, row: int, values: dict[str, Any]) -> float:
        """The row's time cell in UTC seconds, moved by ``--shift-days``."""
        m = self.m
        return float(self._cell(row, values, m.time,
                                lambda v: parse_time(v, m.time_format, m.early_epoch))
                     ) + m.shift_days * DAY

    def _add(self, row: int, values: dict[str, Any]) -> None:
        m = self.m
        customer = self._cell(row, values, m.customer, self._id)
        ts = self._time(row, values)
        if not FIRST_TS <= ts < END_TS:
            raise RowError(self.path, row, m.time, f"{OUT_OF_RANGE} after --shift-days "
                                                   f"{m.shift_days:g}, got {values[m.time]!r}")
        # a line's amount, or its unit price (times the quantity, below)
        money = self._cell(row, values, str(m.amount if m.price is None else m.price),
                           self._amount)
        currency = m.currency or self._cell(row, values, str(m.currency_column),
                                            lambda v: text_cell(v).upper())
        channel = m.channel
        if m.channel_column:
            channel = self._cell(row, values, m.channel_column, lambda v: text_cell(v).lower())
            if channel not in CHANNELS:
                raise RowError(self.path, row, m.channel_column,
                               f"{channel!r} is not one of {', '.join(CHANNELS)}")
        qty = self._cell(row, values, m.quantity, self._quantity) if m.quantity else None
        if qty is not None and qty < 0 and m.price is None and money > 0:
            raise RowError(self.path, row, m.quantity,
                           f"a negative quantity ({qty}) with a positive amount ({money:g}): "
                           "a returned line needs a negative amount")
        amount = money if m.price is None or qty is None else money * qty
        product = self._cell(row, values, m.product, text_cell) if m.product else f"row{row}"
        key = (self._cell(row, values, m.order, self._id) if m.order
               else f"{customer}@{stamp(ts)}")
        parts = self.orders.get(key)
        if parts is None:
            parts = self.orders[key] = []
        # the purchase of this order id the line belongs to: the first one that stays within
        # the order window with it (a till's receipt numbers come round again)
        for order in parts:
            if max(order.last, ts) - min(order.ts, ts) <= m.order_window:
                break
        else:
            order = None
        if order is None:
            order = Order(customer, ts, currency, channel, row, values)
            parts.append(order)
        else:
            self._same(row, key, order, customer, currency, channel)
            order.ts, order.last = min(order.ts, ts), max(order.last, ts)
        order.amounts.append(amount)
        order.negative = order.negative or amount < 0 or (qty is not None and qty < 0)
        if qty is not None:
            order.items[product] = order.items.get(product, 0) + qty

    def _same(self, row: int, key: str, order: Order, customer: str, currency: str,
              channel: str | None) -> None:
        m = self.m
        for col, have, got in ((m.customer, order.customer, customer),
                               (m.currency_column, order.currency, currency),
                               (m.channel_column, order.channel, channel)):
            if have != got:
                raise RowError(self.path, row, col,
                               f"order {key} has {have!r} at row {order.row}, this row {got!r}")

    def _purchases(self) -> list[tuple[str, str, Order]]:
        """``(event id, order id, order)`` of every purchase, by (time, customer, event id).

        An order id whose lines fell into several purchases (further apart than the order
        window) keeps its id for the earliest; each later one gets ``<order>@<time>``.
        Generated ids longer than 128 characters are shortened (:func:`short_id`).
        """
        found: list[tuple[str, str, Order]] = []
        for key, parts in self.orders.items():
            err = self.broken.get(key)
            if err is not None:  # a line of this order was bad: none of it is imported
                for o in parts:
                    self._fail(RowError(self.path, o.row, err.column,
                                        f"order {key}: row {err.row} of this order is bad "
                                        "(its own line in the rejects): the order is not "
                                        "imported without it"), o.values)
                continue
            order_id = key if self.m.order else short_id(key)
            parts.sort(key=lambda o: (o.ts, o.row))
            for i, o in enumerate(parts):
                event_id = order_id if i == 0 else short_id(f"{key}@{stamp(o.ts)}")
                found.append((event_id, order_id, o))
        found.sort(key=lambda p: (p[2].ts, p[2].customer, p[0]))
        return found

    def events(self) -> list[dict[str, Any]]:
        """The purchase events sorted by (time, customer, event id), each validated.

        The lines of an order are netted: a negative line (a discount) lowers the amount.
        An order that nets to less than 0, or to 0 with a negative line, is a return or a
        cancellation: a bad row (at its first row); one of zero-amount lines only is a
        purchase of 0.
        """
        out: list[dict[str, Any]] = []
        money = self.m.amount or self.m.price
        for event_id, order_id, o in self._purchases():
            amount = round(math.fsum(o.amounts), 6)
            if amount < 0 or (amount == 0 and o.negative):
                self._fail(RowError(self.path, o.row, money,
                                    f"order {event_id}: its lines net to {amount:g}, a return or a "
                                    "cancellation (the engine has no returns)"), o.values)
                continue
            event: dict[str, Any] = {
                "event_id": event_id, "customer_id": o.customer, "type": "purchase",
                "ts": format_ts(o.ts), "order_id": order_id,
                "amount": amount, "currency": o.currency,
            }
            if o.channel is not None:
                event["channel"] = o.channel
            items = [{"product_id": p, "quantity": q} for p, q in o.items.items() if q > 0]
            if items:  # products netted to 0 or less (returned, taken off) are not items
                event["items"] = items
            res = self.validator.check_record("purchase", None, event)
            if isinstance(res, Invalid):
                err = RowError(self.path, o.row, self.m.column_of(res.field),
                               f"order {event_id}: {res.reason}: {res.message}")
                self._fail(err, o.values)
                continue
            out.append(event)
            if self.m.order is not None and event_id != order_id:
                self.counts.split += 1
        self.counts.events = len(out)
        self.counts.customers = len({e["customer_id"] for e in out})
        return out


def run(path: Path, fmt: str, mapping: Mapping, settings: Settings, out: IO[bytes],
        rejects: IO[bytes] | None = None) -> Counts:
    """Import ``path`` into JSON lines on ``out``; bad rows raise, or go to ``rejects``."""
    reject = None if rejects is None else reject_writer(rejects)

    imp = Importer(str(path), mapping, settings, reject)
    for row, values in read_rows(path, fmt, mapping.columns(), imp.bad):
        imp.add(row, values)
    for event in imp.events():
        out.write(codec.dumps(event) + b"\n")
    return imp.counts


def cli(args: Any, settings: Settings) -> int:
    """``streamseg import FILE --customer C --time T --amount A|--price P [--order O] ...``."""
    from streamseg.replay import open_out

    mapping = Mapping(
        customer=args.customer, time=args.time, amount=args.amount, price=args.price,
        order=args.order,
        time_format=args.time_format, currency=args.currency,
        currency_column=args.currency_column, channel=args.channel,
        channel_column=args.channel_column, quantity=args.quantity, product=args.product,
        shift_days=args.shift_days, missing=MISSING | frozenset(args.missing or ()),
        order_window=args.order_window * 3600.0, early_epoch=args.early_epoch,
    )
    fmt = args.format or guess_format(args.file)
    with open_out(args.out) as out, open_out(args.rejects) as rejects:
        assert out is not None
        counts = run(args.file, fmt, mapping, settings, out, rejects)
    split = f" split={counts.split}" if counts.split else ""
    print(f"imported {args.file}: rows={counts.rows} rejected={counts.rejected} "
          f"purchases={counts.events}{split} customers={counts.customers} -> {args.out}",
          file=sys.stderr)
    return 0
