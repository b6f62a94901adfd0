"""`ispeed publish` (the nightly job) and `ispeed demo` (the whole platform in one command).

Light at import time: argparse and core only; the store, jinja2 and the builders load inside
the command functions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from ispeed.core.errors import UsageError
from ispeed.core.settings import add_setting


def _min_samples(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--min-samples {text!r} is not a whole number") from None
    if value < 1:
        raise UsageError(f"--min-samples {value} must be at least 1")
    return value


def _today(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--today {text!r} is not a date: use YYYY-MM-DD") from None


def cmd_publish(args: argparse.Namespace) -> int:
    from ispeed.aggregator.methodology import Methodology
    from ispeed.aggregator.publish import PublishOptions, publish
    from ispeed.core.store import open_store
    from ispeed.core.timeutil import parse_month

    for month in args.month:
        parse_month(month)
    method = Methodology(min_samples=_min_samples(args.min_samples), include_simulated=args.include_simulated)
    options = PublishOptions(Path(args.out), method, today=_today(args.today), months=tuple(args.month),
                             export=not args.no_export, force=args.force, test_url=args.test_url)
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
        f"{report.seconds:.1f} s; home shows {report.latest or 'no month yet'}; open {Path(args.out) / 'index.html'}\n")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ispeed.aggregator.demo import DemoOptions, run_demo

    if not 0 <= args.port <= 65535:
        from ispeed.core.errors import ConfigError

        raise ConfigError("--port", args.port, "use a TCP port between 0 and 65535")
    options = DemoOptions(out_dir=Path(args.out), workdir=Path(args.workdir), host=args.host, port=args.port,
                          serve=not args.no_serve, tests=args.tests, loopback_tests=args.loopback_tests,
                          history_months=args.history_months, min_samples=_min_samples(args.min_samples))
    return run_demo(options)


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("publish", help="the nightly job: aggregate what is due and render the static site",
                       description="Aggregate the last complete month (final) and the current month to date "
                                   "(provisional), then render the static site (Vietnamese, English under "
                                   "/en/) with downloads into DIR. Unchanged months keep their pages.")
    add_setting(p, "store")
    p.add_argument("--out", required=True, help="site directory (created; months accumulate in it)")
    p.add_argument("--include-simulated", action="store_true",
                   help="count simulated tests (always on for a demo store)")
    p.add_argument("--min-samples", default="300",
                   help="samples (device-days) a cell needs to be published (default 300)")
    p.add_argument("--month", action="append", default=[], metavar="YYYY-MM",
                   help="also (re)publish this month (repeatable), e.g. to backfill the archive")
    p.add_argument("--today", default=None, metavar="YYYY-MM-DD",
                   help="the Vietnam-local date deciding what is due (default: today)")
    p.add_argument("--force", action="store_true", help="rebuild months even when their figures are unchanged")
    p.add_argument("--no-export", action="store_true", help="skip the per-test open-data export (gzip CSV)")
    p.add_argument("--test-url", default="", help="link the pages' 'Run a test' button to this URL (default: none)")
    p.set_defaults(func=cmd_publish)

    d = sub.add_parser("demo", help="the whole platform on an embedded demo store, in one command",
                       description="Start a test server, run real loopback tests, simulate a month of "
                                   "national results, publish the site and serve it (or exit with --no-serve).")
    d.add_argument("--out", default="var/demo/site", help="site directory (default var/demo/site)")
    d.add_argument("--workdir", default="var/demo",
                   help="demo store, spool and geo database live here (default var/demo)")
    d.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    d.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    d.add_argument("--no-serve", action="store_true", help="publish and exit instead of serving")
    d.add_argument("--tests", type=int, default=400_000,
                   help="simulated tests in the last complete month (default 400000)")
    d.add_argument("--loopback-tests", type=int, default=3, help="real loopback tests with the client (default 3)")
    d.add_argument("--history-months", type=int, default=5,
                   help="earlier months simulated (smaller) for the trend charts (default 5)")
    d.add_argument("--min-samples", default="300", help="samples a cell needs to be published (default 300)")
    d.set_defaults(func=cmd_demo)
