"""The citizen's test page in real headless Chromium against `ispeed serve` with a published month.

A simulated July 2025 is published (min_samples lowered) into the site the server serves; the demo
MMDB makes loopback a Viettel fixed line in Hà Nội, and the browser's geolocation puts the tester
in Phường Ba Đình. The page is run at phone and desktop sizes in both languages: names, the
comparison sentence (recomputed here from the published histograms.csv), ratings, the share image,
the history, Cancel, evidence, page weight and an axe-core audit. Screenshots go to a temporary
directory, or to $ISPEED_SCREENS_DIR when set.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from ispeed.admin_geo import build_demo_mmdb
from ispeed.aggregator.methodology import Methodology
from ispeed.aggregator.simulate import SimulationConfig, simulate
from ispeed.core import ratings, responsiveness
from ispeed.core.store import open_store
from ispeed.publisher.publish import PublishOptions, publish
from tests.axe_audit import audit, blocking, ensure_axe
from tests.serve_process import ServeProcess

pytestmark = pytest.mark.slow

PHASE_S = 2
STREAMS = 2
BA_DINH = {"latitude": 21.0386, "longitude": 105.838, "accuracy": 20}
SIZES = {"phone": {"width": 360, "height": 740}, "desktop": {"width": 1280, "height": 900}}
PAGE_BUDGET_BYTES = 150_000
LOSS_SENTENCE = {
    "vi": "Không đo trong trình duyệt: trình duyệt không gửi được các gói UDP dùng để đo mất gói. "
    "Hãy chạy “ispeed test” để đo mất gói.",
    "en": "Not measured in the browser: browsers cannot send the UDP probes that measure loss. "
    "Run “ispeed test” for packet loss.",
}
RPM_CLASSES = {
    "vi": {"Excellent": "Rất tốt", "Good": "Tốt", "Fair": "Trung bình", "Poor": "Kém"},
    "en": {c: c for c in ("Excellent", "Good", "Fair", "Poor")},
}


@dataclass
class Platform:
    url: str
    site: Path
    screens: Path
    test_ids: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("testpage")
    site = root / "site"
    with open_store(f"chdb:{root / 'store'}") as store:
        simulate(store, SimulationConfig(year=2025, month=7, tests=30_000, seed=5))
        options = PublishOptions(site, Methodology(min_samples=10, include_simulated=True), today=dt.date(2025, 8, 10))
        publish(store, options)
    mmdb = build_demo_mmdb(root / "demo.mmdb")
    args = ["--site-dir", str(site), "--spool-dir", "none", "--asn-db", str(mmdb), "--city-db", str(mmdb)]
    proc = ServeProcess(f"chdb:{root / 'store'}", [*args, "--publish-at", "off"]).start()
    screens = Path(os.environ.get("ISPEED_SCREENS_DIR") or root / "screens")
    screens.mkdir(parents=True, exist_ok=True)
    try:
        yield Platform(proc.url, site, screens)
    finally:
        proc.stop()


def _context(browser: Any, size: str = "desktop") -> Any:
    return browser.new_context(viewport=SIZES[size], geolocation=BA_DINH, permissions=["geolocation"])


def _errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def _run(page: Any, url: str, lang: str, shot: Path | None = None) -> dict[str, Any]:
    """One autostarted test with "use my location" remembered from an earlier visit; its #result."""
    page.goto(f"{url}/?lang={lang}")
    page.check("#use-location")  # remembered in localStorage for the next visit
    page.goto(f"{url}/?autostart=1&duration={PHASE_S}&streams={STREAMS}&lang={lang}")
    if shot is not None:
        page.wait_for_function("document.querySelector('#phases [data-phase=upload]').hasAttribute('aria-current')")
        page.wait_for_timeout(700)
        page.screenshot(path=str(shot))
        # the live chart: the download phase's 100 ms samples as a line, the upload's growing, the probes as dots
        lines = page.locator("#chart polyline").evaluate_all("ls => ls.map(l => l.points.numberOfItems)")
        assert len(lines) == 2 and lines[0] >= 10 * PHASE_S - 4 and lines[1] >= 3, lines
        assert page.locator("#chart circle").count() >= 10 + PHASE_S * 5  # idle probes, then loaded ones
    page.wait_for_function("document.getElementById('result').textContent.length > 0", timeout=60_000)
    result: dict[str, Any] = json.loads(page.text_content("#result") or "{}")
    assert "error" not in result, result
    return result


def _expected_share(site: Path, download_mbps: float) -> float:
    """The share of July's Viettel fixed samples in Hà Nội below `download_mbps`, from the published file."""
    below = total = 0.0
    with (site / "data" / "2025-07" / "histograms.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            key = (row["network_type"], row["level"], row["province_code"], row["provider"], row["metric"])
            if key != ("fixed", "province", "01", "Viettel", "download"):
                continue
            low, n = float(row["bin_low_mbps"]), int(row["samples"])
            high = float(row["bin_high_mbps"]) if row["bin_high_mbps"] else math.inf
            total += n
            if download_mbps >= high:
                below += n
            elif download_mbps > low > 0:
                below += n * math.log(download_mbps / low) / math.log(high / low)
            elif download_mbps > low:
                below += n * download_mbps / high
    assert total > 0
    return below / total


@pytest.mark.parametrize(("size", "lang"), [("phone", "vi"), ("phone", "en"), ("desktop", "vi"), ("desktop", "en")])
def test_a_test_shows_names_comparison_ratings_share_image_and_history(
    browser: Any, platform: Platform, size: str, lang: str
) -> None:
    context = _context(browser, size)
    page = context.new_page()
    errors = _errors(page)
    result = _run(page, platform.url, lang, platform.screens / f"during-{size}-{lang}.png")
    platform.test_ids.append(result["test_id"])
    # every field the page wrote before stays (the contract of #result), and names come with it
    for key in ("test_id", "server_id", "download_mbps", "upload_mbps", "download_mbps_client", "latency_ms"):
        assert key in result
    # (not `valid`: on a loaded 2-core machine the browser's own download count can lag the server's by
    # more than 10 %, and the result is then stored flagged; test_browser_page checks that contract)
    assert result["submitted"] and result["provider"] == "Viettel", json.dumps(result)
    assert (result["province_code"], result["commune_code"], result["location_source"]) == ("01", "00004", "gps")
    vi = lang == "vi"
    assert result["province_name"] == ("Thành phố Hà Nội" if vi else "Hà Nội")
    assert result["commune_name"] == ("Phường Ba Đình" if vi else "Ba Đình ward")
    place = f"{result['commune_name']}, {result['province_name']}"
    assert page.text_content("#place-value") == result["place_name"] == place
    assert page.text_content("#provider-value") == "Viettel"
    # the comparison: July 2025's published Viettel cell in Hà Nội, share recomputed from histograms.csv
    share = _expected_share(platform.site, result["download_mbps"])
    pct = min(99, math.floor(share * 100))
    sentence = (
        f"Nhanh hơn {pct} % số lượt đo mạng cố định của Viettel tại Hà Nội trong tháng 7/2025."
        if vi
        else f"Faster than {pct} % of Viettel fixed tests in Hà Nội in July 2025."
    )
    assert result["comparison"]["month"] == "2025-07" and result["comparison"]["sentences"][0] == sentence
    assert page.locator("#compare .sentence").first.text_content() == sentence
    note = page.text_content("#compare .note") or ""
    assert note.endswith("(dữ liệu mô phỏng)" if vi else "(simulated data)"), note  # the cells include simulated tests
    # ratings: the five uses, graded by the documented thresholds from this result's figures
    expected = {r["use"]: r["grade"] for r in ratings.rate(result, lang)}
    shown = page.locator("#ratings li").evaluate_all("items => items.map(li => [li.dataset.use, li.dataset.grade])")
    assert dict(shown) == expected == {r["use"]: r["grade"] for r in result["ratings"]} and len(expected) == 5
    # the page does not measure loss, and says why; it measures responsiveness, shown with its class
    assert page.text_content("#loss-value") == LOSS_SENTENCE[lang]
    low = min(result["rpm_down"], result["rpm_up"])
    assert page.text_content("#rpm-value") == f"{math.floor(low + 0.5)} RPM"  # Math.round: halves go up
    assert page.text_content("#rpm-class") == RPM_CLASSES[lang][responsiveness.label(low) or ""]
    # the share image of this result
    image = page.request.get(f"{platform.url}/r/{result['test_id']}.png")
    assert image.status == 200 and image.headers["content-type"] == "image/png"
    png = image.body()
    assert Image.open(io.BytesIO(png)).size == (1200, 630) and 15_000 < len(png) < 300_000
    assert page.get_attribute("#share-image-link", "href") == f"/r/{result['test_id']}.png" + ("" if vi else "?lang=en")
    # the history kept in this browser
    kept = page.evaluate("JSON.parse(localStorage.getItem('ispeed-history'))")
    assert [e["test_id"] for e in kept] == [result["test_id"]] and kept[0]["place"] == result["place_name"]
    assert kept[0]["download_mbps"] == result["download_mbps"]
    assert page.locator("#history tbody tr").count() == 1
    assert page.get_attribute("#history tbody a", "href") == f"/r/{result['test_id']}" + ("" if vi else "?lang=en")
    page.screenshot(path=str(platform.screens / f"result-{size}-{lang}.png"), full_page=True)
    # the result link shows the same view
    page.goto(f"{platform.url}/r/{result['test_id']}" + ("" if vi else "?lang=en"))
    assert page.text_content("#place-value") == result["place_name"]
    assert page.locator("#compare .sentence").first.text_content() == sentence
    shown = page.locator("#ratings li").evaluate_all("items => items.map(li => [li.dataset.use, li.dataset.grade])")
    assert dict(shown) == expected
    assert page.text_content("#loss-value") == LOSS_SENTENCE[lang]
    assert page.text_content("#rpm-value") == f"{math.floor(low + 0.5)} RPM"  # Math.round: halves go up
    assert page.text_content("#rpm-class") == RPM_CLASSES[lang][responsiveness.label(low) or ""]
    page.screenshot(path=str(platform.screens / f"r-{size}-{lang}.png"), full_page=True)
    assert errors == []
    context.close()


def test_cancel_stops_every_stream_at_once_and_sends_nothing(browser: Any, platform: Platform) -> None:
    page = _context(browser).new_page()
    requests: list[tuple[float, str, str]] = []
    page.on("request", lambda r: requests.append((time.monotonic(), "start", r.url)))
    page.on("requestfailed", lambda r: requests.append((time.monotonic(), "failed", r.url)))
    page.on("requestfinished", lambda r: requests.append((time.monotonic(), "finished", r.url)))
    page.goto(f"{platform.url}/?autostart=1&duration=20&streams=4")
    page.wait_for_function("document.querySelector('#phases [data-phase=download]').hasAttribute('aria-current')")
    page.wait_for_timeout(1000)
    assert page.is_visible("#cancel")
    clicked = time.monotonic()
    page.click("#cancel")
    page.wait_for_function("document.getElementById('result').textContent.length > 0", timeout=5_000)
    settled = time.monotonic() - clicked
    page.wait_for_timeout(1500)  # would a stream start again, or a result go out?
    assert json.loads(page.text_content("#result") or "{}") == {"error": "cancelled", "cancelled": True}
    assert page.text_content("#status") == "Đã hủy phép đo. Không có kết quả nào được gửi."
    assert settled < 1.5, settled
    downloads = [r for r in requests if "/api/v1/download" in r[2]]
    started = [r for r in downloads if r[1] == "start"]
    ended = [r for r in downloads if r[1] != "start"]
    assert len(started) >= 4 and len(ended) == len(started)  # every stream ended...
    assert all(r[0] - clicked < 1.0 for r in ended if r[0] >= clicked) and max(r[0] for r in ended) >= clicked
    assert not [r for r in requests if r[1] == "start" and r[0] > clicked]  # ...and nothing new started
    assert not [r for r in requests if "/api/v1/results" in r[2] or "/api/v1/upload" in r[2]]
    assert page.is_hidden("#cancel") and page.is_enabled("#start")
    page.context.close()


def test_history_exports_csv_and_becomes_signed_evidence(browser: Any, platform: Platform) -> None:
    context = _context(browser)
    page = context.new_page()
    first = _run(page, platform.url, "vi")
    second = _run(page, platform.url, "vi")
    assert page.locator("#history tbody tr").count() == 2
    with page.expect_download() as download:
        page.click("#history-csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert [r["test_id"] for r in rows] == [second["test_id"], first["test_id"]]
    assert float(rows[0]["download_mbps"]) == second["download_mbps"] and rows[0]["provider"] == "Viettel"
    page.click("#evidence-create")
    page.wait_for_selector("#evidence-link")
    page.click("#evidence-link")
    page.wait_for_selector("#verdict")
    assert page.get_attribute("#verdict", "data-unaltered") == "true"
    assert page.locator("#evidence-tests tbody tr").count() == 2
    assert page.locator("#evidence-tests [data-status=ok]").count() == 2
    assert page.get_attribute("#verify-link", "href") == page.url
    page.screenshot(path=str(platform.screens / "verify-desktop-vi.png"), full_page=True)
    page.emulate_media(media="print")
    page.screenshot(path=str(platform.screens / "verify-print.png"), full_page=True)
    context.close()


def test_the_page_weighs_under_its_budget_before_the_test_starts(browser: Any, platform: Platform) -> None:
    page = browser.new_page()
    sizes: list[tuple[str, int]] = []

    def finished(request: Any) -> None:
        got = request.sizes()
        sizes.append((request.url, got["responseBodySize"] + got["responseHeadersSize"]))

    page.on("requestfinished", finished)
    page.goto(f"{platform.url}/")
    page.wait_for_load_state("networkidle")
    total = sum(n for _, n in sizes)
    print(f"\ntest page before the test: {len(sizes)} responses, {total} bytes transferred")
    assert all(u.startswith(platform.url) for u, _ in sizes)  # no CDN, nothing beyond this server
    assert {u.rsplit("/", 1)[-1] for u, _ in sizes} >= {"", "style.css", "app.js", "engine.js", "chart.js"}
    assert total < PAGE_BUDGET_BYTES
    page.close()


def test_accessibility_audit_finds_no_serious_violation(browser: Any, platform: Platform) -> None:
    ensure_axe()
    context = _context(browser, "phone")
    page = context.new_page()
    page.set_content('<html lang="en"><body><main><img src="data:,"><button></button></main></body></html>')
    assert {v.split(" ")[0] for v in blocking(audit(page))} >= {"image-alt", "button-name"}  # the audit works
    result = _run(page, platform.url, "vi")  # the page with its result, summary and history showing
    found = {"/ (result shown)": blocking(audit(page))}
    made = page.request.post(f"{platform.url}/api/v1/evidence", data={"test_ids": [result["test_id"]]})
    verify = made.json()["verify_url"]
    r_page = f"/r/{result['test_id']}"
    for path in ("/", "/?lang=en", r_page, f"{r_page}?lang=en", verify, "/site/", "/site/en/"):
        for size in ("phone", "desktop"):
            page.set_viewport_size(SIZES[size])
            page.goto(platform.url + path)
            found[f"{path} ({size})"] = blocking(audit(page))
    assert {k: v for k, v in found.items() if v} == {}
    context.close()


def test_the_thresholds_are_on_the_methodology_page_the_ratings_link_to(browser: Any, platform: Platform) -> None:
    page = browser.new_page()
    page.goto(f"{platform.url}/")
    assert page.get_attribute("#methodology-link", "href") == "/site/2025-07/methodology.html#ratings"
    page.click("#lang-switch")
    assert page.get_attribute("#methodology-link", "href") == "/site/en/2025-07/methodology.html#ratings"
    assert page.text_content("#methodology-link") == "See the thresholds"
    for lang, prefix in (("vi", ""), ("en", "en/")):
        page.goto(f"{platform.url}/site/{prefix}2025-07/methodology.html#ratings")
        rows = page.locator("#t-ratings tbody tr").evaluate_all(
            "rows => rows.map(r => Array.from(r.cells, c => c.textContent))"
        )
        assert rows == [[r["use"], r["metric"], r["good"], r["ok"]] for r in ratings.rules(lang)]
        assert page.locator("h2#ratings").count() == 1
    page.close()
