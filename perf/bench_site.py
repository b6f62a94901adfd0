"""Benchmark: build the whole site for one month (34 provinces, 3,321 communes, all ISPs, 3 network types).

Simulates a month (default 1,000,000 tests) into a throw-away embedded store, aggregates it once,
then times, in the same invocation:
- the reference: writing the month's stats.csv (the aggregator's own output of the same cells);
- the site build: every page in Vietnamese and English, SVG charts, every table as CSV and JSON,
  per-ISP bundles (no open-data export: that is the store's speed, not the builder's).
Prints the build time (target < 20 s on the project's 2-core machine) and its ratio to the reference.

    python -m perf.bench_site [--tests N] [--seed S] [--min-samples M]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from ispeed.aggregator.aggregate import aggregate_month
from ispeed.aggregator.methodology import Methodology
from ispeed.aggregator.outputs import write_month_files
from ispeed.aggregator.simulate import SimulationConfig, simulate
from ispeed.core.store import open_store
from ispeed.publisher.build import SiteBuilder
from ispeed.publisher.model import MonthData
from ispeed.publisher.publish import geography, national_trend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--min-samples", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp:
        root = Path(tmp)
        method = Methodology(min_samples=args.min_samples, include_simulated=True)
        with open_store(f"chdb:{root / 'store'}") as store:
            report = simulate(store, SimulationConfig(year=2025, month=7, tests=args.tests, seed=args.seed))
            stats = aggregate_month(store, 2025, 7, method, root / "agg")
            months, trend = national_trend(store, "2025-07")
        print(f"simulated {report.rows:,} tests; {len(stats.cells):,} cells, {stats.published:,} published")
        geo = geography()
        md = MonthData(
            month="2025-07",
            status="final",
            data_until=dt.date(2025, 7, 31),
            method=stats.method,
            built_at=dt.datetime.now(dt.UTC),
            cells=stats.cells,
            changes=stats.changes,
            trend_months=months,
            trend=trend,
            export_tests=None,
            geo=geo,
        )
        t0 = time.perf_counter()
        write_month_files(
            root / "ref", stats.month, stats.cells, stats.changes, stats.histograms, stats.method, stats.summary()
        )
        reference = time.perf_counter() - t0
        builder = SiteBuilder(root / "site")
        t0 = time.perf_counter()
        pages = builder.build_month(md)
        builder.build_root([], md)
        build = time.perf_counter() - t0
        files = sum(1 for p in (root / "site").rglob("*") if p.is_file())
        size_mb = sum(p.stat().st_size for p in (root / "site").rglob("*") if p.is_file()) / 1e6
        print(
            f"site build: {build:.1f} s for {pages} pages ({files:,} files, {size_mb:.0f} MB) — target < 20 s "
            f"({'met' if build < 20 else 'MISSED'}); reference (stats.csv etc.): {reference:.2f} s; "
            f"ratio {build / reference:.0f}×"
        )


if __name__ == "__main__":
    main()
