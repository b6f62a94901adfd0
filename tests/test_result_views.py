"""Stored results as people read them, on both store backends: /r/<id>(.json|.png), /api/v1/compare, and
signed evidence (POST /api/v1/evidence, /verify/<id>) against a real in-process test server."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from ispeed.admin_geo import build_demo_mmdb
from ispeed.aggregator.methodology import Methodology
from ispeed.aggregator.stats_table import write_month
from ispeed.core.store import Store, open_store
from ispeed.server.app import running
from ispeed.server.config import ServerConfig
from ispeed.server.keys import INGEST
from tests.quick_results import quick_result
from tests.test_compare import HIGH_BIN, LOW_BIN, cell, write_histogram

SECRET = b"result-views-secret-000000"
Body = Callable[[str, aiohttp.ClientSession, Any], Awaitable[None]]


@pytest.fixture
def setup(store_url: str, tmp_path: Path) -> tuple[str, Path, Path]:
    """The store with July 2025 published (Hà Nội fixed, Viettel's histogram), a site dir, a demo MMDB
    (127.0.0.0/8 is Viettel, Hà Nội, a fixed line)."""
    with open_store(store_url) as store:
        cells = [
            cell("2025-07", "national", median=120.0),
            cell("2025-07", "province", "01"),
            cell("2025-07", "province", "01", "Viettel", median=80.0),
        ]
        write_month(store, "2025-07", cells, Methodology(min_samples=10), dt.datetime(2025, 8, 2, tzinfo=dt.UTC))
    site = tmp_path / "site"
    write_histogram(
        site, "2025-07", [("province", "01", "Viettel", *LOW_BIN, 30), ("province", "01", "Viettel", *HIGH_BIN, 10)]
    )
    return store_url, site, build_demo_mmdb(tmp_path / "demo.mmdb")


def with_server(setup: tuple[str, Path, Path], body: Body) -> None:
    store_url, site, mmdb = setup

    async def main() -> None:
        config = ServerConfig(
            port=0, store_url=store_url, secret=SECRET, site_dir=str(site), asn_db=str(mmdb), city_db=str(mmdb)
        )
        async with running(config) as (url, app), aiohttp.ClientSession() as http:
            await body(url, http, app)

    asyncio.run(main())


async def get(http: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with http.get(url, headers=headers) as r:
        data = await r.read()
        if r.content_type == "application/json":
            return r.status, await r.json(), r
        return r.status, data, r


async def results(http: aiohttp.ClientSession, url: str, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        test_id, status, answer = await quick_result(http, url)
        assert status in (200, 201), answer
        ids.append(test_id)
    return ids


def test_a_result_reads_with_names_comparison_ratings_and_a_share_image(setup: tuple[str, Path, Path]) -> None:
    async def body(url: str, http: aiohttp.ClientSession, app: Any) -> None:
        (test_id,) = await results(http, url, 1)
        status, view, _ = await get(http, f"{url}/r/{test_id}.json")
        assert status == 200
        assert (view["provider"], view["province_code"], view["network_type"]) == ("Viettel", "01", "fixed")
        assert (view["province_name"], view["place_name"], view["network_type_name"]) == (
            "Thành phố Hà Nội",
            "Thành phố Hà Nội",
            "cố định",
        )
        down = view["download_mbps"]
        assert 0.158 < down < 1000  # between the histogram's two bins: the share is exactly 30 of 40
        assert view["compare"]["sentences"][0] == (
            "Nhanh hơn 75 % số lượt đo mạng cố định của Viettel tại Hà Nội trong tháng 7/2025."
        )
        assert [r["use"] for r in view["ratings"]] == ["browsing", "video_hd", "video_4k", "video_calls", "gaming"]
        assert all("Mất gói" in r["not_measured"] for r in view["ratings"])  # a method v1 result: loss not measured
        started = dt.datetime.strptime(view["started_at"], "%Y-%m-%dT%H:%M:%SZ")
        assert view["started_local"] == (started + dt.timedelta(hours=7)).strftime("%Y-%m-%d %H:%M")
        status, en, _ = await get(http, f"{url}/r/{test_id}.json?lang=en")
        assert (en["province_name"], en["compare"]["sentences"][0]) == (
            "Hà Nội",
            "Faster than 75 % of Viettel fixed tests in Hà Nội in July 2025.",
        )
        # the page at /r/<id> shows the same view
        status, html, _ = await get(http, f"{url}/r/{test_id}?lang=en")
        text = html.decode()
        assert status == 200 and "Faster than 75 % of Viettel fixed tests in Hà Nội in July 2025." in text
        assert 'data-use="video_calls"' in text and f'content="{url}/r/{test_id}.png?lang=en"' in text
        # the share image: a PNG of link-preview size, cache-friendly, 304 when unchanged
        status, png, r = await get(http, f"{url}/r/{test_id}.png")
        assert status == 200 and r.content_type == "image/png"
        assert Image.open(io.BytesIO(png)).size == (1200, 630) and 15_000 < len(png) < 300_000
        assert r.headers["Cache-Control"] == "public, max-age=86400"
        status, _, _ = await get(http, f"{url}/r/{test_id}.png", **{"If-None-Match": r.headers["ETag"]})
        assert status == 304
        status, png_en, _ = await get(http, f"{url}/r/{test_id}.png?lang=en")
        assert status == 200 and png_en != png
        # unknown and malformed ids: 404, as JSON for the JSON and image forms
        unknown = "00000000-0000-4000-8000-000000000000"
        for path in (f"/r/{unknown}.json", f"/r/{unknown}.png", "/r/nothex.png"):
            status, answer, r = await get(http, url + path)
            assert status == 404 and r.content_type == "application/json", path
            assert "no stored result" in answer["error"]
        status, _, r = await get(http, f"{url}/r/{unknown}")
        assert status == 404 and r.content_type == "text/html"

    with_server(setup, body)


def test_compare_endpoint_validates_and_answers(setup: tuple[str, Path, Path]) -> None:
    async def body(url: str, http: aiohttp.ClientSession, app: Any) -> None:
        api = f"{url}/api/v1/compare"
        status, answer, _ = await get(
            http, f"{api}?network_type=fixed&province_code=1&provider=Viettel&download_mbps=2000&lang=en"
        )
        assert status == 200 and answer["month"] == "2025-07"
        assert answer["sentences"][0] == "Faster than 99 % of Viettel fixed tests in Hà Nội in July 2025."
        for query, field in (
            ("province_code=01&download_mbps=5", "network_type"),
            ("network_type=4g&download_mbps=5", "network_type"),
            ("network_type=fixed&province_code=99&download_mbps=5", "province"),
            ("network_type=fixed&download_mbps=fast", "download_mbps"),
            ("network_type=fixed&download_mbps=-1", "download_mbps"),
            ("network_type=fixed&download_mbps=nan", "download_mbps"),
            ("network_type=fixed&download_mbps=5&provider=%0A", "provider"),
        ):
            status, answer, _ = await get(http, f"{api}?{query}")
            assert (status, answer.get("field")) == (400, field), (query, answer)

    with_server(setup, body)


async def _mutate(app: Any, sql: str, params: dict[str, Any], check: str, expect: Any) -> None:
    """Run a mutation on the server's own store and wait (bounded) until it shows."""

    def run(store: Store) -> None:
        store.execute(sql, params)

    await app[INGEST].run_in_store(run)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = await app[INGEST].run_in_store(lambda store: store.query(check, params))
        if rows == expect:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the mutation did not show within 20 s: {sql}")


def test_evidence_is_signed_verified_and_reports_altered_and_missing_results(setup: tuple[str, Path, Path]) -> None:
    async def body(url: str, http: aiohttp.ClientSession, app: Any) -> None:
        ids = await results(http, url, 3)
        async with http.post(f"{url}/api/v1/evidence", json={"test_ids": [*ids, ids[0].upper()]}) as r:
            assert r.status == 200
            made = await r.json()
        assert made["tests"] == 3 and made["verify_url"] == f"/verify/{made['evidence_id']}"
        assert made["same_device"] is False  # quick results carry self-chosen ids: none is server-issued
        status, check, _ = await get(http, url + made["verify_url"] + ".json")
        assert status == 200 and check["genuine"] and check["unaltered"]
        assert [t["test_id"] for t in check["tests"]] == ids and {t["status"] for t in check["tests"]} == {"ok"}
        assert check["tests"][0]["province_name"] == "Thành phố Hà Nội"
        status, html, _ = await get(http, url + made["verify_url"] + "?lang=en")
        page = html.decode()
        assert status == 200 and 'data-unaltered="true"' in page and "data:image/svg+xml" in page
        assert f"{url}/verify/{made['evidence_id']}" in page
        # someone changes a stored figure, and a result disappears: the page says which
        await _mutate(
            app,
            "ALTER TABLE {db}.measurements UPDATE download_mbps = download_mbps + 1 WHERE test_id = {t}",
            {"t": ids[1]},
            "SELECT count() FROM {db}.measurements WHERE test_id = {t} AND download_mbps = "
            + repr(float(check["tests"][1]["download_mbps"]) + 1),
            [(1,)],
        )
        await _mutate(
            app,
            "ALTER TABLE {db}.measurements DELETE WHERE test_id = {t}",
            {"t": ids[2]},
            "SELECT count() FROM {db}.measurements WHERE test_id = {t}",
            [(0,)],
        )
        status, check, _ = await get(http, url + made["verify_url"] + ".json")
        assert status == 200 and check["genuine"] and not check["unaltered"]
        assert [t["status"] for t in check["tests"]] == ["ok", "altered", "missing"]
        assert (check["altered"], check["missing"]) == (1, 1)
        status, html, _ = await get(http, url + made["verify_url"])
        assert 'data-unaltered="false"' in html.decode() and 'data-status="altered"' in html.decode()
        # forged ids, unknown tests and bad bodies
        forged = made["evidence_id"][:-2] + ("AA" if not made["evidence_id"].endswith("AA") else "BB")
        status, answer, _ = await get(http, f"{url}/verify/{forged}.json")
        assert status == 404 and answer["field"] == "evidence_id"
        status, html, _ = await get(http, f"{url}/verify/{forged}")
        assert status == 404 and 'data-genuine="false"' in html.decode()
        status, html, _ = await get(http, f"{url}/verify/whatever")
        assert status == 404 and 'data-genuine="false"' in html.decode()
        async with http.post(f"{url}/api/v1/evidence", json={"test_ids": [ids[0], ids[2]]}) as r:
            assert r.status == 404 and (await r.json())["missing"] == [ids[2]]
        for bad, field in (
            ({"test_ids": []}, "test_ids"),
            ({"test_ids": ["x"]}, "test_ids"),
            ({"test_ids": [f"00000000-0000-4000-8000-{i:012d}" for i in range(21)]}, "test_ids"),
            ({"ids": [ids[0]]}, "body"),
            ([ids[0]], "body"),
        ):
            async with http.post(f"{url}/api/v1/evidence", json=bad) as r:
                assert (r.status, (await r.json())["field"]) == (400, field), bad
        # a network that floods evidence requests is told to wait (burst 10, 30 a minute)
        statuses = []
        for _ in range(6):
            async with http.post(f"{url}/api/v1/evidence", json={"test_ids": [ids[0]]}) as r:
                statuses.append((r.status, r.headers.get("Retry-After")))
        assert statuses[:2] == [(200, None)] * 2 and statuses[-1][0] == 429 and int(statuses[-1][1] or 0) >= 1

    with_server(setup, body)


def test_loss_and_responsiveness_count_once_a_result_has_them(setup: tuple[str, Path, Path]) -> None:
    async def body(url: str, http: aiohttp.ClientSession, app: Any) -> None:
        (test_id,) = await results(http, url, 1)
        status, before, _ = await get(http, f"{url}/r/{test_id}.json?lang=en")
        assert status == 200 and {"Packet loss", "Responsiveness"} <= set(before["ratings"][4]["not_measured"])
        # what method v2 stores (migration 0007): UDP loss each way, RPM each way
        await _mutate(
            app,
            "ALTER TABLE {db}.measurements UPDATE loss_down_pct = 0.2, loss_up_pct = 2.5, rpm_down = 2000,"
            " rpm_up = 250.5, download_mbps = 1234.5 WHERE test_id = {t}",
            {"t": test_id},
            "SELECT count() FROM {db}.measurements WHERE test_id = {t} AND rpm_up = 250.5",
            [(1,)],
        )
        status, after, _ = await get(http, f"{url}/r/{test_id}.json?lang=en")
        gaming = after["ratings"][4]
        assert (gaming["use"], gaming["grade"]) == ("gaming", "poor")
        assert not {"Packet loss", "Responsiveness"} & set(gaming["not_measured"])
        assert {lim["metric"] for lim in gaming["limits"]} >= {"loss_pct", "rpm"}
        assert (after["loss_up_pct"], after["rpm_up"]) == (2.5, 250.5)
        status, html, _ = await get(http, f"{url}/r/{test_id}?lang=en")
        page = html.decode()
        assert '<div class="value" id="loss-value">2.5 %</div>' in page
        # halves written as the browser writes them (Math.round, toFixed), not rounded to even
        assert '<div class="value" id="rpm-value">251 RPM</div>' in page
        assert '<div class="value" id="download-value">1235 Mbps</div>' in page
        assert '<div class="rpm-class" id="rpm-class" data-class="Poor">Poor</div>' in page
        assert after["rpm_label"] == "Poor"  # the draft's class of the worse direction (250.5 RPM)
        # the share image says it too, in the page's spelling and the draft's class
        from ispeed.server import share_image

        status, vi, _ = await get(http, f"{url}/r/{test_id}.json")
        assert share_image.quality_line(after).endswith(" · 251 RPM (Poor)")
        assert share_image.quality_line(vi).endswith(" · 251 RPM (Kém)")
        assert " RPM" not in share_image.quality_line(before)  # not measured: not drawn

    with_server(setup, body)
