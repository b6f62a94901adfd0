"""Open-data export: one CSV row per test of a month, privacy-safe (no IPs, hashed devices).

Rows stream from the store to the file; a month is never held in memory. Duplicates by
test_id (a replayed insert not yet merged away) are collapsed with FINAL.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
from pathlib import Path
from typing import Any, TextIO

from ispeed.core.schema import EXPORT_COLUMNS
from ispeed.core.store import Store
from ispeed.core.timeutil import month_bounds

_SELECT = {
    # methodology v1's device: the hashed device id, or the hashed IP when the client sent none
    "device_hash": "if(device_hash != '', device_hash, ip_hash)",
    "started_at": "toUnixTimestamp(started_at)",  # formatted here: %M differs between versions
    "local_date": "toString(local_date)",
}

EXPORT_SQL = (
    "SELECT " + ", ".join(_SELECT.get(c, c) for c in EXPORT_COLUMNS)
    + " FROM {db}.measurements FINAL WHERE local_date >= {start} AND local_date < {end}"
    + " ORDER BY started_at, test_id"
)


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return repr(value)
    return value


def _started_at(epoch: int) -> str:
    return dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_month(store: Store, year: int, month: int, out: TextIO) -> int:
    """Write the month's tests as CSV (header + rows) to `out`; returns the row count."""
    start, end = month_bounds(year, month)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    n = 0
    at = EXPORT_COLUMNS.index("started_at")
    for row in store.iter_query(EXPORT_SQL, {"start": start, "end": end}):
        cells = [_cell(v) for v in row]
        cells[at] = _started_at(row[at])
        writer.writerow(cells)
        n += 1
    return n


def export_month(store: Store, year: int, month: int, out_path: str | Path) -> int:
    """Export to `out_path` atomically (written beside it, then renamed); returns the row count."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            n = write_month(store, year, month, fh)
        os.replace(tmp, out_path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n
