"""Validation of the small-area estimates on a simulated month: subsample well-sampled communes, compare.

The truth of a commune cell is its full-sample median in a large simulated month (cells with at
least `truth_min` samples). Each replicate replaces every such cell's samples by a random
subsample of n (10, 30, 100), runs the estimator over the whole month so altered (the cell's
other samples are gone from its province's levels too), and records, per cell, the estimate,
its 90 % interval and the raw median of the n samples. Reported: the RMSE of ln(estimate) and of
ln(raw median) against ln(truth) (≈ relative errors), the share of intervals holding the truth,
overall and by grade (`docs/estimates-validation.md`; `python -m perf.validate_estimates`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ispeed.aggregator.estimates import Estimate, estimate_cells, unit_types


def samples_from_tests(columns: Mapping[str, Any]) -> pd.DataFrame:
    """Device-day samples (as `estimates_sql.SAMPLES_QUERY` builds them) from simulated test
    columns: valid tests with download and upload > 0, one sample per (network type, province,
    commune, provider, device, local date), the median of its downloads."""
    frame = pd.DataFrame(
        {
            name: np.asarray(columns[name])
            for name in (
                "network_type",
                "province_code",
                "commune_code",
                "provider",
                "device_hash",
                "ip_hash",
                "local_date",
                "download_mbps",
                "upload_mbps",
                "valid",
            )
        }
    )
    frame = frame[(frame["valid"] == 1) & (frame["download_mbps"] > 0) & (frame["upload_mbps"] > 0)]
    frame = frame.assign(device=np.where(frame["device_hash"] != "", frame["device_hash"], frame["ip_hash"]))
    keys = ["network_type", "province_code", "commune_code", "provider", "device", "local_date"]
    samples = frame.groupby(keys, sort=False)["download_mbps"].median().reset_index()
    return samples[["network_type", "province_code", "commune_code", "provider", "download_mbps"]]


@dataclass(frozen=True)
class Outcome:
    """One validated cell in one replicate."""

    network_type: str
    size: int  # samples kept
    truth_mbps: float
    estimate: Estimate


@dataclass(frozen=True)
class Summary:
    """The figures of one (network type, subsample size) group of outcomes."""

    network_type: str
    size: int
    cells: int  # (network type, commune) cells validated
    outcomes: int
    rmse_estimate: float  # of ln(estimate / truth)
    rmse_raw: float  # of ln(raw median / truth)
    coverage: float  # share of 90 % intervals holding the truth
    mean_width: float  # mean of ln(high / low)
    grades: dict[str, tuple[int, float]]  # grade -> (outcomes, coverage)


def validate(
    samples: pd.DataFrame,
    network_types: Sequence[str],
    sizes: Sequence[int] = (10, 30, 100),
    replicates: int = 20,
    truth_min: int = 500,
    min_samples: int = 300,
    seed: int = 1,
) -> list[Outcome]:
    """Run the subsampling experiment (module doc) and return every outcome."""
    rng = np.random.default_rng(seed)
    types = unit_types()
    out: list[Outcome] = []
    for network_type in network_types:
        rows = samples[(samples["network_type"] == network_type) & (samples["commune_code"] != "")]
        rest = samples[(samples["network_type"] == network_type) & (samples["commune_code"] == "")]
        sizes_by_cell = rows.groupby(["province_code", "commune_code"]).size()
        truth_cells = set(sizes_by_cell[sizes_by_cell >= truth_min].index)
        if not truth_cells:
            continue
        key = list(zip(rows["province_code"], rows["commune_code"], strict=True))
        in_truth = np.array([k in truth_cells for k in key])
        truth = rows[in_truth].groupby(["province_code", "commune_code"])["download_mbps"].median()
        kept_rows, validated = rows[~in_truth], rows[in_truth]
        groups = validated.groupby(["province_code", "commune_code"]).indices
        for size in sizes:
            for _ in range(replicates):
                picks = np.concatenate([rng.choice(idx, size=size, replace=False) for idx in groups.values()])
                month = pd.concat([kept_rows, validated.iloc[picks], rest], ignore_index=True)
                by_cell = {
                    (e.province_code, e.commune_code): e
                    for e in estimate_cells(month, network_type, min_samples, types)
                    if not e.provider
                }
                for cell in groups:
                    out.append(Outcome(network_type, size, float(truth[cell]), by_cell[cell]))
    return out


def summarise(outcomes: Sequence[Outcome]) -> list[Summary]:
    """Per (network type, size) and over all network types per size ('all')."""
    groups: dict[tuple[str, int], list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault((o.network_type, o.size), []).append(o)
        groups.setdefault(("all", o.size), []).append(o)
    out = []
    for (network_type, size), items in groups.items():
        truth = np.log([o.truth_mbps for o in items])
        est = np.log([o.estimate.estimate_mbps for o in items])
        raw = np.log([o.estimate.direct_median_mbps for o in items])
        low = np.log([o.estimate.estimate_low_mbps for o in items])
        high = np.log([o.estimate.estimate_high_mbps for o in items])
        covered = (low <= truth) & (truth <= high)
        grades = {}
        for grade in ("A", "B", "C"):
            mask = np.array([o.estimate.grade == grade for o in items])
            if mask.any():
                grades[grade] = (int(mask.sum()), float(covered[mask].mean()))
        out.append(
            Summary(
                network_type=network_type,
                size=size,
                cells=len({(o.network_type, o.estimate.commune_code) for o in items}),
                outcomes=len(items),
                rmse_estimate=float(np.sqrt(np.mean((est - truth) ** 2))),
                rmse_raw=float(np.sqrt(np.mean((raw - truth) ** 2))),
                coverage=float(covered.mean()),
                mean_width=float(np.mean(high - low)),
                grades=grades,
            )
        )
    order = {"all": 0, "fixed": 1, "mobile": 2, "5g": 3}
    return sorted(out, key=lambda s: (order.get(s.network_type, 9), s.size))
