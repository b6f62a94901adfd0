"""Render the static site with jinja2 (autoescape, StrictUndefined) from `site/templates` and `site/static`.

Layout of the output directory (all links are relative, so the site works at any URL prefix,
from `ispeed serve` at `/site/`, any static web server, or a file:// URL):

    index.html, archive.html                 latest month's overview; every published month
    YYYY-MM/{index,rankings,targets,methodology,downloads}.html, map/<nt>.html, province/<code>.html, isp/<slug>.html
    en/…                                     the same pages in English
    data/YYYY-MM/                            stats.csv, changes.csv, histograms.csv, methodology.json,
                                             estimates.csv, report-YYYY-MM-vi.pdf, report-YYYY-MM-en.pdf,
                                             tests-YYYY-MM.csv.gz, tables/<id>.csv|json, isp/<slug>.csv|json
    static/                                  style.css, sort.js
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from ispeed.core import files
from ispeed.core.assets import site_dir
from ispeed.core.stats import STATS_COLUMNS, Cell, format_value
from ispeed.publisher import charts_svg, i18n
from ispeed.publisher.model import TABLE_COLUMNS, MonthData, Table
from ispeed.publisher.pages import home_page, month_pages, month_tables, national_table, provider_slug

BUILDER_VERSION = "3"  # bump when templates change what a built month looks like


@dataclass(frozen=True)
class ArchiveEntry:
    month: str
    status: str
    built_at: str  # ISO 8601 UTC
    methodology_version: str


def _write(path: Path, text: str) -> None:
    files.write_text(path, text)


def _csv_text(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([format_value(row.get(c)) for c in columns])
    return buf.getvalue()


def _contract_rows(cells: Sequence[Cell]) -> list[dict[str, Any]]:
    """Cells cut to the stats.csv contract columns, in their order (the JSON downloads)."""
    by_name: Sequence[Mapping[str, Any]] = cells  # walked by the contract's column names
    return [{k: c[k] for k in STATS_COLUMNS} for c in by_name]


def _json_text(meta: dict[str, Any], rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps({**meta, "rows": list(rows)}, ensure_ascii=False, separators=(",", ":")) + "\n"


class SiteBuilder:
    """Renders months and the site's root pages into `out_dir`."""

    def __init__(self, out_dir: Path, test_url: str = "", source: Path | None = None) -> None:
        self.out = Path(out_dir)
        self.source = source or site_dir()
        self.test_url = test_url
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.source / "templates")),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(legend=charts_svg.legend_items(), rating_rules=i18n.rating_rules)
        self.env.filters["slug"] = provider_slug

    # -- one month ------------------------------------------------------------------------------
    def build_month(self, md: MonthData) -> int:
        """Write the month's pages (both languages) and data files; returns the number of pages."""
        tables = month_tables(md)
        self._write_data(md, tables)
        pages = month_pages(md, tables)
        for lang in i18n.LANGUAGES:
            t = i18n.translator(lang)
            for page in pages:
                charts = page.charts(t) if page.charts else {}
                self._render(
                    lang,
                    f"{md.month}/{page.path}",
                    page.template,
                    {**self._month_context(md, lang), **page.context, "charts": charts},
                )
        return len(pages) * len(i18n.LANGUAGES)

    def _month_context(self, md: MonthData, lang: str) -> dict[str, Any]:
        previous = next((c["previous_month"] for c in md.changes), "")
        return {
            "md": md,
            "month": md.month,
            "method": md.method,
            "status": md.status,
            "data_until": md.data_until.isoformat(),
            "built": i18n.timestamp(md.built_at, lang),
            "previous_month": previous,
            "providers": [(p, provider_slug(p)) for p in md.providers],
            "provinces": sorted(md.geo.provinces.values(), key=lambda p: p.code),
            "network_types": md.network_types,
            "has_month": True,
        }

    def _write_data(self, md: MonthData, tables: dict[str, Table]) -> None:
        base = self.out / "data" / md.month
        meta = {
            "month": md.month,
            "status": md.status,
            "methodology_version": md.method.version,
            "min_samples": md.method.min_samples,
            "built_at": md.built_at.isoformat(),
        }
        for table in tables.values():
            _write(base / "tables" / f"{table.id}.csv", _csv_text(TABLE_COLUMNS, table.rows))
            _write(base / "tables" / f"{table.id}.json", _json_text({**meta, "table": table.id}, table.rows))
        for name in md.providers:
            rows = [c for c in md.cells if c["provider"] == name]
            slug = provider_slug(name)
            _write(base / "isp" / f"{slug}.csv", _csv_text(STATS_COLUMNS, rows))
            _write(
                base / "isp" / f"{slug}.json",
                _json_text({**meta, "provider": name}, _contract_rows(rows)),
            )
        _write(base / "stats.json", _json_text(meta, _contract_rows(md.cells)))
        _write(base / "changes.json", _json_text(meta, md.changes))

    # -- root pages -------------------------------------------------------------------------------
    def build_root(self, archive: Sequence[ArchiveEntry], latest: MonthData | None) -> None:
        """Static assets, the overview of the latest month at `/` (and `/en/`), and the archive."""
        self.copy_static()
        months = sorted(archive, key=lambda e: e.month, reverse=True)
        for lang in i18n.LANGUAGES:
            t = i18n.translator(lang)
            base = {"archive": months, "has_month": False}
            if latest is not None:
                page = home_page(latest, national_table(latest))
                ctx = {
                    **self._month_context(latest, lang),
                    **page.context,
                    "charts": page.charts(t) if page.charts else {},
                    "archive": months,
                    "month_prefix": f"{latest.month}/",
                }
                self._render(lang, "index.html", "home.html", ctx)
            else:
                self._render(lang, "index.html", "empty.html", base)
            self._render(lang, "archive.html", "archive.html", base)
            self._render(lang, "404.html", "not_found.html", base)  # both: its language switch links the other

    def copy_static(self) -> None:
        target = self.out / "static"
        target.mkdir(parents=True, exist_ok=True)
        for item in (self.source / "static").iterdir():
            if item.is_file():
                shutil.copyfile(item, target / item.name)

    # -- rendering ----------------------------------------------------------------------------------
    def _common(self, lang: str, rel: str) -> dict[str, Any]:
        """Links of a page at `rel` (path under its language root): root, language root, switch."""
        path = rel if lang == "vi" else f"en/{rel}"
        root = "../" * path.count("/")
        lang_root = "../" * rel.count("/")
        other = root + ("" if lang == "en" else "en/") + rel
        t = i18n.translator(lang)
        return {
            "lang": lang,
            "t": t,
            "root": root,
            "L": lang_root,
            "other_lang_href": other,
            "num": lambda v, d=1: i18n.number(v, lang, d),
            "pct": lambda v: i18n.signed_pct(v, lang),
            "share": lambda v, d=0: i18n.percent(v, lang, d),
            "test_url": self.test_url,
            "page": rel,
            "month_prefix": "",
        }

    def _render(self, lang: str, rel: str, template: str, context: dict[str, Any]) -> None:
        ctx = {**self._common(lang, rel), **context}
        if "month" in context and rel.startswith(f"{context['month']}/"):
            ctx["M"] = ctx["L"] + f"{context['month']}/"
        else:
            ctx["M"] = ctx["L"] + ctx.get("month_prefix", "")
        ctx["D"] = ctx["root"] + f"data/{context['month']}/" if "month" in context else ctx["root"] + "data/"
        html = self.env.get_template(template).render(ctx)
        _write(self.out / (rel if lang == "vi" else f"en/{rel}"), html)
