"""The monthly statistics contract: `stats.csv` columns, levels, value formatting and row decoding.

Written by the aggregator (files and the store's `monthly_stats`), read by the publisher and by the
server's ISP portal; every part imports it from here. Columns are only ever added, after the
methodology columns, never renamed (docs/architecture.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NotRequired, TypedDict

METHODOLOGY_VERSION = "1"  # of the statistics (aggregator/…/methodology.py); the measurement method is core.method's
LEVELS: tuple[str, ...] = ("national", "province", "commune")

# stats.csv, in order: the original contract, then the methodology columns (one value per file)...
STATS_COLUMNS: tuple[str, ...] = (
    "month",
    "network_type",
    "level",
    "province_code",
    "commune_code",
    "provider",
    "tests",
    "samples",
    "devices",
    "download_median_mbps",
    "download_ci_low_mbps",
    "download_ci_high_mbps",
    "upload_median_mbps",
    "latency_median_ms",
    "jitter_median_ms",
    "rank",
    "published",
)
METHOD_COLUMNS: tuple[str, ...] = ("methodology_version", "min_samples", "ci_level", "include_simulated")
# ...then the columns added since (per cell, empty when the cell is suppressed). The share (0-1) of a
# published cell's samples whose every test rests on that evidence (spec/evidence.md; a sample
# rests on its weakest test): placed by GPS / by IP; network type from the IP classification / the
# device / the user's declaration; a server-issued device id. The rest of each family is `none`.
EVIDENCE_COLUMNS: tuple[str, ...] = (
    "place_gps_share",
    "place_ip_share",
    "network_type_ip_share",
    "network_type_device_share",
    "network_type_declared_share",
    "device_issued_share",
)
ADDED_COLUMNS: tuple[str, ...] = EVIDENCE_COLUMNS
STATS_CSV_COLUMNS: tuple[str, ...] = STATS_COLUMNS + METHOD_COLUMNS + ADDED_COLUMNS
# the figures of a cell, empty (None) when it is suppressed
FIGURE_COLUMNS: tuple[str, ...] = (
    "download_median_mbps",
    "download_ci_low_mbps",
    "download_ci_high_mbps",
    "upload_median_mbps",
    "latency_median_ms",
    "jitter_median_ms",
)


class Cell(TypedDict):
    """One cell of a month (a stats.csv row without the file-wide methodology columns).

    The aggregator writes every key but the methodology columns; the publisher and the server's
    ISP portal read them. Code that walks the contract's column names reads a cell as a
    `Mapping[str, Any]` (a TypedDict takes only literal keys).
    """

    month: str
    network_type: str
    level: str
    province_code: str
    commune_code: str
    provider: str
    tests: int
    samples: int
    devices: int
    download_median_mbps: float | None
    download_ci_low_mbps: float | None
    download_ci_high_mbps: float | None
    upload_median_mbps: float | None
    latency_median_ms: float | None
    jitter_median_ms: float | None
    rank: int | None
    published: bool
    place_gps_share: float | None
    place_ip_share: float | None
    network_type_ip_share: float | None
    network_type_device_share: float | None
    network_type_declared_share: float | None
    device_issued_share: float | None
    # the methodology columns, when a cell is read back from the store
    methodology_version: NotRequired[str]
    min_samples: NotRequired[int]
    ci_level: NotRequired[float]
    include_simulated: NotRequired[bool]


def empty_cell(
    month: str, network_type: str, level: str, province_code: str = "", commune_code: str = "", provider: str = ""
) -> Cell:
    """A cell with no samples: suppressed, its figures and evidence shares empty."""
    return {
        "month": month,
        "network_type": network_type,
        "level": level,
        "province_code": province_code,
        "commune_code": commune_code,
        "provider": provider,
        "tests": 0,
        "samples": 0,
        "devices": 0,
        "rank": None,
        "published": False,
        "download_median_mbps": None,
        "download_ci_low_mbps": None,
        "download_ci_high_mbps": None,
        "upload_median_mbps": None,
        "latency_median_ms": None,
        "jitter_median_ms": None,
        "place_gps_share": None,
        "place_ip_share": None,
        "network_type_ip_share": None,
        "network_type_device_share": None,
        "network_type_declared_share": None,
        "device_issued_share": None,
    }


def format_value(value: Any) -> str:
    """One CSV field: '' for missing, true/false, shortest round-trip floats."""
    kind = type(value)  # the common exact types first: a month's files hold ~1 million fields
    if kind is str:
        return str(value)
    if kind is int:
        return str(value)
    if kind is float:
        return repr(value) if math.isfinite(value) else ""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):  # numpy's float64 too: its repr would name the type
        return repr(float(value)) if math.isfinite(value) else ""
    return str(value)


def decode_row(names: Sequence[str], row: Sequence[Any]) -> Cell:
    """A `monthly_stats` row (columns `names`) as a cell: rank 0 is None, flags are booleans."""
    cell: dict[str, Any] = dict(zip(names, row, strict=True))
    if "rank" in cell:
        cell["rank"] = cell["rank"] or None
    for flag in ("published", "include_simulated"):
        if flag in cell:
            cell[flag] = bool(cell[flag])
    return cell  # type: ignore[return-value]
