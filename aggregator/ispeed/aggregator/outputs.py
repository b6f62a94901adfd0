"""A month's files under DIR/YYYY-MM/: stats.csv, changes.csv, histograms.csv, methodology.json.

Files are byte-for-byte reproducible: fixed row order, floats written as Python's shortest
round-trip repr, no timestamps. Every file carries the methodology version and thresholds
(CSV: trailing columns after the contract columns; JSON: top-level keys).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ispeed.aggregator.methodology import Methodology
from ispeed.core import files
from ispeed.core.files import replacing
from ispeed.core.stats import ADDED_COLUMNS, METHOD_COLUMNS, STATS_COLUMNS, Cell, format_value

CHANGE_COLUMNS: tuple[str, ...] = (
    "month",
    "previous_month",
    "network_type",
    "level",
    "province_code",
    "commune_code",
    "provider",
    "download_median_mbps",
    "previous_download_median_mbps",
    "download_change_pct",
    "upload_median_mbps",
    "previous_upload_median_mbps",
    "upload_change_pct",
    "latency_median_ms",
    "previous_latency_median_ms",
    "latency_change_pct",
    "rank",
    "previous_rank",
)
HISTOGRAM_COLUMNS: tuple[str, ...] = (
    "month",
    "network_type",
    "level",
    "province_code",
    "commune_code",
    "provider",
    "metric",
    "bin",
    "bin_low_mbps",
    "bin_high_mbps",
    "samples",
)


def write_csv(
    path: Path,
    columns: Sequence[str],
    rows: Iterable[Mapping[str, Any]],
    extra: dict[str, Any],
    after: Sequence[str] = (),
) -> None:
    """Write rows (dicts, cells) atomically: a temporary file renamed over `path`. Each line holds the
    row's `columns`, the file-wide `extra` values, then the row's `after` columns (columns added
    to a contract after its methodology columns)."""
    header = list(columns) + list(extra) + list(after)
    with replacing(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        tail = [format_value(v) for v in extra.values()]
        for row in rows:
            writer.writerow(
                [format_value(row.get(c)) for c in columns] + tail + [format_value(row.get(c)) for c in after]
            )


def write_month_files(
    out_dir: Path,
    month: str,
    cells: Sequence[Cell],
    changes: Sequence[dict[str, Any]],
    histograms: Sequence[dict[str, Any]],
    method: Methodology,
    summary: dict[str, Any],
) -> Path:
    """Write the month's four files into out_dir/month/ and return that directory."""
    target = out_dir / month
    target.mkdir(parents=True, exist_ok=True)
    extra = method.method_values()
    assert tuple(extra) == METHOD_COLUMNS
    write_csv(target / "stats.csv", STATS_COLUMNS, cells, extra, ADDED_COLUMNS)
    write_csv(target / "changes.csv", CHANGE_COLUMNS, changes, extra)
    write_csv(target / "histograms.csv", HISTOGRAM_COLUMNS, histograms, extra)
    meta = {**extra, **summary}
    files.write_text(target / "methodology.json", json.dumps(meta, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return target
