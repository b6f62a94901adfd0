"""Benchmark: `ispeed aggregate` of a simulated month on a ClickHouse server vs a one-pass reference.

Starts a throw-away Debian clickhouse-server, simulates N tests (default 10,000,000) in a child
process (so this process's peak RSS is the aggregator's), then times in one invocation:
- the reference: one GROUP BY month, network type, provider, province with quantiles over
  the same valid tests of the month, read with FINAL (each stored row once, as the aggregator
  counts them) and, for context, without;
- the aggregator: every cell of methodology v1, ranks, changes, histograms, store write, files;
- for context, the aggregator's floor: the month's device-day samples alone (steps 1-2 of
  `cells_sql`, `device_days_query`), which any exact per-device-day method computes before its
  first cell statistic.
Prints wall times as ratios to the reference (target ≤ 5×) and the peak RSS (target < 1 GiB).

The FINAL reference depends on how many parts the month sits in: right after simulate (~7 parts)
it takes ~4.7 s, merged into one part ~2.6 s, while the aggregate hardly changes. So on a
throw-away server (or with --merged) the script then runs OPTIMIZE … FINAL and times both again:
a month that has sat in a store for a while is the merged case.

    python -m perf.bench_aggregate [--tests N] [--seed S] [--min-samples M]
    python -m perf.bench_aggregate --store clickhouse://HOST:PORT/DB [--merged]   # a store holding 2025-07
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.clickhouse_server import ClickHouseServer

from ispeed.aggregator.aggregate import aggregate_month, month_query_params
from ispeed.aggregator.cells_sql import device_days_query
from ispeed.aggregator.methodology import Methodology
from ispeed.core.store import Store, open_store

REFERENCE = """
SELECT toYYYYMM(local_date) AS month, network_type, provider, province_code, count() AS tests,
       quantiles(0.5)(download_mbps), quantiles(0.5)(upload_mbps), quantiles(0.5)(latency_ms)
FROM {{db}}.measurements {final}
WHERE local_date >= '2025-07-01' AND local_date < '2025-08-01'
  AND valid = 1 AND download_mbps > 0 AND upload_mbps > 0
GROUP BY month, network_type, provider, province_code
"""


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(store: Store, args: argparse.Namespace) -> dict[str, float]:
    """Reference (FINAL, 3 runs before and 3 after), reference without FINAL, one aggregate, and
    the device-day samples alone (once)."""
    parts = store.query(
        "SELECT count() FROM system.parts WHERE database = {database} AND table = 'measurements' AND active",
        {"database": store.database},
    )[0][0]
    ref_final = timed(lambda: store.query(REFERENCE.format(final="FINAL")), repeat=3)
    ref_plain = timed(lambda: store.query(REFERENCE.format(final="")), repeat=3)
    method = Methodology(min_samples=args.min_samples, include_simulated=True)
    with tempfile.TemporaryDirectory() as out:
        holder: dict[str, Any] = {}
        agg = timed(lambda: holder.update(stats=aggregate_month(store, 2025, 7, method, Path(out))))
    ref_after = timed(lambda: store.query(REFERENCE.format(final="FINAL")), repeat=3)
    days_sql, params = device_days_query(len(method.network_types)), month_query_params(2025, 7, method)
    floor = timed(lambda: holder.update(days=store.query(days_sql, params)))
    stats = holder["stats"]
    device_days = sum(int(row[1]) for row in holder["days"])
    return {
        "parts": parts,
        "ref": statistics.median([ref_final, ref_after]),
        "ref_plain": ref_plain,
        "agg": agg,
        "floor": floor,
        "device_days": device_days,
        "cells": len(stats.cells),
        "published": stats.published,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tests", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--min-samples", type=int, default=300)
    ap.add_argument("--store", help="time an existing store's 2025-07 instead of a throw-away server's")
    ap.add_argument(
        "--merged",
        action="store_true",
        help="with --store: also OPTIMIZE the table FINAL and time again (always on a throw-away server)",
    )
    args = ap.parse_args()

    server = None if args.store else ClickHouseServer().start()
    try:
        if server is None:
            url = args.store
        else:
            url = f"{server.url}/bench"
            t0 = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ispeed.cli.main",
                    "simulate",
                    "--month",
                    "2025-07",
                    "--tests",
                    str(args.tests),
                    "--seed",
                    str(args.seed),
                    "--store",
                    url,
                ],
                check=True,
            )
            sim_s = time.perf_counter() - t0
            print(f"simulate: {args.tests:,} tests in {sim_s:.1f} s ({args.tests / sim_s * 60 / 1e6:.2f} M rows/min)")
        with open_store(url) as store:
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            layouts = [("as stored", measure(store, args))]
            if server is not None or args.merged:
                t0 = time.perf_counter()
                store.execute("OPTIMIZE TABLE {db}.measurements FINAL")
                print(f"OPTIMIZE TABLE measurements FINAL: {time.perf_counter() - t0:.1f} s")
                layouts.append(("merged", measure(store, args)))
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        for name, m in layouts:
            print(f"[{name}: {m['parts']} parts]")
            print(f"reference query (FINAL):    {m['ref']:.2f} s   (without FINAL: {m['ref_plain']:.2f} s)")
            print(f"aggregate (all cells):      {m['agg']:.2f} s   cells={m['cells']:,} published={m['published']:,}")
            print(
                f"ratio aggregate/reference:  {m['agg'] / m['ref']:.1f}x   "
                f"(vs reference without FINAL: {m['agg'] / m['ref_plain']:.1f}x; target <= 5x)"
            )
            print(
                f"device-day samples alone:   {m['floor']:.2f} s   = {m['floor'] / m['ref']:.1f}x reference "
                f"({m['device_days']:,} device-days; the aggregate's floor, cells_sql steps 1-2)"
            )
        print(
            f"peak RSS of this process:   {peak_mib:.0f} MiB "
            f"(before aggregate {rss_before / 1024:.0f} MiB; target < 1024)"
        )
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    finally:
        if server is not None:
            server.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
