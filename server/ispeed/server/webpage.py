"""The citizens' browser test: the page at `/`, its assets, and shareable results at `/r/<test_id>`.

The page and its engine are plain files under `site/testpage/` (ES modules, no build step and
no CDN); this module serves them and the views of stored results (`result_view`): the HTML page
`/r/<id>` (jinja2, autoescaped), its JSON `/r/<id>.json` (what the page shows after a test),
its share image `/r/<id>.png`, and `GET /api/v1/compare` (a figure next to the published month).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from ispeed.core.assets import site_dir
from ispeed.core.errors import ValidationError
from ispeed.core.schema import NETWORK_TYPES
from ispeed.server import compare, evidence_web, figures, result_view
from ispeed.server.errors import json_error
from ispeed.server.keys import CONFIG, INGEST, METRICS

log = logging.getLogger("ispeed.server.webpage")

TESTPAGE_DIR = site_dir() / "testpage"
ASSETS_PATH = "/testpage"
_TEST_ID = re.compile(r"^[0-9a-fA-F-]{8,64}$")
ID_PATTERN = "{test_id:[0-9a-fA-F-]{8,64}}"
IMAGE_CACHE_ITEMS = 128
IMAGE_MAX_AGE_S = 86_400  # a stored result does not change; its image neither
TEMPLATES = web.AppKey("testpage_templates", jinja2.Environment)
IMAGES = web.AppKey("share_images", OrderedDict)


def _lang(request: web.Request) -> str:
    return "en" if request.query.get("lang") == "en" else "vi"


def methodology_href(site_dir: str, lang: str) -> str:
    """The methodology page (its ratings section) of the month the published home page shows: by the
    site's manifest `site.json`, the newest final month with published cells (the publisher's rule);
    '' when nothing is published."""
    if not site_dir:
        return ""
    try:
        months = json.loads((Path(site_dir) / "site.json").read_text(encoding="utf-8"))["months"]
        month = max(
            months,
            key=lambda m: (months[m].get("published_cells", 0) > 0, months[m].get("status") == "final", m),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ""
    if not (Path(site_dir) / month / "methodology.html").is_file():
        return ""
    return f"/site/{'en/' if lang == 'en' else ''}{month}/methodology.html#ratings"


async def test_page(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG]
    lang = _lang(request)
    html = (
        request.app[TEMPLATES]
        .get_template("index.html")
        .render(
            lang=lang,
            server_id=cfg.server_id,
            assets=ASSETS_PATH,
            site=bool(cfg.site_dir),
            methodology=methodology_href(cfg.site_dir, lang),
        )
    )
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-cache"})


async def _view(request: web.Request, test_id: str, lang: str, comparison: bool = True) -> dict[str, Any] | None:
    if not _TEST_ID.match(test_id):
        return None
    site = request.app[CONFIG].site_dir if comparison else None
    found = await request.app[INGEST].run_in_store(lambda store: result_view.build(store, test_id, lang, site))
    return found if isinstance(found, dict) else None


async def result_page(request: web.Request) -> web.Response:
    test_id = request.match_info["test_id"]
    if test_id.endswith((".json", ".png")):  # the id part did not match: still answered as its form would be
        raise json_error(404, f"no stored result has the id {test_id.rsplit('.', 1)[0][:64]}", "test_id")
    lang = _lang(request)
    env = request.app[TEMPLATES]
    v = await _view(request, test_id, lang)
    if v is None:
        html = env.get_template("not_found.html").render(lang=lang, test_id=test_id, assets=ASSETS_PATH)
        return web.Response(text=html, content_type="text/html", status=404)
    origin = f"{request.scheme}://{request.host}"
    html = env.get_template("result.html").render(
        lang=lang,
        v=v,
        assets=ASSETS_PATH,
        origin=origin,
        share_url=f"{origin}/r/{test_id}",
        methodology=methodology_href(request.app[CONFIG].site_dir, lang),
    )
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-cache"})


async def result_json(request: web.Request) -> web.Response:
    test_id = request.match_info["test_id"]
    v = await _view(request, test_id, _lang(request))
    if v is None:
        raise json_error(404, f"no stored result has the id {test_id}", "test_id")
    return web.json_response(v, headers={"Cache-Control": "no-cache"})


async def result_image(request: web.Request) -> web.Response:
    from ispeed.server import share_image  # Pillow loads on the first image, not with the server

    test_id = request.match_info["test_id"].lower()
    lang = _lang(request)
    etag = f'"{test_id}-{lang}-1"'
    headers = {"Cache-Control": f"public, max-age={IMAGE_MAX_AGE_S}", "ETag": etag}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    cache = request.app[IMAGES]
    png = cache.get((test_id, lang))
    if png is None:
        v = await _view(request, test_id, lang, comparison=False)  # the image shows the result only
        if v is None:
            raise json_error(404, f"no stored result has the id {test_id}", "test_id")
        png = await asyncio.get_running_loop().run_in_executor(None, share_image.render, v)
        request.app[METRICS].inc("share_images_rendered_total")
        cache[(test_id, lang)] = png
        while len(cache) > IMAGE_CACHE_ITEMS:
            cache.popitem(last=False)
    else:
        cache.move_to_end((test_id, lang))
    return web.Response(body=png, content_type="image/png", headers=headers)


def _compare_query(request: web.Request) -> compare.Query:
    q = request.query
    network_type = q.get("network_type", "")
    if network_type not in NETWORK_TYPES:
        raise ValidationError("network_type", f"must be one of {', '.join(NETWORK_TYPES)}, got {network_type[:20]!r}")
    province_code = q.get("province_code", "")
    if province_code:
        from ispeed.admin_geo import province

        province_code = province(province_code).code  # ValidationError names a code that does not exist
    provider = q.get("provider", "")
    if len(provider) > 64 or not provider.isprintable():
        raise ValidationError("provider", "must be a printable name of at most 64 characters")
    try:
        download = float(q.get("download_mbps", ""))
    except ValueError:
        raise ValidationError("download_mbps", f"must be a number, got {q.get('download_mbps', '')[:20]!r}") from None
    if not 0 <= download <= 100_000:
        raise ValidationError("download_mbps", f"must be between 0 and 100000, got {download:g}")
    return compare.Query(network_type, province_code, provider, download)


async def compare_api(request: web.Request) -> web.Response:
    """`GET /api/v1/compare?network_type=&province_code=&provider=&download_mbps=&lang=`."""
    query = _compare_query(request)
    lang = _lang(request)
    site = request.app[CONFIG].site_dir
    name = result_view.short_province(query.province_code)
    answer = await request.app[INGEST].run_in_store(lambda store: compare.compare(store, query, site, name, lang))
    return web.json_response(answer, headers={"Cache-Control": "no-cache"})


def add_routes(app: web.Application, directory: Path = TESTPAGE_DIR) -> None:
    """Serve the test page at `/`, results at `/r/{test_id}`, assets under `/testpage/`, evidence."""
    if not (directory / "index.html").exists():
        log.warning("browser test page not found in %s: `/` will answer 404", directory)
        return
    app[TEMPLATES] = env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)), autoescape=jinja2.select_autoescape(["html"])
    )
    # figures spelt as the test page's JavaScript spells them (halves up, not to even)
    env.filters.update(fixed=figures.fixed, jsround=figures.rounded)
    app[IMAGES] = OrderedDict()
    app.router.add_get("/", test_page)
    app.router.add_get("/api/v1/compare", compare_api)
    app.router.add_get(f"/r/{ID_PATTERN}.json", result_json)
    app.router.add_get(f"/r/{ID_PATTERN}.png", result_image)
    app.router.add_get("/r/{test_id}", result_page)
    evidence_web.add_routes(app, env, ASSETS_PATH)
    app.router.add_static(ASSETS_PATH, directory, append_version=False)
