"""The store's `monthly_stats` table: a month's cells written atomically, and read back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from ispeed.aggregator.methodology import Methodology
from ispeed.core.stats import (
    ADDED_COLUMNS,
    DISTRIBUTION_COLUMNS,
    QUALITY_COLUMNS,
    STATS_COLUMNS,
    STATS_CSV_COLUMNS,
    Cell,
    decode_row,
)
from ispeed.core.store import Store

TYPES: dict[str, str] = {
    "month": "String",
    "network_type": "String",
    "level": "String",
    "province_code": "String",
    "commune_code": "String",
    "provider": "String",
    "tests": "UInt64",
    "samples": "UInt64",
    "devices": "UInt64",
    "download_median_mbps": "Nullable(Float64)",
    "download_ci_low_mbps": "Nullable(Float64)",
    "download_ci_high_mbps": "Nullable(Float64)",
    "upload_median_mbps": "Nullable(Float64)",
    "latency_median_ms": "Nullable(Float64)",
    "jitter_median_ms": "Nullable(Float64)",
    "rank": "UInt32",
    "published": "UInt8",
    "methodology_version": "String",
    "min_samples": "UInt32",
    "ci_level": "Float64",
    "include_simulated": "UInt8",
    "computed_at": "DateTime('UTC')",
    # migration 0006: the evidence shares of published cells
    "place_gps_share": "Nullable(Float64)",
    "place_ip_share": "Nullable(Float64)",
    "network_type_ip_share": "Nullable(Float64)",
    "network_type_device_share": "Nullable(Float64)",
    "network_type_declared_share": "Nullable(Float64)",
    "device_issued_share": "Nullable(Float64)",
    # migration 0008: method v2's quality and distribution figures, and two methodology columns
    "peak_hours": "String",
    "gigabit_threshold_mbps": "Nullable(Float64)",
    **{name: "Nullable(Float64)" for name in QUALITY_COLUMNS + DISTRIBUTION_COLUMNS if name != "peak_samples"},
    "peak_samples": "Nullable(UInt64)",
}


def write_month(store: Store, month: str, cells: Sequence[Cell], method: Methodology, computed_at: dt.datetime) -> None:
    """Replace the month's partition of monthly_stats with `cells` in one atomic step."""
    store.execute("ALTER TABLE {db}.monthly_stats_staging DROP PARTITION {month}", {"month": month})
    columns: dict[str, list[Any]] = {name: [] for name in TYPES}
    stamp = int(computed_at.timestamp())
    for cell in cells:
        by_name: Mapping[str, Any] = cell  # walked by the contract's column names
        for name in STATS_COLUMNS + ADDED_COLUMNS:
            value = by_name[name] if name in STATS_COLUMNS else by_name.get(name)  # added since: optional
            if name == "rank":
                value = value or 0
            elif name == "published":
                value = int(bool(value))
            columns[name].append(value)
        columns["methodology_version"].append(method.version)
        columns["min_samples"].append(method.min_samples)
        columns["ci_level"].append(method.ci_level)
        columns["include_simulated"].append(int(method.include_simulated))
        columns["peak_hours"].append(method.peak_hours_text)
        columns["gigabit_threshold_mbps"].append(method.gigabit_threshold_mbps)
        columns["computed_at"].append(stamp)
    store.insert_columns("monthly_stats_staging", columns, TYPES)
    store.execute(
        "ALTER TABLE {db}.monthly_stats REPLACE PARTITION {month} FROM {db}.monthly_stats_staging", {"month": month}
    )
    store.execute("ALTER TABLE {db}.monthly_stats_staging DROP PARTITION {month}", {"month": month})


def read_month(store: Store, month: str) -> list[Cell]:
    """The month's stored cells (empty when the month was never aggregated), in table order."""
    names = list(STATS_CSV_COLUMNS)
    rows = store.query(
        f"SELECT {', '.join(names)} FROM {{db}}.monthly_stats WHERE month = {{month}} "
        "ORDER BY network_type, level, province_code, commune_code, provider",
        {"month": month},
    )
    return [decode_row(names, row) for row in rows]
