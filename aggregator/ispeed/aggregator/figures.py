"""The figures added with method v2 (stats.csv's QUALITY_COLUMNS, DISTRIBUTION_COLUMNS) from a cells query row.

The store returns what adds up exactly (sample counts, sums of samples in whole bit/s) and the
order statistics either side of each percentile; the divisions and the interpolation are done
here, once per cell, by the formulas of `ispeed.aggregator.methodology`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ispeed.aggregator.cells_sql import MEDIAN_COLUMNS, PERCENTILES
from ispeed.aggregator.methodology import Methodology

BITS_PER_MBIT = 1_000_000


def linear_percentile(n: int, p: float, a: float, b: float) -> float:
    """numpy's default (linear) percentile p of n sorted samples, from a = x_j and b = x_min(j+1, n-1),
    j = floor((n - 1) p): its `_lerp`, which takes the nearer end for accuracy."""
    h = (n - 1) * p
    g = h - math.floor(h)
    diff = b - a
    return b - diff * (1 - g) if g >= 0.5 else a + diff * g


def mean_mbps(bits: int, samples: int) -> float:
    """Σ samples in whole bit/s over n samples, in Mbit/s: the exact quotient rounded once (int / int)."""
    return bits / (samples * BITS_PER_MBIT)


def added_figures(row: Mapping[str, Any], samples: int, method: Methodology) -> dict[str, Any]:
    """A published cell's added figures (QUALITY_COLUMNS, DISTRIBUTION_COLUMNS) from its row."""

    def optional(name: str) -> float | None:
        value = row[name]
        return None if value is None else float(value)

    v4, v6 = int(row["ev_ip_v4"]), int(row["ev_ip_v6"])
    peak_samples = int(row["peak_samples"])
    out: dict[str, Any] = {
        name: optional(name) for key, name in MEDIAN_COLUMNS.items() if key not in ("lat", "jit", "pk")
    }
    out.update(
        {
            "ipv6_share": v6 / (v4 + v6) if v4 + v6 else None,
            "peak_download_median_mbps": (
                optional("peak_download_median_mbps") if peak_samples >= method.min_samples else None
            ),
            "peak_samples": peak_samples,
            "download_mean_mbps": mean_mbps(int(row["download_bits"]), samples),
            "upload_mean_mbps": mean_mbps(int(row["upload_bits"]), samples),
            "share_ge_100_mbps": int(row["download_ge_100"]) / samples,
            "share_ge_1000_mbps": int(row["download_ge_gigabit"]) / samples,
        }
    )
    for tag, p in PERCENTILES:
        out[f"download_{tag}_mbps"] = linear_percentile(samples, p, float(row[f"{tag}_a"]), float(row[f"{tag}_b"]))
    return out
