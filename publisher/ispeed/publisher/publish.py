"""`ispeed publish`: the nightly job — aggregate what is due and render the static site.

Due every run: the last complete month (final) and the current month to date (provisional),
plus any months asked for explicitly. A month whose figures, status and builder are unchanged
since it was last built (its fingerprint in `site.json`) keeps its pages; every published month
keeps its URL (`YYYY-MM/…`) and the archive lists them all. The root pages are rebuilt each run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from ispeed.aggregator import stats_table, targets
from ispeed.aggregator.aggregate import MonthStats, aggregate_month, month_changes, month_text, previous_month
from ispeed.aggregator.estimates import estimate_month, write_estimates
from ispeed.aggregator.estimates_sql import month_samples
from ispeed.aggregator.methodology import Methodology
from ispeed.aggregator.server_health import server_health
from ispeed.aggregator.targets import TargetsFile, load_targets
from ispeed.core import files
from ispeed.core.settings import parse_peak_hours
from ispeed.core.store import Store
from ispeed.core.timeutil import VN_TZ, month_bounds, parse_month, utcnow
from ispeed.publisher.build import BUILDER_VERSION, ArchiveEntry, SiteBuilder
from ispeed.publisher.i18n import LANGUAGES
from ispeed.publisher.model import Geography, MonthData

log = logging.getLogger("ispeed.publisher.publish")
MANIFEST = "site.json"
TREND_MONTHS = 12


@dataclass(frozen=True)
class PublishOptions:
    """What one run publishes and where; `today` is the Vietnam-local date (default: now)."""

    out_dir: Path
    method: Methodology = Methodology()
    today: dt.date | None = None
    months: tuple[str, ...] = ()  # more months to (re)publish, YYYY-MM
    export: bool = True  # write the month's open-data export (gzip CSV)
    force: bool = False  # rebuild months even when unchanged
    test_url: str = ""  # link to the browser test page ("" = no link)
    targets: Path | None = None  # national targets file (None: the shipped one)
    reports: bool = True  # render the month's PDF report, in each language, into its downloads


@dataclass
class PublishReport:
    out_dir: Path
    built: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    pages: int = 0
    seconds: float = 0.0
    latest: str = ""


@dataclass(frozen=True)
class DueMonth:
    year: int
    month: int
    status: str  # "final" or "provisional"
    data_until: dt.date

    @property
    def label(self) -> str:
        return month_text(self.year, self.month)


class _TrendRow(NamedTuple):
    """A row of `national_trend`'s query, in its column order."""

    month: str
    network_type: str
    provider: str
    download_median_mbps: float | None


@lru_cache(maxsize=1)
def geography() -> Geography:
    return Geography.load()


def due_months(today: dt.date, extra: Sequence[str] = ()) -> list[DueMonth]:
    """The last complete month (final), the current month to date (provisional), and `extra`, oldest first."""
    current = (today.year, today.month)
    last = previous_month(*current)
    due: dict[tuple[int, int], DueMonth] = {}
    for text in extra:
        ym = parse_month(text)
        if ym > current:
            from ispeed.core.errors import UsageError

            raise UsageError(f"--month {text} is in the future: publish months up to {month_text(*current)}")
        due[ym] = _due(ym, current, today)
    due[last] = _due(last, current, today)
    due[current] = _due(current, current, today)
    return [due[k] for k in sorted(due)]


def _due(ym: tuple[int, int], current: tuple[int, int], today: dt.date) -> DueMonth:
    if ym == current:
        return DueMonth(*ym, "provisional", today)
    return DueMonth(*ym, "final", month_bounds(*ym)[1] - dt.timedelta(days=1))


def read_manifest(out_dir: Path) -> dict[str, Any]:
    path = out_dir / MANIFEST
    if not path.exists():
        return {"months": {}}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    data.setdefault("months", {})
    return data


def _write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    files.write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def national_trend(store: Store, month: str) -> tuple[list[str], dict[tuple[str, str], list[float | None]]]:
    """The 12 months ending at `month`, and national download medians per (network type, provider)."""
    year, mon = parse_month(month)
    months = [month]
    for _ in range(TREND_MONTHS - 1):
        year, mon = previous_month(year, mon)
        months.append(month_text(year, mon))
    months.reverse()
    rows = store.query(
        f"SELECT {', '.join(_TrendRow._fields)} FROM {{db}}.monthly_stats "
        "WHERE level = 'national' AND published = 1 AND month >= {first} AND month <= {last}",
        {"first": months[0], "last": months[-1]},
    )
    position = {m: i for i, m in enumerate(months)}
    trend: dict[tuple[str, str], list[float | None]] = {}
    for row in map(_TrendRow._make, rows):
        series = trend.setdefault((row.network_type, row.provider), [None] * len(months))
        download = row.download_median_mbps
        series[position[row.month]] = None if download is None else float(download)
    return months, trend


def _fingerprint(
    stats: MonthStats,
    status: str,
    trend: dict[tuple[str, str], list[float | None]],
    targets_file: TargetsFile,
    reports: bool,
) -> str:
    payload = json.dumps(
        {
            "cells": stats.cells,
            "changes": stats.changes,
            "status": status,
            "trend": sorted((list(k), v) for k, v in trend.items()),
            "method": stats.method.method_values(),
            "builder": BUILDER_VERSION,
            "targets": targets_file.sha256,
            "reports": reports,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def export_gzip(store: Store, year: int, month: int, path: Path) -> int:
    """The month's open-data export as gzip CSV, written beside `path` and renamed; the row count."""
    from ispeed.aggregator.export import write_month

    with files.replacing(path) as tmp, gzip.open(tmp, "wt", encoding="utf-8", newline="", compresslevel=3) as fh:
        return write_month(store, year, month, fh)


def stored_month(
    store: Store, due: DueMonth, method: Methodology, built_at: dt.datetime, export_tests: int | None
) -> MonthData | None:
    """A month as stored in monthly_stats (for the root pages when it was not rebuilt this run)."""
    cells = stats_table.read_month(store, due.label)
    if not cells:
        return None
    first = cells[0]
    method = dataclasses.replace(
        method,
        min_samples=int(first["min_samples"]),
        include_simulated=bool(first["include_simulated"]),
        version=str(first["methodology_version"]),
    )
    if first.get("peak_hours"):  # months aggregated before migration 0008 have none
        method = dataclasses.replace(
            method,
            peak_hours=parse_peak_hours(str(first["peak_hours"])),
            gigabit_threshold_mbps=float(first.get("gigabit_threshold_mbps") or method.gigabit_threshold_mbps),
        )
    prev = month_text(*previous_month(due.year, due.month))
    changes = month_changes(cells, stats_table.read_month(store, prev), prev)
    months, trend = national_trend(store, due.label)
    return MonthData(
        month=due.label,
        status=due.status,
        data_until=due.data_until,
        method=method,
        built_at=built_at,
        cells=cells,
        changes=changes,
        trend_months=months,
        trend=trend,
        export_tests=export_tests,
        geo=geography(),
    )


def _latest(archive: dict[str, Any]) -> str:
    """The month the home page shows: the newest final month with published cells, else the newest."""

    def score(item: tuple[str, Any]) -> tuple[bool, bool, str]:
        month, entry = item
        return (entry.get("published_cells", 0) > 0, entry["status"] == "final", month)

    return max(archive.items(), key=score)[0] if archive else ""


def _write_reports(md: MonthData, folder: Path, store: str) -> dict[str, str]:
    """The month's PDF report in each language, into its data folder; language -> file name."""
    from ispeed.publisher.report import Provenance, report_name, write_report

    names = {}
    for lang in LANGUAGES:
        info = write_report(md, lang, folder / report_name(md.month, lang), Provenance(store))
        log.info("%s: %s report, %d pages in %.1f s", md.month, lang, info.pages, info.seconds)
        names[lang] = info.path.name
    return names


def publish(store: Store, options: PublishOptions, progress: Callable[[str], None] | None = None) -> PublishReport:
    """Aggregate the due months, build those that changed, rebuild the root pages; see the module doc."""
    started = time.perf_counter()
    out = Path(options.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    today = options.today or utcnow().astimezone(VN_TZ).date()
    manifest = read_manifest(out)
    builder = SiteBuilder(out, test_url=options.test_url)
    report = PublishReport(out)
    built: dict[str, MonthData] = {}
    now = utcnow().replace(microsecond=0)
    targets_file = load_targets(options.targets)
    for due in due_months(today, options.months):
        stats = aggregate_month(store, due.year, due.month, options.method, out / "data", progress)
        months, trend = national_trend(store, due.label)
        fingerprint = _fingerprint(stats, due.status, trend, targets_file, options.reports)
        entry = manifest["months"].get(due.label)
        if entry and entry.get("fingerprint") == fingerprint and not options.force:
            report.unchanged.append(due.label)
            continue
        if progress:
            progress(f"{due.label}: building pages")
        export_tests = None
        if options.export:
            export_tests = export_gzip(
                store, due.year, due.month, out / "data" / due.label / f"tests-{due.label}.csv.gz"
            )
        md = MonthData(
            month=due.label,
            status=due.status,
            data_until=due.data_until,
            method=stats.method,
            built_at=now,
            cells=stats.cells,
            changes=stats.changes,
            trend_months=months,
            trend=trend,
            export_tests=export_tests,
            geo=geography(),
        )
        md.servers = [
            h.as_row()
            for h in server_health(store, due.year, due.month, include_simulated=stats.method.include_simulated)
        ]
        md.estimates = estimate_month(month_samples(store, due.year, due.month, stats.method), stats.method)
        write_estimates(out / "data", due.label, md.estimates, stats.method)
        md.targets = targets_file
        md.target_history = {m: c for m, c in targets.history(store, due.label).items() if m != due.label}
        if options.reports and due.status == "final":  # a month to date changes nightly: no PDF until it ends
            if progress:
                progress(f"{due.label}: writing the PDF reports")
            md.reports = _write_reports(md, out / "data" / due.label, store.url.redacted)
        report.pages += builder.build_month(md)
        built[due.label] = md
        report.built.append(due.label)
        manifest["months"][due.label] = {
            "status": due.status,
            "built_at": now.isoformat(),
            "fingerprint": fingerprint,
            "methodology_version": stats.method.version,
            "min_samples": stats.method.min_samples,
            "published_cells": stats.published,
            "export_tests": export_tests,
            "data_until": due.data_until.isoformat(),
        }
    latest = _latest(manifest["months"])
    latest_md = built.get(latest)
    if latest_md is None and latest:
        entry = manifest["months"][latest]
        year, mon = parse_month(latest)
        latest_md = stored_month(
            store,
            DueMonth(year, mon, entry["status"], dt.date.fromisoformat(entry["data_until"])),
            options.method,
            dt.datetime.fromisoformat(entry["built_at"]),
            entry.get("export_tests"),
        )
    archive = [
        ArchiveEntry(
            m, e["status"], e["built_at"].replace("T", " ").replace("+00:00", " UTC"), e["methodology_version"]
        )
        for m, e in manifest["months"].items()
    ]
    builder.build_root(archive, latest_md)
    manifest.update(builder=BUILDER_VERSION, latest=latest, published_at=now.isoformat())
    _write_manifest(out, manifest)
    report.latest = latest
    report.seconds = time.perf_counter() - started
    return report
