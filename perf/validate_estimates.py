"""Validation of the small-area estimates (docs/estimates-validation.md): prints its tables, writes its chart.

Simulates a large month in memory (no store: `estimates_validation.samples_from_tests` builds the
device-day samples exactly as the store query does, which tests/test_estimates.py checks on both
backends), takes every commune cell with at least --truth-min samples as a commune whose truth is
known (its full-sample median), and runs `estimates_validation.validate`: --replicates
subsamples of 10, 30 and 100 samples of every such commune at once, the estimator over the
month so altered. Prints the markdown tables of the document and writes its SVG chart.

    python -m perf.validate_estimates [--tests 2000000] [--replicates 20] [--truth-min 600] [--seed 21]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ispeed.aggregator.estimates_validation import Summary, samples_from_tests, summarise, validate
from ispeed.aggregator.places import load_places
from ispeed.aggregator.simulate import SimulationConfig, generate
from ispeed.publisher import charts_svg

COLUMNS = ("network_type", "province_code", "commune_code", "provider", "device_hash", "ip_hash")
COLUMNS += ("local_date", "download_mbps", "upload_mbps", "valid")


def table(summaries: list[Summary]) -> str:
    lines = [
        "| network type | samples kept | communes | estimates | RMSE estimate | RMSE raw median | "
        "estimate's error vs raw | 90 % interval coverage | mean interval (high / low) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        lines.append(
            f"| {s.network_type} | {s.size} | {s.cells} | {s.outcomes} | {s.rmse_estimate:.3f} | {s.rmse_raw:.3f} | "
            f"{(s.rmse_estimate / s.rmse_raw - 1) * 100:+.0f} % | {s.coverage * 100:.1f} % | "
            f"×{np.exp(s.mean_width):.2f} |"
        )
    return "\n".join(lines)


def grade_table(summaries: list[Summary]) -> str:
    lines = ["| samples kept | grade | estimates | coverage |", "|---:|---|---:|---:|"]
    for s in summaries:
        if s.network_type != "all":
            continue
        for grade, (count, coverage) in sorted(s.grades.items()):
            lines.append(f"| {s.size} | {grade} | {count} | {coverage * 100:.1f} % |")
    return "\n".join(lines)


def chart(summaries: list[Summary], path: Path) -> None:
    overall = [s for s in summaries if s.network_type == "all"]
    labels = [f"n = {s.size}" for s in overall]
    series = [
        charts_svg.Series("5g", "estimate (EB)", [s.rmse_estimate * 100 for s in overall]),
        charts_svg.Series("mobile", "raw median", [s.rmse_raw * 100 for s in overall]),
    ]
    svg = charts_svg.line_chart(
        labels,
        series,
        "RMSE of ln(median) against the truth, ×100 (≈ % error)",
        "Line chart: root-mean-square error, in per cent, of the empirical-Bayes estimate and of the raw "
        "median of 10, 30 and 100 samples, against the full-sample median of well-sampled communes.",
        "%",
    )
    path.write_text(str(svg) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2_000_000)
    parser.add_argument("--replicates", type=int, default=20)
    parser.add_argument("--truth-min", type=int, default=600)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--chart", default="docs/estimates-validation.svg")
    args = parser.parse_args()
    t0 = time.perf_counter()
    parts: dict[str, list[np.ndarray]] = {k: [] for k in COLUMNS}
    for chunk in generate(SimulationConfig(2025, 7, args.tests, seed=args.seed), load_places()):
        for k in COLUMNS:
            parts[k].append(np.asarray(chunk[k]))
    samples = samples_from_tests({k: np.concatenate(v) for k, v in parts.items()})
    print(f"simulated {args.tests:,} tests, {len(samples):,} device-day samples in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    outcomes = validate(
        samples, ("fixed", "mobile", "5g"), replicates=args.replicates, truth_min=args.truth_min, seed=args.seed
    )
    summaries = summarise(outcomes)
    print(f"{len(outcomes):,} estimates validated in {time.perf_counter() - t0:.1f} s\n")
    print(table(summaries) + "\n")
    print(grade_table(summaries))
    chart(summaries, Path(args.chart))
    print(f"\nchart: {args.chart}")


if __name__ == "__main__":
    main()
