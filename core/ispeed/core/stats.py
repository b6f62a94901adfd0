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
PEAK_HOURS: tuple[int, int] = (19, 22)  # the default peak: 19:00-22:59 Vietnam time, the evening peak of home use
GIGABIT_THRESHOLD_MBPS = 900.0  # the 1 Gbit/s class in TCP goodput (aggregator/…/methodology.py says why)

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
METHOD_COLUMNS: tuple[str, ...] = (
    "methodology_version",
    "min_samples",
    "ci_level",
    "include_simulated",
    # added with the quality and distribution figures (issues #21, #22): the peak hours (Vietnam
    # local hours, inclusive, e.g. `19-22`) and the goodput counted as the 1 Gbit/s class
    "peak_hours",
    "gigabit_threshold_mbps",
)
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
# Quality beyond speed (method v2; issue #21), medians over device-day samples as for speed: a
# sample's value over its tests that have the figure (method v1 results lack them; a test the
# server delayed counts for none of them), a cell's median over its samples that have one, empty
# when none; the share of samples over IPv6; the median download of the peak hours' samples
# (empty below min_samples peak samples) and their count.
QUALITY_COLUMNS: tuple[str, ...] = (
    "loss_down_pct_median",
    "loss_up_pct_median",
    "rtt_p90_ms_median",
    "rpm_down_median",
    "rpm_up_median",
    "ipv6_share",
    "peak_download_median_mbps",
    "peak_samples",
)
# The distribution of the download samples (issue #22): means (QCVN 34's average speed), the 10th
# and 90th percentiles, the shares at or above 100 Mbit/s and the 1 Gbit/s class.
DISTRIBUTION_COLUMNS: tuple[str, ...] = (
    "download_mean_mbps",
    "upload_mean_mbps",
    "download_p10_mbps",
    "download_p90_mbps",
    "share_ge_100_mbps",
    "share_ge_1000_mbps",
)
ADDED_COLUMNS: tuple[str, ...] = EVIDENCE_COLUMNS + QUALITY_COLUMNS + DISTRIBUTION_COLUMNS
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
    loss_down_pct_median: float | None
    loss_up_pct_median: float | None
    rtt_p90_ms_median: float | None
    rpm_down_median: float | None
    rpm_up_median: float | None
    ipv6_share: float | None
    peak_download_median_mbps: float | None
    peak_samples: int | None
    download_mean_mbps: float | None
    upload_mean_mbps: float | None
    download_p10_mbps: float | None
    download_p90_mbps: float | None
    share_ge_100_mbps: float | None
    share_ge_1000_mbps: float | None
    # the methodology columns, when a cell is read back from the store
    methodology_version: NotRequired[str]
    min_samples: NotRequired[int]
    ci_level: NotRequired[float]
    include_simulated: NotRequired[bool]
    peak_hours: NotRequired[str]
    gigabit_threshold_mbps: NotRequired[float | None]


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
        "loss_down_pct_median": None,
        "loss_up_pct_median": None,
        "rtt_p90_ms_median": None,
        "rpm_down_median": None,
        "rpm_up_median": None,
        "ipv6_share": None,
        "peak_download_median_mbps": None,
        "peak_samples": None,
        "download_mean_mbps": None,
        "upload_mean_mbps": None,
        "download_p10_mbps": None,
        "download_p90_mbps": None,
        "share_ge_100_mbps": None,
        "share_ge_1000_mbps": None,
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
