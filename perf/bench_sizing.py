"""Storage per test for the sizing model (docs/sizing.md): bytes on disk per stored result.

    python -m perf.bench_sizing [--tests 1000000] [--seed 1]

Simulates a month of `--tests` results (the simulator's realistic mix of providers, places,
devices and speeds) into a throw-away Debian clickhouse-server, merges the parts
(OPTIMIZE … FINAL, as background merges do over a month), and prints compressed and
uncompressed bytes per row for the whole `measurements` table and its largest columns, plus
the insert rate. Real results carry more distinct values (lat/lon, TCP figures) than simulated
ones; the sizing model adds a margin for that.
"""

from __future__ import annotations

import argparse
import time

from tests.clickhouse_server import ClickHouseServer

from ispeed.aggregator.simulate import SimulationConfig, simulate
from ispeed.core.store import open_store


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    server = ClickHouseServer().start()
    try:
        with open_store(f"{server.url}/sizing") as store:
            t0 = time.perf_counter()
            simulate(store, SimulationConfig(year=2025, month=7, tests=args.tests, seed=args.seed))
            seconds = time.perf_counter() - t0
            store.execute("OPTIMIZE TABLE {db}.measurements FINAL")
            ((rows, disk, comp, uncomp),) = store.query(
                "SELECT sum(rows), sum(bytes_on_disk), sum(data_compressed_bytes), sum(data_uncompressed_bytes) "
                "FROM system.parts WHERE database = 'sizing' AND table = 'measurements' AND active"
            )
            cols = store.query(
                "SELECT name, data_compressed_bytes, data_uncompressed_bytes FROM system.columns "
                "WHERE database = 'sizing' AND table = 'measurements' ORDER BY data_compressed_bytes DESC LIMIT 8"
            )
    finally:
        server.remove()
    print(f"{rows:,} rows; insert {rows / seconds:,.0f} rows/s (simulate + insert, one process)")
    print(
        f"on disk {disk / rows:.1f} B/row; compressed {comp / rows:.1f} B/row; "
        f"uncompressed {uncomp / rows:.1f} B/row (ratio {uncomp / comp:.1f})"
    )
    print("largest columns (compressed B/row, uncompressed B/row):")
    for name, c, u in cols:
        print(f"  {name:24s} {c / rows:6.1f} {u / rows:7.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
