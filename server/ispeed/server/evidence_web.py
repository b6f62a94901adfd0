"""HTTP side of signed evidence: `POST /api/v1/evidence`, and `/verify/<id>` (printable HTML, and JSON).

`POST /api/v1/evidence` with `{"test_ids": [...]}` (1-20 stored tests, newest first as the page
keeps them) answers `{"evidence_id", "verify_url", "tests", "created_at"}`; tests the store does
not hold: 404 naming them (`missing`). `/verify/<id>` re-reads the tests and says whether the
series is genuine and each result unaltered (`evidence.py`); a forged or malformed id: 404.
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup

from ispeed.core.errors import ValidationError
from ispeed.server import evidence, result_view
from ispeed.server.errors import json_error
from ispeed.server.keys import CONFIG, INGEST, METRICS
from ispeed.server.limits import RateLimiter
from ispeed.server.privacy import ip_network
from ispeed.server.proxy import client_ip
from ispeed.server.validate import read_json

MAX_BODY_BYTES = 4096
EVIDENCE_PER_MIN_PER_NETWORK = 30  # a series reads up to 20 results: a person makes a few, a script no flood
EVIDENCE_RATE = web.AppKey("evidence_rate", RateLimiter)
EVIDENCE_TEMPLATES = web.AppKey("evidence_templates", jinja2.Environment)
EVIDENCE_ASSETS = web.AppKey("evidence_assets", str)
ID_PATTERN = "{evidence_id:e1\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+}"


def _lang(request: web.Request) -> str:
    return "en" if request.query.get("lang") == "en" else "vi"


def _test_ids(body: Any) -> list[str]:
    if not isinstance(body, dict) or set(body) - {"test_ids"}:
        raise ValidationError("body", 'must be {"test_ids": [...]}')
    ids = body.get("test_ids")
    if not isinstance(ids, list) or not ids:
        raise ValidationError("test_ids", "must be a non-empty list of test ids")
    out: list[str] = []
    for text in ids:
        test_id = evidence.canonical_test_id(text)
        if test_id not in out:
            out.append(test_id)
    if len(out) > evidence.MAX_TESTS:
        raise ValidationError("test_ids", f"holds {len(out)} tests; a series holds at most {evidence.MAX_TESTS}")
    return out


async def create_evidence(request: web.Request) -> web.Response:
    wait_s = request.app[EVIDENCE_RATE].check(ip_network(client_ip(request)))
    if wait_s:
        request.app[METRICS].inc("evidence_refused_rate_total")
        raise json_error(
            429, f"too many evidence requests from your network; retry in {wait_s:.0f} s", retry_after_s=wait_s
        )
    test_ids = _test_ids(await read_json(request, MAX_BODY_BYTES))
    stored = await request.app[INGEST].run_in_store(lambda store: result_view.load(store, test_ids))
    assert isinstance(stored, dict)
    missing = [t for t in test_ids if t not in stored]
    if missing:
        raise json_error(404, "the store holds no result for some of these test ids", "test_ids", missing=missing)
    secret = request.app[CONFIG].secret
    evidence_id = evidence.create(secret, [stored[t] for t in test_ids])
    request.app[METRICS].inc("evidence_created_total")
    series = evidence.parse(secret, evidence_id)
    assert series is not None
    return web.json_response(
        {
            "evidence_id": evidence_id,
            "verify_url": f"/verify/{evidence_id}",
            "tests": len(test_ids),
            "created_at": _iso(series.created_at),
            "same_device": series.same_device,
        }
    )


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _iso(epoch_s: int) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _verification(request: web.Request, lang: str) -> dict[str, Any] | None:
    evidence_id = request.match_info["evidence_id"]
    series = evidence.parse(request.app[CONFIG].secret, evidence_id)
    request.app[METRICS].inc("evidence_checked_total" if series else "evidence_refused_total")
    if series is None:
        return None
    ids = list(series.test_ids)
    stored = await request.app[INGEST].run_in_store(lambda store: result_view.load(store, ids))
    assert isinstance(stored, dict)
    rows = []
    for test_id, status in evidence.check(series, stored):
        row: dict[str, Any] = {"test_id": test_id, "status": status}
        if test_id in stored:
            row.update(result_view.view(stored[test_id], lang, None))
            row.pop("ratings", None)
            row.pop("compare", None)
        rows.append(row)
    statuses = [r["status"] for r in rows]
    present = [stored[t] for t in ids if t in stored]
    return {
        "median_download_mbps": _median([float(r["download_mbps"]) for r in present]),
        "median_upload_mbps": _median([float(r["upload_mbps"]) for r in present]),
        "evidence_id": evidence_id,
        "genuine": True,
        "unaltered": all(s == "ok" for s in statuses),
        "altered": statuses.count("altered"),
        "missing": statuses.count("missing"),
        "created_at": _iso(series.created_at),
        "created_local": result_view.local_time(series.created_at),
        "same_device": series.same_device,
        "tests": rows,
    }


async def verify_json(request: web.Request) -> web.Response:
    answer = await _verification(request, _lang(request))
    if answer is None:
        raise json_error(404, "this evidence id was not issued by this platform (or was altered)", "evidence_id")
    return web.json_response(answer, headers={"Cache-Control": "no-cache"})


def qr_data_uri(url: str) -> str:
    """A QR code of `url` as an SVG data URI (segno; error correction M survives a creased page)."""
    import segno

    return str(segno.make(url, error="m", micro=False).svg_data_uri(scale=4, border=2))


async def verify_page(request: web.Request) -> web.Response:
    lang = _lang(request)
    env = request.app[EVIDENCE_TEMPLATES]
    assets = request.app[EVIDENCE_ASSETS]
    answer = await _verification(request, lang)
    if answer is None:
        html = env.get_template("verify.html").render(lang=lang, assets=assets, e=None)
        return web.Response(text=html, content_type="text/html", status=404)
    url = f"{request.scheme}://{request.host}/verify/{answer['evidence_id']}"
    html = env.get_template("verify.html").render(
        lang=lang, assets=assets, e=answer, url=url, qr=Markup(qr_data_uri(url))
    )
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-cache"})


async def verify_unknown(request: web.Request) -> web.Response:
    """Anything under /verify/ that is not an evidence id: the same 'not genuine' page."""
    env = request.app[EVIDENCE_TEMPLATES]
    html = env.get_template("verify.html").render(lang=_lang(request), assets=request.app[EVIDENCE_ASSETS], e=None)
    return web.Response(text=html, content_type="text/html", status=404)


def add_routes(app: web.Application, env: jinja2.Environment, assets: str) -> None:
    app[EVIDENCE_TEMPLATES] = env
    app[EVIDENCE_RATE] = RateLimiter(EVIDENCE_PER_MIN_PER_NETWORK, EVIDENCE_PER_MIN_PER_NETWORK / 3)
    app[EVIDENCE_ASSETS] = assets
    app.router.add_post("/api/v1/evidence", create_evidence)
    app.router.add_get(f"/verify/{ID_PATTERN}.json", verify_json)
    app.router.add_get(f"/verify/{ID_PATTERN}", verify_page)
    app.router.add_get("/verify/{anything}", verify_unknown)
