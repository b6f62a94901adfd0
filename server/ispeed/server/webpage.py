"""The citizens' browser test: the page at `/`, its assets, and shareable results at `/r/<test_id>`.

The page and its engine are plain files under `site/testpage/` (ES modules, no build step and
no CDN); this module only serves them and renders stored results (jinja2, autoescaped).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from ispeed.core.assets import site_dir
from ispeed.server.keys import CONFIG, INGEST

log = logging.getLogger("ispeed.server.webpage")

TESTPAGE_DIR = site_dir() / "testpage"
ASSETS_PATH = "/testpage"
_TEST_ID = re.compile(r"^[0-9a-fA-F-]{8,64}$")
_RESULT_COLUMNS = (
    "test_id",
    "started_at",
    "network_type",
    "provider",
    "asn",
    "province_code",
    "commune_code",
    "location_source",
    "download_mbps",
    "upload_mbps",
    "latency_ms",
    "jitter_ms",
    "loaded_latency_down_ms",
    "loaded_latency_up_ms",
    "streams",
    "duration_s",
    "client_kind",
    "server_id",
    "valid",
)
TEMPLATES = web.AppKey("testpage_templates", jinja2.Environment)


def _lang(request: web.Request) -> str:
    return "en" if request.query.get("lang") == "en" else "vi"


def _place_names(province_code: str, commune_code: str) -> tuple[str, str]:
    """Names of the attributed province and commune (codes when admin_geo does not know them)."""
    try:
        from ispeed.admin_geo import commune, province

        prov = province(province_code).full_name if province_code else ""
        comm = commune(commune_code).full_name if commune_code else ""
        return prov, comm
    except Exception:  # noqa: BLE001 - an unknown code still shows, as the code itself
        return province_code, commune_code


async def test_page(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG]
    html = (
        request.app[TEMPLATES]
        .get_template("index.html")
        .render(lang=_lang(request), server_id=cfg.server_id, assets=ASSETS_PATH)
    )
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-cache"})


async def result_page(request: web.Request) -> web.Response:
    test_id = request.match_info["test_id"]
    lang = _lang(request)
    env = request.app[TEMPLATES]
    rows: list[Any] = []
    if _TEST_ID.match(test_id):
        sql = (
            f"SELECT {', '.join(_RESULT_COLUMNS)} FROM {{db}}.measurements"
            " WHERE test_id = {test_id} AND simulated = 0 LIMIT 1"
        )
        found = await request.app[INGEST].run_in_store(lambda store: store.query(sql, {"test_id": test_id}))
        rows = found if isinstance(found, list) else []
    if not rows:
        html = env.get_template("not_found.html").render(lang=lang, test_id=test_id, assets=ASSETS_PATH)
        return web.Response(text=html, content_type="text/html", status=404)
    result = dict(zip(_RESULT_COLUMNS, rows[0], strict=True))
    result["province_name"], result["commune_name"] = _place_names(result["province_code"], result["commune_code"])
    html = env.get_template("result.html").render(
        lang=lang, r=result, assets=ASSETS_PATH, share_url=f"{request.scheme}://{request.host}/r/{test_id}"
    )
    return web.Response(text=html, content_type="text/html")


def add_routes(app: web.Application, directory: Path = TESTPAGE_DIR) -> None:
    """Serve the test page at `/`, results at `/r/{test_id}`, assets under `/testpage/`."""
    if not (directory / "index.html").exists():
        log.warning("browser test page not found in %s: `/` will answer 404", directory)
        return
    app[TEMPLATES] = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)), autoescape=jinja2.select_autoescape(["html"])
    )
    app.router.add_get("/", test_page)
    app.router.add_get("/r/{test_id}", result_page)
    app.router.add_static(ASSETS_PATH, directory, append_version=False)
