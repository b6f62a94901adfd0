"""`ispeed publish`: the nightly job (aggregate what is due, render the static site).

Light at import time: argparse and core only; the store, jinja2 and the builders load inside
the command functions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from ispeed.core.errors import UsageError
from ispeed.core.settings import add_peak_hours, add_setting, parse_min_samples, parse_peak_hours


def _today(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--today {text!r} is not a date: use YYYY-MM-DD") from None


def cmd_publish(args: argparse.Namespace) -> int:
    from ispeed.aggregator.methodology import Methodology
    from ispeed.core.store import open_store
    from ispeed.core.timeutil import parse_month
    from ispeed.publisher.publish import PublishOptions, publish

    for month in args.month:
        parse_month(month)
    method = Methodology(
        min_samples=parse_min_samples(args.min_samples),
        include_simulated=args.include_simulated,
        peak_hours=parse_peak_hours(args.peak_hours),
    )
    options = PublishOptions(
        Path(args.out),
        method,
        today=_today(args.today),
        months=tuple(args.month),
        export=not args.no_export,
        force=args.force,
        test_url=args.test_url,
        targets=Path(args.targets) if args.targets else None,
        reports=not args.no_reports,
    )
    tty = sys.stderr.isatty()

    def show(text: str) -> None:
        if tty:
            sys.stderr.write(f"\r\033[K{text}")
            sys.stderr.flush()

    with open_store(args.store) as store:
        report = publish(store, options, progress=show)
    if tty:
        sys.stderr.write("\r\033[K")
    sys.stderr.write(
        f"ispeed publish: built {', '.join(report.built) or 'nothing'}"
        f"{'; unchanged ' + ', '.join(report.unchanged) if report.unchanged else ''}; {report.pages} pages in "
        f"{report.seconds:.1f} s; home shows {report.latest or 'no month yet'}; open {Path(args.out) / 'index.html'}\n"
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "publish",
        help="the nightly job: aggregate what is due and render the static site",
        description="Aggregate the last complete month (final) and the current month to date "
        "(provisional), then render the static site (Vietnamese, English under "
        "/en/) with downloads into DIR. Unchanged months keep their pages.",
    )
    add_setting(p, "store")
    p.add_argument("--out", required=True, help="site directory (created; months accumulate in it)")
    p.add_argument("--include-simulated", action="store_true", help="count simulated tests (off by default)")
    p.add_argument(
        "--min-samples", default="300", help="samples (device-days) a cell needs to be published (default 300)"
    )
    add_peak_hours(p)
    p.add_argument(
        "--month",
        action="append",
        default=[],
        metavar="YYYY-MM",
        help="also (re)publish this month (repeatable), e.g. to backfill the archive",
    )
    p.add_argument(
        "--today",
        default=None,
        metavar="YYYY-MM-DD",
        help="the Vietnam-local date deciding what is due (default: today)",
    )
    p.add_argument("--force", action="store_true", help="rebuild months even when their figures are unchanged")
    p.add_argument("--no-export", action="store_true", help="skip the per-test open-data export (gzip CSV)")
    p.add_argument("--no-reports", action="store_true", help="skip the months' PDF reports (vi and en)")
    p.add_argument(
        "--targets", default=None, metavar="FILE.toml", help="national targets file (default: the shipped one)"
    )
    p.add_argument("--test-url", default="", help="link the pages' 'Run a test' button to this URL (default: none)")
    p.set_defaults(func=cmd_publish)
