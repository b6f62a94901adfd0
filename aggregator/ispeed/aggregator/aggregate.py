"""`ispeed aggregate`: a month's methodology-v1 cells, computed in the store, shaped and published.

The store does the heavy lifting (`cells_sql`: device-day samples, exact medians and order
statistics, counts); Python only adds the binomial CI pick, publication, ranks, month-over-month
changes and histograms, over a few thousand cell rows — never over the month's tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ispeed.aggregator import stats_table
from ispeed.aggregator.cells_sql import (
    CELL_COLUMNS,
    HISTOGRAM_LEVELS,
    PlaceRow,
    bin_edges_mbps,
    month_cells_query,
    places_query,
)
from ispeed.aggregator.ci import ci_orders, median_ci
from ispeed.aggregator.figures import added_figures
from ispeed.aggregator.methodology import Methodology
from ispeed.aggregator.outputs import write_month_files
from ispeed.aggregator.rank import assign_ranks
from ispeed.core.errors import StoreError
from ispeed.core.stats import LEVELS, Cell, empty_cell
from ispeed.core.store import Store
from ispeed.core.timeutil import month_bounds, utcnow

log = logging.getLogger("ispeed.aggregator")
Row = dict[str, Any]  # one `cells_query` row by column name (cells_sql.CELL_COLUMNS), places named


@dataclass
class MonthStats:
    """A month's cells (stats.csv rows), histograms and changes, plus a summary for humans."""

    month: str
    method: Methodology
    cells: list[Cell]
    histograms: list[dict[str, Any]]
    changes: list[dict[str, Any]]

    @property
    def published(self) -> int:
        return sum(1 for c in self.cells if c["published"])

    @property
    def tests(self) -> int:
        return sum(c["tests"] for c in self.cells if c["level"] == "national" and not c["provider"])

    def summary(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "cells": len(self.cells),
            "published_cells": self.published,
            "suppressed_cells": len(self.cells) - self.published,
            "valid_tests": {
                c["network_type"]: c["tests"] for c in self.cells if c["level"] == "national" and not c["provider"]
            },
            "insufficient_data": self.published == 0,
            "note": (
                ""
                if self.published
                else f"insufficient data: no cell reached {self.method.min_samples} samples in {self.month}"
            ),
        }


def month_text(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def _sort_key(method: Methodology) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The order of a month's rows (cells, histogram rows): network type, level, place, provider."""
    nt_order = {n: i for i, n in enumerate(method.network_types)}
    level_order = {n: i for i, n in enumerate(LEVELS)}
    return lambda c: (
        nt_order[c["network_type"]],
        level_order[c["level"]],
        c["province_code"],
        c["commune_code"],
        c["provider"],
    )


def _cell(month: str, row: Row, method: Methodology, k: int | None) -> Cell:
    samples = int(row["samples"])
    published = samples >= method.min_samples
    cell = empty_cell(
        month, row["network_type"], row["level"], row["province_code"], row["commune_code"], row["provider"]
    )
    cell.update(
        {"tests": int(row["tests"]), "samples": samples, "devices": int(row["devices"]), "published": published}
    )
    if published:
        low, high = median_ci(
            samples,
            method.ci_tail,
            row["ci_lo_slice"],
            int(row["ci_lo_start"]),
            row["ci_hi_slice"],
            int(row["ci_hi_start"]),
            k,
        )
        lat, jit = row["latency_median_ms"], row["jitter_median_ms"]

        def share(count: str) -> float:
            return int(row[count]) / samples

        cell.update(
            {
                "download_median_mbps": float(row["download_median_mbps"]),
                "download_ci_low_mbps": low,
                "download_ci_high_mbps": high,
                "upload_median_mbps": float(row["upload_median_mbps"]),
                "latency_median_ms": None if lat is None else float(lat),
                "jitter_median_ms": None if jit is None else float(jit),
                # the share of the cell's samples resting on each kind of evidence (spec/evidence.md),
                # from the sample counts of cells_sql.EVIDENCE
                "place_gps_share": share("ev_place_gps"),
                "place_ip_share": share("ev_place_ip"),
                "network_type_ip_share": share("ev_nt_ip"),
                "network_type_device_share": share("ev_nt_device"),
                "network_type_declared_share": share("ev_nt_declared"),
                "device_issued_share": share("ev_dev_issued"),
                **added_figures(row, samples, method),  # type: ignore[typeddict-item]
            }
        )
    return cell


def _histograms(cell: Cell, row: Row) -> list[dict[str, Any]]:
    place = {
        "month": cell["month"],
        "network_type": cell["network_type"],
        "level": cell["level"],
        "province_code": cell["province_code"],
        "commune_code": cell["commune_code"],
        "provider": cell["provider"],
    }
    out = []
    for metric, hist in (("download", row["hist_dl"]), ("upload", row["hist_ul"])):
        keys, counts = hist
        for index, count in sorted(zip((int(k) for k in keys), (int(c) for c in counts), strict=True)):
            low, high = bin_edges_mbps(index)
            out.append(
                {
                    **place,
                    "metric": metric,
                    "bin": index,
                    "bin_low_mbps": low,
                    "bin_high_mbps": high,
                    "samples": count,
                }
            )
    return out


def month_query_params(year: int, month: int, method: Methodology) -> dict[str, Any]:
    """The parameters of `month_cells_query` and `device_days_query` for one month."""
    start, end = month_bounds(year, month)
    params: dict[str, Any] = {
        "start": start,
        "end": end,
        "include_simulated": int(method.include_simulated),
        "min_samples": method.min_samples,
        "peak_mask": method.peak_mask,
        "gigabit_mbps": method.gigabit_threshold_mbps,
    }  # suppressed cells' figures stay empty
    params.update({f"network_type_{i}": network_type for i, network_type in enumerate(method.network_types)})
    return params


def compute_month(
    store: Store, year: int, month: int, method: Methodology, progress: Callable[[str], None] | None = None
) -> MonthStats:
    """Cells of one month for every network type, ranked; no previous-month changes yet."""
    label = month_text(year, month)
    types = list(method.network_types)
    params = month_query_params(year, month, method)
    if progress:
        progress(f"{label}: {', '.join(types)} cells")
    names = _place_names(map(PlaceRow._make, store.query(places_query(), {**params, "network_types": types})))
    by_type: dict[str, list[Row]] = {network_type: [] for network_type in types}
    for result in store.query(month_cells_query(method.ci_level, len(types)), params):
        row = dict(zip(CELL_COLUMNS, result, strict=True))
        row.update(
            province_code=names[0][row["province_h"]],
            commune_code=names[1][row["commune_h"]],
            provider=names[2][row["provider_h"]],
        )
        by_type[row["network_type"]].append(row)
    cells: list[Cell] = []
    histograms: list[dict[str, Any]] = []
    counts = sorted(
        {int(row["samples"]) for rows in by_type.values() for row in rows if int(row["samples"]) >= method.min_samples}
    )
    orders = dict(zip(counts, ci_orders(counts, method.ci_tail), strict=True))
    for network_type, rows in by_type.items():
        if not rows:
            cells.append(empty_cell(label, network_type, "national"))
        for row in rows:
            cell = _cell(label, row, method, orders.get(int(row["samples"])))
            cells.append(cell)
            if cell["published"] and cell["level"] in HISTOGRAM_LEVELS:
                histograms.extend(_histograms(cell, row))
    assign_ranks(cells)
    key = _sort_key(method)
    cells.sort(key=key)
    histograms.sort(key=lambda h: (key(h), h["metric"], h["bin"]))
    return MonthStats(label, method, cells, histograms, [])


def _place_names(rows: Iterable[PlaceRow]) -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
    """Hash → string for provinces, communes and providers (the cells query keys places by
    cityHash64: fixed-width keys group and compare faster than strings). Two strings of one
    column with the same hash would merge two places, so that stops the run."""
    maps: tuple[dict[int, str], dict[int, str], dict[int, str]] = ({0: ""}, {0: ""}, {0: ""})
    for row in rows:
        pairs = (row.province_code, row.province_h), (row.commune_code, row.commune_h), (row.provider, row.provider_h)
        for column, (text, digest) in enumerate(pairs):
            seen = maps[column].setdefault(int(digest), text)
            if seen != text:
                raise StoreError(
                    f"cityHash64 collision between {seen!r} and {text!r}: cells cannot be told apart; report this"
                )
    return maps


def month_changes(current: Sequence[Cell], previous: Sequence[Cell], previous_label: str) -> list[dict[str, Any]]:
    """Changes of the published cells that were also published the month before."""

    def key(c: Cell) -> tuple[str, ...]:
        return (c["network_type"], c["level"], c["province_code"], c["commune_code"], c["provider"])

    before = {key(c): c for c in previous if c["published"]}
    out = []
    for cell in current:
        old = before.get(key(cell))
        if not cell["published"] or old is None:
            continue
        row: dict[str, Any] = {
            "month": cell["month"],
            "network_type": cell["network_type"],
            "level": cell["level"],
            "province_code": cell["province_code"],
            "commune_code": cell["commune_code"],
            "provider": cell["provider"],
            "rank": cell["rank"],
            "previous_month": previous_label,
            "previous_rank": old["rank"],
        }
        for name, short, now, then in (
            ("download_median_mbps", "download", cell["download_median_mbps"], old["download_median_mbps"]),
            ("upload_median_mbps", "upload", cell["upload_median_mbps"], old["upload_median_mbps"]),
            ("latency_median_ms", "latency", cell["latency_median_ms"], old["latency_median_ms"]),
        ):
            row[name] = now
            row[f"previous_{name}"] = then
            row[f"{short}_change_pct"] = (
                None if now is None or not then else (float(now) - float(then)) / float(then) * 100.0
            )
        out.append(row)
    return out


def aggregate_month(
    store: Store,
    year: int,
    month: int,
    method: Methodology,
    out_dir: Path | None,
    progress: Callable[[str], None] | None = None,
) -> MonthStats:
    """Compute a month, compare with the stored previous month, store it and write its files.

    Simulated tests count only when `method.include_simulated` is set (the demo sets it).
    """
    stats = compute_month(store, year, month, method, progress)
    prev_label = month_text(*previous_month(year, month))
    stats.changes = month_changes(stats.cells, stats_table.read_month(store, prev_label), prev_label)
    if progress:
        progress(f"{stats.month}: writing {len(stats.cells)} cells")
    stats_table.write_month(store, stats.month, stats.cells, method, utcnow().replace(microsecond=0))
    if out_dir is not None:
        write_month_files(out_dir, stats.month, stats.cells, stats.changes, stats.histograms, method, stats.summary())
    if not stats.published:
        log.info("%s", stats.summary()["note"])
    return stats
