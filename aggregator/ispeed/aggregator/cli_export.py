"""`ispeed export`: the month's individual tests as privacy-safe open data (CSV)."""

from __future__ import annotations

import argparse
import sys

from ispeed.core.settings import add_setting


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("export", help="open-data CSV of a month's individual tests (privacy-safe)")
    p.add_argument("--month", required=True, help="Vietnam-local calendar month, YYYY-MM")
    add_setting(p, "store")
    p.add_argument("--out", required=True, help="CSV file to write ('-' for stdout)")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from ispeed.aggregator.export import export_month, write_month
    from ispeed.core.store import open_store, parse_store_url
    from ispeed.core.timeutil import parse_month

    year, month = parse_month(args.month)
    url = parse_store_url(args.store)
    with open_store(url) as store:
        if args.out == "-":
            n = write_month(store, year, month, sys.stdout)
        else:
            n = export_month(store, year, month, args.out)
    sys.stderr.write(f"ispeed export: {n} tests of {args.month} written to {args.out}\n")
    return 0
