"""ispeed publish: what is due, the pages and downloads of a simulated month, unchanged months kept, CLI."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from pathlib import Path

import pytest

from ispeed.aggregator.methodology import Methodology
from ispeed.aggregator.simulate import SimulationConfig, simulate
from ispeed.cli.main import main
from ispeed.core.errors import UsageError
from ispeed.core.stats import STATS_COLUMNS
from ispeed.core.store import open_store
from ispeed.publisher import charts_svg, i18n
from ispeed.publisher.model import slugify
from ispeed.publisher.publish import PublishOptions, due_months, publish, read_manifest
from ispeed.server.site_serving import parse_publish_at, seconds_until

TODAY = dt.date(2025, 8, 10)
MIN_SAMPLES = 20


def test_due_months_are_the_last_complete_month_and_the_month_to_date() -> None:
    due = due_months(TODAY)
    assert [(d.label, d.status, d.data_until) for d in due] == [
        ("2025-07", "final", dt.date(2025, 7, 31)),
        ("2025-08", "provisional", TODAY),
    ]
    january = due_months(dt.date(2026, 1, 3), ["2025-11"])
    assert [d.label for d in january] == ["2025-11", "2025-12", "2026-01"]
    with pytest.raises(UsageError, match="in the future"):
        due_months(TODAY, ["2025-09"])


def test_helpers_format_and_schedule() -> None:
    assert i18n.number(1234.56, "vi") == "1.234,6" and i18n.number(1234.56, "en") == "1,234.6"
    assert i18n.number(None, "en") == "–"
    assert slugify("FPT Telecom") == "fpt-telecom" and slugify("Đắk Lắk") == "dak-lak"
    assert charts_svg.colour_for(None) == charts_svg.NO_DATA_COLOUR
    assert charts_svg.colour_for(10) != charts_svg.colour_for(500)
    assert charts_svg.text_colour("#fde725") == "#000000" and charts_svg.text_colour("#440154") == "#ffffff"
    assert parse_publish_at("off") is None and parse_publish_at("02:30") == dt.time(2, 30)
    with pytest.raises(Exception, match="--publish-at"):
        parse_publish_at("25:00")
    # 01:00 UTC is 08:00 in Vietnam: the next 02:30 local is 18.5 hours later
    now = dt.datetime(2025, 8, 10, 1, 0, tzinfo=dt.UTC)
    assert seconds_until(dt.time(2, 30), now) == pytest.approx(18.5 * 3600)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, object]:
    root = tmp_path_factory.mktemp("publish")
    store_url = f"chdb:{root / 'store'}"
    out = root / "site"
    with open_store(store_url) as store:
        simulate(store, SimulationConfig(year=2025, month=7, tests=30_000, seed=3))
        simulate(store, SimulationConfig(year=2025, month=6, tests=10_000, seed=4))
        options = PublishOptions(
            out, Methodology(min_samples=MIN_SAMPLES, include_simulated=True), today=TODAY, months=("2025-06",)
        )
        report = publish(store, options)
    return out, store_url, report


def test_publish_builds_every_page_in_both_languages(built: tuple[Path, str, object]) -> None:
    out, _, report = built
    assert report.built == ["2025-06", "2025-07", "2025-08"]  # type: ignore[attr-defined]
    assert report.latest == "2025-07"  # type: ignore[attr-defined]
    from ispeed.admin_geo import provinces

    for prefix in ("", "en/"):
        month = out / prefix / "2025-07"
        for name in (
            "index.html",
            "rankings.html",
            "methodology.html",
            "downloads.html",
            "map/fixed.html",
            "map/mobile.html",
            "map/5g.html",
        ):
            assert (month / name).is_file(), name
        assert sorted(p.stem for p in (month / "province").glob("*.html")) == sorted(p.code for p in provinces())
        assert {p.stem for p in (month / "isp").glob("*.html")} >= {"viettel", "vnpt", "fpt-telecom"}
        assert (out / prefix / "index.html").is_file() and (out / prefix / "archive.html").is_file()
    vi = (out / "2025-07" / "index.html").read_text(encoding="utf-8")
    en = (out / "en" / "2025-07" / "index.html").read_text(encoding="utf-8")
    assert '<html lang="vi">' in vi and '<html lang="en">' in en
    # each page states the month, the methodology version and when it was built
    assert "Tháng 2025-07 · Phương pháp phiên bản 1 · Xây dựng lúc" in vi
    assert "Month 2025-07 · Methodology version 1 · Built" in en
    assert "<svg" in vi and "http://" not in vi.replace('xmlns="http://www.w3.org/2000/svg"', "")
    provisional = (out / "en" / "2025-08" / "index.html").read_text(encoding="utf-8")
    assert "Provisional: month 2025-08 is not over" in provisional
    archive = (out / "en" / "archive.html").read_text(encoding="utf-8")
    assert all(f'href="{m}/index.html"' in archive for m in ("2025-06", "2025-07", "2025-08"))
    methodology = (out / "en" / "2025-07" / "methodology.html").read_text(encoding="utf-8")
    assert f"<td>{MIN_SAMPLES}</td>" in methodology and "binom.ppf(0.025, n, 0.5)" in methodology


def test_rankings_show_cis_ties_and_suppressed_cells(built: tuple[Path, str, object]) -> None:
    out, _, _ = built
    html = (out / "en" / "2025-07" / "rankings.html").read_text(encoding="utf-8")
    assert html.count("<table") == 6 and "95% CI" in html
    assert f"Insufficient data (&lt; {MIN_SAMPLES} samples)" in html
    stats = list(csv.DictReader(io.StringIO((out / "data" / "2025-07" / "stats.csv").read_text())))
    provinces = [
        r
        for r in stats
        if r["level"] == "province" and not r["provider"] and r["published"] == "true" and r["network_type"] == "fixed"
    ]
    ranks = [int(r["rank"]) for r in provinces]
    if len(ranks) != len(set(ranks)):  # shared ranks are shown as ties
        assert '<abbr title="tied">=' in html


def test_downloads_tables_bundles_and_open_data(built: tuple[Path, str, object]) -> None:
    out, _, _ = built
    data = out / "data" / "2025-07"
    for name in ("stats.csv", "stats.json", "changes.csv", "changes.json", "histograms.csv", "methodology.json"):
        assert (data / name).is_file(), name
    table = json.loads((data / "tables" / "provinces-fixed.json").read_text())
    assert table["month"] == "2025-07" and table["min_samples"] == MIN_SAMPLES and len(table["rows"]) == 34
    rows = list(csv.DictReader(io.StringIO((data / "tables" / "province-01-communes-fixed.csv").read_text())))
    from ispeed.admin_geo import communes

    assert {r["commune_code"] for r in rows} == {c.code for c in communes("01")}
    bundle = list(csv.DictReader(io.StringIO((data / "isp" / "viettel.csv").read_text())))
    assert bundle and {r["provider"] for r in bundle} == {"Viettel"} and list(bundle[0]) == list(STATS_COLUMNS)
    stats = list(csv.DictReader(io.StringIO((data / "stats.csv").read_text())))
    assert len(bundle) == sum(1 for r in stats if r["provider"] == "Viettel")
    with gzip.open(data / "tests-2025-07.csv.gz", "rt", encoding="utf-8") as fh:
        export = list(csv.DictReader(fh))
    assert len(export) == 30_000 and "ip_hash" not in export[0]
    downloads = (out / "en" / "2025-07" / "downloads.html").read_text(encoding="utf-8")
    assert "tests-2025-07.csv.gz" in downloads and "isp/viettel.csv" in downloads
    manifest = read_manifest(out)
    assert manifest["months"]["2025-07"]["export_tests"] == 30_000 and manifest["latest"] == "2025-07"


def test_unchanged_months_are_kept_and_the_cli_publishes(
    built: tuple[Path, str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    out, store_url, _ = built
    before = read_manifest(out)["months"]
    page = out / "2025-07" / "index.html"
    stamp = page.stat().st_mtime_ns
    code = main(
        [
            "publish",
            "--store",
            store_url,
            "--out",
            str(out),
            "--today",
            TODAY.isoformat(),
            "--include-simulated",
            "--min-samples",
            str(MIN_SAMPLES),
            "--no-export",
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "unchanged 2025-07, 2025-08" in err and "built nothing" in err
    assert page.stat().st_mtime_ns == stamp
    after = read_manifest(out)["months"]
    assert after["2025-07"]["fingerprint"] == before["2025-07"]["fingerprint"] and "2025-06" in after
    assert main(["publish", "--store", store_url, "--out", str(out), "--month", "2025-13"]) == 2
    assert "--month '2025-13' is not a month" in capsys.readouterr().err


def test_servers_page_shows_each_test_servers_health(built: tuple[Path, str, object]) -> None:
    out, store_url, _ = built
    with open_store(store_url) as store:
        counts = dict(
            store.query(
                "SELECT server_id, count() FROM {db}.measurements FINAL WHERE local_date >= '2025-07-01' "
                "AND local_date < '2025-08-01' GROUP BY server_id"
            )
        )
    assert len(counts) > 1
    for prefix, heading in (("", "Tình trạng máy chủ đo"), ("en/", "Test server health")):
        html = (out / prefix / "2025-07" / "servers.html").read_text(encoding="utf-8")
        assert heading in html
        for server_id, tests in counts.items():
            assert f'<th scope="row">{server_id}</th>\n  <td class="num">{tests}</td>' in html
    assert 'servers.html"' in (out / "2025-07" / "index.html").read_text(encoding="utf-8")  # in the nav


def test_every_local_link_of_the_404_pages_resolves(built: tuple[Path, str, object]) -> None:
    from html.parser import HTMLParser

    class Links(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.links: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.links += [v for k, v in attrs if k in ("href", "src") and v and tag in ("a", "link", "script", "img")]

    out, _, _ = built
    for page in (out / "404.html", out / "en" / "404.html"):
        parser = Links()
        parser.feed(page.read_text(encoding="utf-8"))
        local = [link for link in parser.links if "://" not in link and not link.startswith(("/", "#", "mailto:"))]
        assert len(local) >= 4, (page, parser.links)  # style sheet, home, archive, the other language
        for link in local:
            assert (page.parent / link.split("#")[0]).resolve().is_file(), (page, link)
    assert 'lang="en"' in (out / "en" / "404.html").read_text(encoding="utf-8")


def test_province_and_isp_pages_show_loss_rpm_ipv6_and_the_distribution(built: tuple[Path, str, object]) -> None:
    """Method v2's figures (issues #21, #22) on the site: columns of every ranking table, each
    value as stats.csv has it; a distribution line per place; the methodology page explains them."""
    out, _, _ = built
    stats = list(csv.DictReader(io.StringIO((out / "data" / "2025-07" / "stats.csv").read_text())))

    def cell(level: str, province: str = "", provider: str = "") -> dict[str, str]:
        return next(
            r
            for r in stats
            if (r["network_type"], r["level"], r["province_code"], r["commune_code"], r["provider"])
            == ("fixed", level, province, "", provider)
        )

    for page, row in (
        ("province/79.html", cell("province", "79", "Viettel")),
        ("isp/viettel.html", cell("province", "79", "Viettel")),
        ("rankings.html", cell("province", "79")),
    ):
        html = (out / "en" / "2025-07" / page).read_text(encoding="utf-8")
        for header in ("Download 19:00–22:59 (Mbps)", "Loss ↓/↑ (%)", "RPM ↓/↑", "IPv6"):
            assert header in html, (page, header)
        assert row["published"] == "true" and row["ipv6_share"] and row["rpm_down_median"], row
        loss, rpm, share = (float(row[k]) for k in ("loss_down_pct_median", "rpm_down_median", "ipv6_share"))
        assert f'data-v="{row["loss_down_pct_median"]}">{loss:.1f} / ' in html, page
        assert f'data-v="{row["rpm_down_median"]}">{rpm:,.0f} / ' in html, page
        assert f'data-v="{row["ipv6_share"]}">{share * 100:.0f} %</td>' in html, page
    hcmc = cell("province", "79")
    html = (out / "en" / "2025-07" / "province" / "79.html").read_text(encoding="utf-8")
    mean, p10, p90 = (float(hcmc[k]) for k in ("download_mean_mbps", "download_p10_mbps", "download_p90_mbps"))
    assert f"Mean {mean:,.1f} Mbps · 10th–90th percentile: {p10:,.1f}–{p90:,.1f} Mbps" in html
    vi = (out / "2025-07" / "province" / "79.html").read_text(encoding="utf-8")
    assert (
        "Mất gói ↓/↑ (%)" in vi
        and f"Trung bình {mean:,.1f}".replace(",", "\0").replace(".", ",").replace("\0", ".") in vi
    )
    # the downloadable tables carry every new column, as stats.csv writes it
    table = list(csv.DictReader(io.StringIO((out / "data" / "2025-07" / "tables" / "provinces-fixed.csv").read_text())))
    shown = next(r for r in table if r["province_code"] == "79")
    assert all(shown[k] == hcmc[k] for k in ("ipv6_share", "peak_samples", "download_p90_mbps", "share_ge_1000_mbps"))
    for lang, words in (("en", ("server_delayed", "QCVN 34", "(n − 1) · p", "19:00–22:59")), ("", ("Giờ cao điểm",))):
        methodology = (out / lang / "2025-07" / "methodology.html").read_text(encoding="utf-8")
        assert "<td>19-22</td>" in methodology and "<td>900.0</td>" in methodology
        assert all(w in methodology for w in words), lang


def test_targets_page_estimates_and_reports_are_published(built: tuple[Path, str, object]) -> None:
    """The Targets page in both languages, the estimates on the map and in the commune tables,
    marked and never ranked, estimates.csv and the final months' PDF reports in the downloads."""
    out, _, _ = built
    data = out / "data" / "2025-07"
    estimates = list(csv.DictReader(io.StringIO((data / "estimates.csv").read_text(encoding="utf-8"))))
    assert estimates and all(int(r["samples"]) < MIN_SAMPLES for r in estimates)
    assert {r["grade"] for r in estimates} <= {"A", "B", "C"} and {r["level"] for r in estimates} == {"commune"}
    stats = list(csv.DictReader(io.StringIO((data / "stats.csv").read_text(encoding="utf-8"))))
    published = {
        (r["network_type"], r["commune_code"]) for r in stats if r["level"] == "commune" and r["published"] == "true"
    }
    assert not published & {(r["network_type"], r["commune_code"]) for r in estimates if not r["provider"]}
    for month, status in (("2025-06", "final"), ("2025-07", "final"), ("2025-08", "provisional")):
        pdfs = sorted(p.name for p in (out / "data" / month).glob("report-*.pdf"))
        assert pdfs == ([f"report-{month}-en.pdf", f"report-{month}-vi.pdf"] if status == "final" else []), month
    for prefix, words in (
        ("", ("Tiến độ các mục tiêu quốc gia", "CHỈ SỐ THAY THẾ")),
        ("en/", ("Progress towards", "PROXY")),
    ):
        page = (out / prefix / "2025-07" / "targets.html").read_text(encoding="utf-8")
        assert all(w in page for w in words) and "1132/QĐ-TTg" in page and page.count('<section id="target-') == 6
        assert 'href="../2025-07/targets.html"' in (out / prefix / "2025-07" / "index.html").read_text(encoding="utf-8")
        downloads = (out / prefix / "2025-07" / "downloads.html").read_text(encoding="utf-8")
        assert (
            "estimates.csv" in downloads
            and "report-2025-07-vi.pdf" in downloads
            and "report-2025-07-en.pdf" in downloads
        )
    fixed_map = (out / "en" / "2025-07" / "map" / "fixed.html").read_text(encoding="utf-8")
    fixed = [r for r in estimates if r["network_type"] == "fixed" and not r["provider"]]
    assert fixed_map.count('class="estimate"') == len(fixed) and "hollow ring: estimate" in fixed_map
    one = fixed[0]
    province = (out / "en" / "2025-07" / "province" / f"{one['province_code']}.html").read_text(encoding="utf-8")
    row = province[province.index(f'id="c-{one["commune_code"]}"') :].split("</tr>", 1)[0]
    assert '<span class="est-mark">estimate</span>' in row and f"estimate {one['grade']}" in row
    assert '<td class="num" data-v="">–</td>' in row  # no rank for an estimate
    table = list(
        csv.DictReader(
            io.StringIO((data / "tables" / f"province-{one['province_code']}-communes-fixed.csv").read_text())
        )
    )
    assert all(r["download_median_mbps"] == "" for r in table if r["commune_code"] == one["commune_code"])
