"""Subcommands ``import`` and ``quality`` (issue 8); heavy imports happen only when they run."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from streamseg.config import Settings
from streamseg.engine.features import CHANNELS
from streamseg.errors import InputFileError

COMMANDS = ("import", "quality")
FORMATS = ("csv", "tsv", "whitespace", "parquet")


def add_parsers(sub: Any) -> None:
    """Register ``import`` and ``quality`` on the main parser's subparsers."""
    p = sub.add_parser("import", help="CSV/Parquet orders -> purchase events, or a customer "
                       "table -> profile records (--profiles) (JSON lines)")
    p.add_argument("file", type=Path)
    p.add_argument("--customer", required=True, help="customer id column")
    p.add_argument("--time", help="timestamp column (orders: required; profiles: or --at)")
    money = p.add_mutually_exclusive_group()
    money.add_argument("--amount", help="amount column (a line's or an order's total; orders)")
    money.add_argument("--price", help="unit price column (orders): a line's amount is price x "
                       "--quantity (x 1 without a quantity column)")
    p.add_argument("--order", help="order id column (lines of one order -> one purchase); "
                   "without it: one purchase per customer and timestamp")
    p.add_argument("--order-window", type=_hours, default=24.0, metavar="HOURS",
                   help="lines of one order id further apart in time than this are separate "
                   "purchases (default 24; 'inf': never)")
    p.add_argument("--time-format", help="strptime format (e.g. %%Y%%m%%d) or 'epoch' "
                   "(default ISO 8601; no offset = UTC)")
    p.add_argument("--early-epoch", action="store_true", help="with --time-format epoch: "
                   "take values under 1e6 (before 1970-01-12) and YYYYMMDD-like values as seconds "
                   "instead of refusing them (Excel serial dates, days, dates)")
    cur = p.add_mutually_exclusive_group()
    cur.add_argument("--currency", help="fixed ISO 4217 currency of every amount, e.g. USD")
    cur.add_argument("--currency-column", help="currency column")
    chan = p.add_mutually_exclusive_group()
    chan.add_argument("--channel", choices=CHANNELS, help="fixed channel (e.g. store)")
    chan.add_argument("--channel-column", help=f"channel column (values: {', '.join(CHANNELS)})")
    p.add_argument("--shift-days", type=float, default=0.0, help="move every time by this "
                   "many days (old data vs the worker's accepted event-time window)")
    p.add_argument("--quantity", help="quantity column (-> items; without --product an item's "
                   "product id is its source row, row<N>)")
    p.add_argument("--product", help="product id column (items; default: one item per row)")
    p.add_argument("--format", choices=FORMATS, help="default: from the file name "
                   "(.parquet, .tsv, .txt = whitespace-separated, else csv)")
    p.add_argument("--out", default="-", help="events, JSON lines (default stdout)")
    p.add_argument("--rejects", help="write bad rows here (JSON lines) and go on")
    p.add_argument("--missing", action="append", metavar="VALUE",
                   help="a cell value meaning 'unknown' (besides empty, nan, NaN, NA, N/A, null, "
                   "None): a bad row in the customer and order id columns and in the amount, "
                   "price and quantity columns, an attribute left out (--profiles); repeatable")
    prof = p.add_argument_group("profiles", "--profiles: one customer-profiles record per row")
    prof.add_argument("--profiles", action="store_true",
                      help="rows are customers: write profile records, not purchases")
    prof.add_argument("--at", help="event time of every record (RFC 3339), instead of --time")
    prof.add_argument("--attribute", action="append", metavar="ATTRIBUTE=COLUMN[:CONVERT]",
                      help="an attribute from a column; CONVERT: text (default), int "
                      "('5+' -> 5), number, bool, slug ('Probable Renter' -> probable_renter); "
                      "repeat for each attribute")

    q = sub.add_parser("quality", help="published labels vs an independent batch reference")
    q.add_argument("file", type=Path, help="events, JSON lines (as for replay)")
    q.add_argument("--json", action="store_true", help="print the figures as JSON")
    q.add_argument("--no-hysteresis", action="store_true", help="run with hysteresis off")
    q.add_argument("--no-confusion", action="store_true", help="omit the confusion matrices")
    q.add_argument("--rfm-daily", action="store_true",
                   help="instead: how much the batch RFM definition itself moves, recomputed at "
                   "every day's end, and what a dwell of k days costs (no engine run)")
    q.add_argument("--freq-daily", action="store_true",
                   help="instead: the same for the batch frequency tier (no engine run)")


def _hours(text: str) -> float:
    """``--order-window``: a number of hours >= 0 (``inf`` allowed)."""
    try:
        hours = float(text)
    except ValueError:
        hours = math.nan
    if not hours >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of hours >= 0, got {text!r}")
    return hours


def currency_problem(code: str, settings: Settings) -> str | None:
    """What is wrong with ``--currency CODE`` for these settings (None: nothing), checked
    before the file is read: every order would otherwise be rejected, row by row.

    >>> s = Settings()
    >>> currency_problem("USD", s) is None
    True
    >>> currency_problem("usd", s)
    'not an ISO 4217 code (three capital letters): --currency USD?'
    >>> print(currency_problem("TWD", s))  # doctest: +NORMALIZE_WHITESPACE
    no exchange rate for TWD (known: CHF EUR GBP PLN SEK USD); add it to STREAMSEG_FX_RATES,
    the whole table as CODE=rate in the base currency EUR, e.g.
    STREAMSEG_FX_RATES=EUR=1,USD=0.92,GBP=1.17,CHF=1.05,SEK=0.087,PLN=0.23,TWD=<rate>
    """
    if not (len(code) == 3 and code.isascii() and code.isalpha() and code.isupper()):
        hint = f": --currency {code.upper()}?" if len(code) == 3 and code.isalpha() else ""
        return "not an ISO 4217 code (three capital letters)" + hint
    table = settings.fx_table()
    if code in table:
        return None
    return (f"no exchange rate for {code} (known: {' '.join(sorted(table))}); add it to "
            "STREAMSEG_FX_RATES, the whole table as CODE=rate in the base currency "
            f"{settings.base_currency}, e.g. STREAMSEG_FX_RATES={settings.fx_rates},{code}=<rate>")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``import`` or ``quality``."""
    if args.command == "import":
        from streamseg.tools.rows import guess_format

        fmt = args.format or guess_format(args.file)
        if args.profiles:
            from streamseg.tools.profiles import cli as profiles_cli

            return profiles_cli(args, settings, fmt)
        if args.attribute or args.at:
            print(f"streamseg import: error: {'--attribute' if args.attribute else '--at'} is "
                  "for customer profiles: add --profiles (rows are customers); purchases carry "
                  "no attributes", file=sys.stderr)
            return 2
        if args.time and (args.amount or args.price) and not (args.currency
                                                              or args.currency_column):
            print("streamseg import: error: give the currency of the amounts: --currency CODE "
                  "(ISO 4217, e.g. --currency USD) for the whole file, or --currency-column "
                  "COLUMN if a column holds it; STREAMSEG_FX_RATES converts other currencies "
                  "to the base one", file=sys.stderr)
            return 2
        if not (args.time and (args.amount or args.price)
                and (args.currency or args.currency_column)):
            print("streamseg import: error: orders need --time, --amount (or --price) and one "
                  "of --currency / --currency-column (or --profiles for a customer table)",
                  file=sys.stderr)
            return 2
        if args.currency and (problem := currency_problem(args.currency, settings)):
            print(f"streamseg import: error: --currency {args.currency}: {problem}",
                  file=sys.stderr)
            return 2
        if args.product and not args.quantity:
            print("streamseg import: error: --product needs --quantity (a line's units of "
                  "the product); without both, purchases carry no items", file=sys.stderr)
            return 2
        from streamseg.tools.importer import cli

        return cli(args, settings)
    from streamseg import codec
    from streamseg.tools.quality import measure
    from streamseg.tools.qualityrun import no_hysteresis, run_engine
    from streamseg.tools.report import render

    daily = "--rfm-daily" if args.rfm_daily else "--freq-daily" if args.freq_daily else None
    if args.rfm_daily and args.freq_daily:
        print("streamseg quality: error: --rfm-daily and --freq-daily: one at a time",
              file=sys.stderr)
        return 2
    if daily and args.no_hysteresis:
        print(f"streamseg quality: error: {daily} measures the batch definition, which has "
              "no hysteresis: leave out --no-hysteresis", file=sys.stderr)
        return 2
    if args.no_hysteresis:
        settings = no_hysteresis(settings)
    try:
        handle = args.file.open("rb")
    except OSError as exc:
        raise InputFileError(str(args.file), None, None, exc.strerror or str(exc)) from None
    if daily:
        return _daily(args, settings, handle, "rfm" if args.rfm_daily else "frequency")
    with handle:
        figures = measure(run_engine(handle, settings), settings)
    figures["file"] = str(args.file)
    figures["hysteresis"] = not args.no_hysteresis
    if args.json:
        sys.stdout.buffer.write(codec.dumps(figures) + b"\n")
    if "agreement" not in figures:  # nothing to measure: a failure, as replay's bad line
        raise InputFileError(str(args.file), None, None, render(figures))
    if not args.json:
        print(render(figures, confusion=not args.no_confusion))
    return 0


def _daily(args: argparse.Namespace, settings: Settings, handle: Any, segmenter: str) -> int:
    """``quality --rfm-daily`` / ``--freq-daily``: the batch definition's own day-to-day
    moves."""
    from streamseg import codec
    from streamseg.tools import volatility

    with handle:
        history, _bad = volatility.read_history(handle, settings)
    figures = volatility.measure(history, settings, segmenter=segmenter)
    if not figures["days"]:
        raise InputFileError(str(args.file), None, None,
                             "no day after the RFM warm-up: nothing to measure"
                             if segmenter == "rfm" else "no purchase: nothing to measure")
    figures["file"] = str(args.file)
    if args.json:
        sys.stdout.buffer.write(codec.dumps(figures) + b"\n")
    else:
        print(volatility.render(figures))
    return 0
