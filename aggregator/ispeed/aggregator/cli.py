"""`ispeed` subcommands of ispeed.aggregator: simulate and aggregate (registered by ispeed.cli.main).

Light at import time: argparse and core only; the store, numpy, pandas and scipy load inside
the command functions.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from ispeed.core.errors import UsageError
from ispeed.core.settings import add_peak_hours, add_setting, parse_peak_hours
from ispeed.core.timeutil import parse_month


def _progress(enabled: bool) -> Callable[[str], None] | None:
    """A progress callback writing one overwritten line on stderr when it is a terminal."""
    if not enabled or not sys.stderr.isatty():
        return None

    def show(text: str) -> None:
        sys.stderr.write(f"\r\033[K{text}")
        sys.stderr.flush()

    return show


def _positive_int(flag: str, text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{flag} {text!r} is not a whole number") from None
    if value < minimum:
        raise UsageError(f"{flag} {value} must be at least {minimum}")
    return value


def cmd_simulate(args: argparse.Namespace) -> int:
    year, month = parse_month(args.month)
    tests = _positive_int("--tests", args.tests, 0)
    seed = _positive_int("--seed", args.seed, 0)
    from ispeed.aggregator.simulate import SimulationConfig, simulate
    from ispeed.core.store import open_store

    cfg = SimulationConfig(year=year, month=month, tests=tests, seed=seed)
    show = _progress(True)
    with open_store(args.store) as store:
        report = simulate(
            store, cfg, progress=(lambda done, total: show(f"simulated {done:,}/{total:,} tests")) if show else None
        )
    if show:
        sys.stderr.write("\n")
    sys.stderr.write(
        f"ispeed simulate: {report.rows:,} simulated tests for {args.month} (seed {seed}) "
        f"in {report.seconds:.1f} s; places: {report.places_source}\n"
    )
    return 0


def cmd_aggregate(args: argparse.Namespace) -> int:
    year, month = parse_month(args.month)
    min_samples = _positive_int("--min-samples", args.min_samples, 1)
    peak_hours = parse_peak_hours(args.peak_hours)
    from ispeed.aggregator.aggregate import aggregate_month
    from ispeed.aggregator.estimates import estimate_month, write_estimates
    from ispeed.aggregator.estimates_sql import month_samples
    from ispeed.aggregator.methodology import Methodology
    from ispeed.core.store import open_store

    method = Methodology(min_samples=min_samples, include_simulated=args.include_simulated, peak_hours=peak_hours)
    show = _progress(True)
    with open_store(args.store) as store:
        stats = aggregate_month(store, year, month, method, Path(args.out), progress=show)
        if show:
            show(f"{stats.month}: estimates of the communes under {min_samples} samples")
        estimates = estimate_month(month_samples(store, year, month, method), method)
    write_estimates(Path(args.out), stats.month, estimates, method)
    if show:
        sys.stderr.write("\r\033[K")
    summary = stats.summary()
    line = (
        f"ispeed aggregate: {stats.month}: {summary['cells']} cells, {summary['published_cells']} "
        f"published, {summary['suppressed_cells']} suppressed (< {min_samples} samples); "
        f"wrote {Path(args.out) / stats.month / 'stats.csv'} and estimates.csv ({len(estimates)} estimated cells)\n"
    )
    sys.stderr.write(line)
    if summary["insufficient_data"]:
        sys.stderr.write(f"ispeed aggregate: {summary['note']}\n")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate",
        help="synthetic national results for demos and benchmarks",
        description="Insert realistic simulated tests (marked simulated) for one month.",
    )
    p.add_argument("--month", required=True, help="Vietnam-local month, YYYY-MM")
    p.add_argument("--tests", required=True, help="number of tests to generate")
    p.add_argument("--seed", default="1", help="random seed; the same seed gives the same tests (default 1)")
    add_setting(p, "store")
    p.set_defaults(func=cmd_simulate)

    a = sub.add_parser(
        "aggregate",
        help="monthly statistics (methodology v1) into DIR/YYYY-MM/stats.csv",
        description="Compute a month's methodology-v1 statistics, store them and write "
        "DIR/YYYY-MM/{stats.csv,changes.csv,histograms.csv,methodology.json}, and the small-area "
        "estimates of the commune cells under --min-samples into DIR/YYYY-MM/estimates.csv.",
    )
    a.add_argument("--month", required=True, help="Vietnam-local month, YYYY-MM")
    a.add_argument("--out", required=True, help="output directory (DIR/YYYY-MM/ is created)")
    a.add_argument("--include-simulated", action="store_true", help="count simulated tests (off by default)")
    a.add_argument(
        "--min-samples", default="300", help="samples (device-days) a cell needs to be published (default 300)"
    )
    add_peak_hours(a)
    add_setting(a, "store")
    a.set_defaults(func=cmd_aggregate)
