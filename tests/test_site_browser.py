"""The published site served by `ispeed serve` under /site/: a full link crawl, and real headless Chromium.

One simulated month is published once for the module (min_samples lowered so cells publish);
the crawl starts at the home page and must reach every province page and every commune row,
with no broken internal link or fragment; Chromium loads pages with no console errors, takes
screenshots and sorts a commune table.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest

from ispeed.aggregator.methodology import Methodology
from ispeed.aggregator.simulate import SimulationConfig, simulate
from ispeed.core.store import open_store
from ispeed.publisher.publish import PublishOptions, publish
from tests.serve_process import ServeProcess

pytestmark = pytest.mark.slow

TODAY = dt.date(2025, 8, 10)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"] or "")
        for name in ("href", "src"):
            if values.get(name) and tag in ("a", "link", "script", "img"):
                self.links.append(values[name] or "")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("site")
    out = root / "site"
    with open_store(f"chdb:{root / 'data-store'}") as store:
        simulate(store, SimulationConfig(year=2025, month=7, tests=30_000, seed=5))
        publish(
            store, PublishOptions(out, Methodology(min_samples=10, include_simulated=True), today=TODAY, test_url="/")
        )
    proc = ServeProcess(f"chdb:{root / 'serve-store'}", ["--site-dir", str(out), "--spool-dir", "none"]).start()
    try:
        yield proc.url, out
    finally:
        proc.stop()


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read(), answer.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, b"", ""


def test_crawl_finds_no_broken_link_and_reaches_every_province_and_commune(site: tuple[str, Path]) -> None:
    base, _ = site
    start = f"{base}/site/"
    queue, seen, pages = [start], {start}, {}
    fragments: list[tuple[str, str, str]] = []
    broken: list[str] = []
    while queue:
        url = queue.pop()
        status, body, kind = _get(url)
        if status != 200:
            broken.append(url)
            continue
        if not kind.startswith("text/html"):
            continue
        parser = _Links()
        parser.feed(body.decode("utf-8"))
        pages[url] = parser.ids
        for link in parser.links:
            target, fragment = urldefrag(urljoin(url, link))
            if urlsplit(target).netloc != urlsplit(base).netloc or not urlsplit(target).path.startswith("/site/"):
                assert link == "/", f"{url} links outside the site: {link}"  # only the test page link
                continue
            if fragment:
                fragments.append((url, target, fragment))
            if target not in seen:
                seen.add(target)
                queue.append(target)
    assert broken == []
    for page, target, fragment in fragments:
        assert target in pages and fragment in pages[target], f"{page} → {target}#{fragment}"
    from ispeed.admin_geo import communes, provinces

    for lang in ("", "en/"):
        reached = {u.rsplit("/", 1)[-1][:-5] for u in pages if re.search(rf"/site/{lang}2025-07/province/", u)}
        assert reached == {p.code for p in provinces()}
    commune_ids = set().union(*(ids for u, ids in pages.items() if "/2025-07/province/" in u))
    assert {f"c-{c.code}" for c in communes()} <= commune_ids
    assert len(pages) > 170 and len(seen) > 1000  # pages, and every table's CSV/JSON


@pytest.mark.parametrize(
    "path, heading",
    [
        ("", "Tốc độ Internet Việt Nam"),
        ("2025-07/province/79.html", "Thành phố Hồ Chí Minh"),
        ("en/2025-07/isp/viettel.html", "Viettel"),
        ("en/2025-07/map/fixed.html", "Speed map, 2025-07"),
    ],
)
def test_pages_load_in_chromium_without_console_errors(
    browser: Any, site: tuple[str, Path], tmp_path: Path, path: str, heading: str
) -> None:
    base, _ = site
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    answer = page.goto(f"{base}/site/{path}")
    assert answer is not None and answer.status == 200
    assert page.text_content("h1") == heading
    shot = tmp_path / f"{path.replace('/', '_') or 'home'}.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    assert errors == []
    assert all(r.startswith(base) for r in requests), requests  # no CDN, no network beyond the site
    assert page.locator("svg[role=img]").count() >= 1 or "province" in path
    page.close()


def test_commune_table_sorts_in_the_browser_and_pages_work_without_javascript(
    browser: Any, site: tuple[str, Path]
) -> None:
    base, _ = site
    page = browser.new_page()
    page.goto(f"{base}/site/en/2025-07/province/01.html")
    table = "#t-province-01-communes-fixed"
    names = page.locator(f"{table} tbody th").all_text_contents()
    page.click(f"{table} thead th:first-child button")
    assert page.get_attribute(f"{table} thead th:first-child", "aria-sort") == "ascending"
    ascending = page.locator(f"{table} tbody th").all_text_contents()
    assert sorted(names) != names or ascending == names
    assert ascending[0].casefold() <= ascending[-1].casefold() and set(ascending) == set(names)
    page.click(f"{table} thead th:nth-child(3) button")  # download median
    page.click(f"{table} thead th:nth-child(3) button")  # descending
    values = [
        v
        for v in page.locator(f"{table} tbody td:nth-child(3)").evaluate_all(
            "cells => cells.map(c => c.getAttribute('data-v'))"
        )
        if v
    ]
    assert values and [float(v) for v in values] == sorted((float(v) for v in values), reverse=True)
    page.close()
    context = browser.new_context(java_script_enabled=False)
    nojs = context.new_page()
    nojs.goto(f"{base}/site/en/2025-07/rankings.html")
    assert nojs.locator("table#t-isps-fixed tbody tr").count() >= 3
    context.close()
