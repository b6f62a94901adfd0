"""The pages of one published month: each page's path, template, tables and charts (language-neutral parts).

`month_pages(md)` lists every page of a month once; `build` renders each in Vietnamese and
English and writes each table's CSV/JSON once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from ispeed.publisher import charts_svg
from ispeed.publisher.model import MonthData, Table, slugify


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


def _map_charts(md: MonthData, nt: str) -> Callable[[Callable[..., str]], dict[str, Markup]]:
    def charts(t: Callable[..., str]) -> dict[str, Markup]:
        dots = []
        for code, c in sorted(md.geo.communes.items()):
            cell = md.cell(nt, "commune", c.province_code, code)
            value = cell["download_median_mbps"] if cell and cell["published"] else None
            text = f"{c.full_name}: " + (
                f"{value:.1f} Mbps" if value is not None else t("insufficient", n=md.method.min_samples)
            )
            dots.append(charts_svg.Dot(c.lat, c.lon, value, text, f"../province/{c.province_code}.html#c-{code}"))
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
            "map": charts_svg.dot_map(dots, t("map_communes", nt=t(nt)), t("map_alt", nt=t(nt))),
            "tiles": charts_svg.tile_grid(tiles, t("tiles_title", nt=t(nt)), t("tiles_alt", nt=t(nt))),
        }

    return charts


def national_table(md: MonthData) -> Table:
    return Table("national", "network", [md.row(md.cell(nt, "national"), nt, "national") for nt in md.network_types])


def home_page(md: MonthData, national: Table) -> Page:
    return Page("index.html", "home.html", {"tables": {"national": national}}, _trend_chart(md, "", "trend_alt"))


def month_pages(md: MonthData, tables: dict[str, Table]) -> list[Page]:
    """Every page of the month (paths relative to the month folder)."""
    pages = [
        home_page(md, tables["national"]),
        Page(
            "rankings.html",
            "rankings.html",
            {"tables": {k: tables[k] for nt in md.network_types for k in (f"isps-{nt}", f"provinces-{nt}")}},
            _bar_charts(md, tables),
        ),
        Page("methodology.html", "methodology.html"),
        Page("servers.html", "servers.html", {"servers": md.servers}),
        Page("downloads.html", "downloads.html", {"table_ids": sorted(tables)}),
    ]
    for nt in md.network_types:
        pages.append(Page(f"map/{nt}.html", "map.html", {"nt": nt}, _map_charts(md, nt)))
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
