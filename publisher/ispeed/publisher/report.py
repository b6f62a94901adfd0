"""The monthly report as a PDF: the site's jinja2 templates (`report.html`) rendered by WeasyPrint.

`report_html(md, lang, provenance)` builds the page from a month as published (`MonthData`);
`write_report(...)` lays it out on A4 with WeasyPrint, which embeds the fonts it uses (Debian's
DejaVu by default: full Vietnamese glyphs) as subsets with their Unicode mapping, so the text
layer reads back (`pdftotext`). WeasyPrint is imported only here, when a report is written.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

from ispeed.aggregator.estimates import ESTIMATES_VERSION
from ispeed.core import files
from ispeed.core.errors import UsageError
from ispeed.core.method import METHOD_VERSION
from ispeed.publisher import charts_svg, i18n
from ispeed.publisher.build import SiteBuilder
from ispeed.publisher.model import MonthData
from ispeed.publisher.pages import map_charts, provider_slug, target_charts, target_view

METHOD_KEYS = ("m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "method_estimates")


@dataclass(frozen=True)
class Provenance:
    """Where the report's figures come from and when it was built."""

    store: str  # the store URL, password redacted
    software: str = ""  # ispeed's version (default: the installed distribution's)


@dataclass(frozen=True)
class ReportInfo:
    path: Path
    pages: int
    seconds: float


def report_name(month: str, lang: str) -> str:
    """The PDF's file name in a site's downloads."""
    return f"report-{month}-{lang}.pdf"


def _software() -> str:
    try:
        return f"ispeed {importlib.metadata.version('ispeed')}"
    except importlib.metadata.PackageNotFoundError:
        return "ispeed (source tree)"


def _coverage(md: MonthData) -> dict[str, Any]:
    """Per network type (nationally and per province): communes with published figures, with an
    estimate only (and its grade), and with no sample."""
    units = md.geo.communes
    out: dict[str, Any] = {"total": len(units), "by_type": {}, "by_province": {}}
    for nt in md.network_types:
        published = {c["commune_code"] for c in md.cells if _commune(c, nt) and c["published"]}
        estimated = {e.commune_code: e.grade for e in md.estimates if e.network_type == nt and not e.provider}
        grades = Counter(estimated.values())
        none = len(units) - len(published & set(units)) - len(set(estimated) & set(units))
        out["by_type"][nt] = {
            "published": len(published),
            "estimated": len(estimated),
            "grades": [grades.get(g, 0) for g in ("A", "B", "C")],
            "none": none,
        }
        for code in md.geo.provinces:
            mine = {c.code for c in md.geo.communes_of(code)}
            row = out["by_province"].setdefault(code, {"total": len(mine)})
            row[nt] = (len(published & mine), len(set(estimated) & mine), len(mine - published - set(estimated)))
    return out


def _commune(cell: Any, network_type: str) -> bool:
    return bool(cell["network_type"] == network_type and cell["level"] == "commune" and not cell["provider"])


def report_context(md: MonthData, lang: str, provenance: Provenance) -> dict[str, Any]:
    """Everything `report.html` shows."""
    t = i18n.translator(lang)
    maps = {nt: map_charts(md, nt, links=False)(t) for nt in md.network_types}
    view = target_view(md)
    isp_tables = {nt: md.provider_rows(nt) for nt in md.network_types}
    bars = {
        nt: charts_svg.ci_bars(
            [
                charts_svg.Bar(
                    r["provider"], r["download_median_mbps"], r["download_ci_low_mbps"], r["download_ci_high_mbps"]
                )
                for r in rows
                if r["published"]
            ],
            t("rank_isps", nt=t(nt)),
            t("bars_alt", nt=t(nt)),
            t("mbps"),
        )
        for nt, rows in isp_tables.items()
    }
    provinces = sorted(md.geo.provinces.values(), key=lambda p: p.code)
    by_province = {nt: {r["province_code"]: r for r in md.province_rows(nt)} for nt in md.network_types}
    trend = charts_svg.line_chart(
        md.trend_months,
        [
            charts_svg.Series(nt, t(nt), md.trend.get((nt, ""), [None] * len(md.trend_months)))
            for nt in md.network_types
        ],
        t("trend_title"),
        t("trend_alt"),
        t("mbps"),
    )
    tests = sum(c["tests"] for c in md.cells if c["level"] == "national" and not c["provider"])
    return {
        "md": md,
        "month": md.month,
        "method": md.method,
        "status": md.status,
        "lang": lang,
        "t": t,
        "num": lambda v, d=1: i18n.number(v, lang, d),
        "pct": lambda v: i18n.signed_pct(v, lang),
        "built": i18n.timestamp(md.built_at, lang),
        "network_types": md.network_types,
        "legend": charts_svg.legend_items(),
        "isp_tables": isp_tables,
        "bars": bars,
        "provinces": provinces,
        "by_province": by_province,
        "maps": maps,
        "trend": trend,
        "target_charts": target_charts(md, view)(t) if view["views"] else {},
        **view,
        "coverage": _coverage(md),
        "method_keys": METHOD_KEYS,
        "provenance": provenance,
        "software": provenance.software or _software(),
        "measure_version": METHOD_VERSION,
        "estimates_version": ESTIMATES_VERSION,
        "valid_tests": tests,
        "slug": provider_slug,
        "css": Markup(_css()),
    }


def _css() -> str:
    from ispeed.core.assets import site_dir

    return (site_dir() / "static" / "report.css").read_text(encoding="utf-8")


def report_html(md: MonthData, lang: str, provenance: Provenance) -> str:
    """The report as one HTML document (styles inline, charts as inline SVG, no external resource)."""
    if lang not in i18n.LANGUAGES:
        raise UsageError(f"--lang {lang!r}: use {' or '.join(i18n.LANGUAGES)}")
    env = SiteBuilder(Path(".")).env
    return env.get_template("report.html").render(report_context(md, lang, provenance))


def load_weasyprint() -> Any:
    """WeasyPrint, or one clear error when it or the system libraries it loads are missing."""
    try:
        import weasyprint
    except ImportError as exc:
        raise UsageError(f"the PDF report needs WeasyPrint ({exc}): pip install 'ispeed[aggregator]'") from None
    except OSError as exc:  # WeasyPrint loads Pango with ctypes at import time
        raise UsageError(
            f"WeasyPrint cannot load its system libraries ({exc}): install Debian's libpango-1.0-0, "
            "libpangoft2-1.0-0 and fonts-dejavu-core (scripts/setup.sh run)"
        ) from None
    return weasyprint


def write_report(md: MonthData, lang: str, path: Path, provenance: Provenance) -> ReportInfo:
    """Render the report and write the PDF atomically at `path`; its page count and build time."""
    started = time.perf_counter()
    weasyprint = load_weasyprint()
    html = report_html(md, lang, provenance)
    document = weasyprint.HTML(string=html).render()
    with files.replacing(path) as tmp:
        document.write_pdf(tmp)
    return ReportInfo(path, len(document.pages), time.perf_counter() - started)
