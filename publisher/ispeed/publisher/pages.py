"""The pages of one published month: each page's path, template, tables and charts (language-neutral parts).

`month_pages(md)` lists every page of a month once; `build` renders each in Vietnamese and
English and writes each table's CSV/JSON once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from ispeed.aggregator import targets
from ispeed.publisher import charts_svg
from ispeed.publisher.model import MonthData, Table, slugify

TARGET_MONTHS = 12  # months of history on the Targets page


@dataclass
class Page:
    """A page of a month: path under the month folder, template, and its context (tables, charts)."""

    path: str  # e.g. "province/01.html"
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    charts: Callable[[Callable[..., str]], dict[str, Markup]] | None = None  # per-language charts


def provider_slug(name: str) -> str:
    return slugify(name)


def month_tables(md: MonthData) -> dict[str, Table]:
    """Every table of the month's pages, by id."""
    tables: dict[str, Table] = {}

    def add(table: Table) -> None:
        tables[table.id] = table

    add(national_table(md))
    for nt in md.network_types:
        add(Table(f"isps-{nt}", "provider", md.provider_rows(nt)))
        add(Table(f"provinces-{nt}", "province", md.province_rows(nt), sortable=True))
        for code in sorted(md.geo.provinces):
            add(Table(f"province-{code}-isps-{nt}", "provider", md.provider_rows(nt, "province", code)))
            add(Table(f"province-{code}-communes-{nt}", "commune", md.commune_rows(nt, code), sortable=True))
        for name in md.providers:
            add(
                Table(
                    f"isp-{provider_slug(name)}-provinces-{nt}", "province", md.province_rows(nt, name), sortable=True
                )
            )
    for name in md.providers:
        add(
            Table(
                f"isp-{provider_slug(name)}-national",
                "network",
                [
                    md.row(md.cell(nt, "national", "", "", name), nt, "national", "", "", name)
                    for nt in md.network_types
                ],
            )
        )
    return tables


def _trend_chart(md: MonthData, provider: str, title_key: str) -> Callable[[Callable[..., str]], dict[str, Markup]]:
    def charts(t: Callable[..., str]) -> dict[str, Markup]:
        series = [
            charts_svg.Series(nt, t(nt), md.trend.get((nt, provider), [None] * len(md.trend_months)))
            for nt in md.network_types
        ]
        alt = t(title_key, isp=provider) if provider else t(title_key)
        return {"trend": charts_svg.line_chart(md.trend_months, series, t("trend_title"), alt, t("mbps"))}

    return charts


def _bar_charts(md: MonthData, tables: dict[str, Table]) -> Callable[[Callable[..., str]], dict[str, Markup]]:
    def charts(t: Callable[..., str]) -> dict[str, Markup]:
        out = {}
        for nt in md.network_types:
            bars = [
                charts_svg.Bar(
                    r["provider"], r["download_median_mbps"], r["download_ci_low_mbps"], r["download_ci_high_mbps"]
                )
                for r in tables[f"isps-{nt}"].rows
                if r["published"]
            ]
            out[nt] = charts_svg.ci_bars(bars, t("rank_isps", nt=t(nt)), t("bars_alt", nt=t(nt)), t("mbps"))
        return out

    return charts


def map_charts(md: MonthData, nt: str, links: bool = True) -> Callable[[Callable[..., str]], dict[str, Markup]]:
    def charts(t: Callable[..., str]) -> dict[str, Markup]:
        dots = []
        for code, c in sorted(md.geo.communes.items()):
            cell = md.cell(nt, "commune", c.province_code, code)
            value = cell["download_median_mbps"] if cell and cell["published"] else None
            estimate = None if value is not None else md.estimate(nt, code)
            if estimate is not None:
                text = f"{c.full_name}: ≈ {estimate.estimate_mbps:.1f} Mbps ({t('estimate_mark')} {estimate.grade}, "
                text += f"{estimate.estimate_low_mbps:.1f}–{estimate.estimate_high_mbps:.1f}, n = {estimate.samples})"
            else:
                text = f"{c.full_name}: " + (
                    f"{value:.1f} Mbps" if value is not None else t("insufficient", n=md.method.min_samples)
                )
            dots.append(
                charts_svg.Dot(
                    c.lat,
                    c.lon,
                    value if estimate is None else estimate.estimate_mbps,
                    text,
                    f"../province/{c.province_code}.html#c-{code}",
                    estimated=estimate is not None,
                )
            )
        tiles = []
        for code, p in sorted(md.geo.provinces.items()):
            cell = md.cell(nt, "province", code)
            value = cell["download_median_mbps"] if cell and cell["published"] else None
            short = p.name if len(p.name) <= 12 else "".join(w[0] for w in p.name.split()).upper()
            text = f"{p.full_name}: " + (
                f"{value:.1f} Mbps" if value is not None else t("insufficient", n=md.method.min_samples)
            )
            tiles.append(charts_svg.Tile(code, short, p.lat, p.lon, value, text, f"../province/{code}.html"))
        return {
            "map": charts_svg.dot_map(dots, t("map_communes", nt=t(nt)), t("map_alt", nt=t(nt)), links),
            "tiles": charts_svg.tile_grid(tiles, t("tiles_title", nt=t(nt)), t("tiles_alt", nt=t(nt))),
        }

    return charts


def target_view(md: MonthData) -> dict[str, Any]:
    """The Targets page's figures (language-neutral): per target, the national and province values
    of the months shown, the latest month's status."""
    if md.targets is None:
        return {"targets_file": None, "views": [], "months": []}
    by_month: dict[str, Sequence[Mapping[str, Any]]] = {**md.target_history, md.month: md.cells}
    months = [m for m in targets.month_labels(md.month, TARGET_MONTHS) if m in by_month]
    views = []
    for target in md.targets.targets:

        def figures(province: str, t: targets.Target = target) -> list[targets.Value]:
            return [targets.value(t, by_month[m], province, md.method.min_samples) for m in months]

        national = figures("")
        provinces = [(p, figures(p.code)) for p in sorted(md.geo.provinces.values(), key=lambda p: p.code)]
        figured = any(v.value is not None for values in [national] + [f for _, f in provinces] for v in values)
        views.append({"target": target, "national": national, "provinces": provinces, "figured": figured})
    return {
        "targets_file": md.targets,
        "views": views,
        "months": months,
        "gigabit_mbps": targets.gigabit_threshold_mbps(md.cells),
    }


def target_charts(md: MonthData, view: dict[str, Any]) -> Callable[[Callable[..., str]], dict[str, Markup]]:
    def charts(t: Callable[..., str]) -> dict[str, Markup]:
        out = {}
        for item in view["views"]:
            target: targets.Target = item["target"]
            scale = 100.0 if target.is_share else 1.0
            values = [None if v.value is None else v.value * scale for v in item["national"]]
            title = target.text("title", t("lang_code"))
            unit = "%" if target.is_share else t("mbps")
            threshold = f"{target.threshold * scale:g} {unit}"
            out[target.id] = charts_svg.line_chart(
                view["months"],
                [charts_svg.Series("fixed", t("target_national"), values)],
                title,
                t("target_chart_alt", title=title, threshold=threshold),
                unit,
                reference=target.threshold * scale,
                reference_label=t("threshold_line"),
                y_limit=100.0 if target.is_share else None,
            )
        return out

    return charts


def national_table(md: MonthData) -> Table:
    return Table("national", "network", [md.row(md.cell(nt, "national"), nt, "national") for nt in md.network_types])


def home_page(md: MonthData, national: Table) -> Page:
    return Page("index.html", "home.html", {"tables": {"national": national}}, _trend_chart(md, "", "trend_alt"))


def month_pages(md: MonthData, tables: dict[str, Table]) -> list[Page]:
    """Every page of the month (paths relative to the month folder)."""
    targets_view = target_view(md)
    pages = [
        home_page(md, tables["national"]),
        Page(
            "rankings.html",
            "rankings.html",
            {"tables": {k: tables[k] for nt in md.network_types for k in (f"isps-{nt}", f"provinces-{nt}")}},
            _bar_charts(md, tables),
        ),
        Page("methodology.html", "methodology.html"),
        Page("targets.html", "targets.html", targets_view, target_charts(md, targets_view)),
        Page("servers.html", "servers.html", {"servers": md.servers}),
        Page("downloads.html", "downloads.html", {"table_ids": sorted(tables)}),
    ]
    for nt in md.network_types:
        pages.append(Page(f"map/{nt}.html", "map.html", {"nt": nt}, map_charts(md, nt)))
    for code, place in sorted(md.geo.provinces.items()):
        pages.append(
            Page(
                f"province/{code}.html",
                "province.html",
                {
                    "place": place,
                    "communes_count": len(md.geo.communes_of(code)),
                    "tables": {
                        k: tables[k]
                        for nt in md.network_types
                        for k in (f"province-{code}-isps-{nt}", f"province-{code}-communes-{nt}")
                    },
                },
            )
        )
    for name in md.providers:
        slug = provider_slug(name)
        pages.append(
            Page(
                f"isp/{slug}.html",
                "isp.html",
                {
                    "provider": name,
                    "slug": slug,
                    "tables": {
                        k: tables[k]
                        for k in [f"isp-{slug}-national"] + [f"isp-{slug}-provinces-{nt}" for nt in md.network_types]
                    },
                },
                _trend_chart(md, name, "isp_trend_alt"),
            )
        )
    return pages
