"""Open-data export: one CSV row per test of a month, privacy-safe (no IPs, hashed devices).

Rows stream from the store to the file; a month is never held in memory. Duplicates by
test_id (a replayed insert not yet merged away) are collapsed with FINAL.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

from ispeed.core.files import replacing
from ispeed.core.opendata import EXPORT_COLUMNS, SELECT_LIST, csv_cells
from ispeed.core.store import Store
from ispeed.core.timeutil import month_bounds

EXPORT_SQL = (
    "SELECT " + SELECT_LIST + " FROM {db}.measurements FINAL"
    " WHERE local_date >= {start} AND local_date < {end} ORDER BY started_at, test_id"
)


def write_month(store: Store, year: int, month: int, out: TextIO) -> int:
    """Write the month's tests as CSV (header + rows) to `out`; returns the row count."""
    start, end = month_bounds(year, month)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    n = 0
    for row in store.iter_query(EXPORT_SQL, {"start": start, "end": end}):
        writer.writerow(csv_cells(row))
        n += 1
    return n


def export_month(store: Store, year: int, month: int, out_path: str | Path) -> int:
    """Export to `out_path` atomically (written beside it, then renamed); returns the row count."""
    with replacing(out_path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        return write_month(store, year, month, fh)
