"""ISP portal: `/isp/` explains how to get a key; `/isp/v1/…` serves an ISP its own data.

Every request under `/isp/v1/` (and any other `/isp/…` path, in any letter case) is
authenticated with `Authorization: Bearer isp_<id>_<secret>` (RFC 6750 §2.1) and written to the
audit log before it is answered (requests refused because their network is blocked are counted,
one audit row per network and minute). The provider always comes from the verified key: handlers
never read one from the path, the query or a header, and a query parameter or header that names
another provider is refused (403). A key with the right secret is checked in the store on every
request (`isp_keycheck`), so a revocation takes effect at the next request on every server
sharing the store; it is served even when its network is blocked for others' bad keys.

    GET /isp/v1/months               JSON: months with statistics and/or own tests
    GET /isp/v1/{YYYY-MM}/stats.csv  own cells (all, with counts) + others' published cells
    GET /isp/v1/{YYYY-MM}/tests.csv  own tests, open-data export columns

Answers: 401 + `WWW-Authenticate: Bearer` (no, malformed, unknown, wrong, expired or revoked
key), 429 + Retry-After to a request without a valid key once its client network keeps presenting
bad keys, 400 (bad month, after authentication), 403 (another provider named), 404 (no such
endpoint or month).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import functools
import io
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import jinja2
from aiohttp import web

from ispeed.core.assets import site_dir
from ispeed.core.errors import StoreError
from ispeed.core.store import Store
from ispeed.core.timeutil import utcnow
from ispeed.server import isp_data
from ispeed.server.audit import AuditEntry, AuditLog, RefusalTally
from ispeed.server.errors import json_error
from ispeed.server.isp_keycheck import KeyChecker
from ispeed.server.isp_keys import Verdict, parse_key
from ispeed.server.keys import INGEST, METRICS
from ispeed.server.limits import RateLimiter
from ispeed.server.privacy import ip_network
from ispeed.server.proxy import client_ip

log = logging.getLogger("ispeed.server.isp")

REALM = "ispeed-isp"
_MONTH = re.compile(r"(20[0-9]{2})-(0[1-9]|1[0-2])")
_PROVIDER_PARAMS = frozenset({"provider", "isp", "provider_name", "isp_name", "operator"})
_PROVIDER_HEADERS = frozenset({"x-provider", "x-isp", "x-provider-name", "x-isp-name", "x-operator"})
_STATUS_OUTCOME = {400: "bad_request", 403: "forbidden", 404: "not_found", 405: "not_found", 503: "store_error"}


@dataclass(frozen=True)
class PortalConfig:
    bad_keys_per_min: float = 10.0  # refused keys a client network may present per minute...
    bad_key_burst: float = 20.0  # ...after a first burst of this many
    page_rows: int = 5_000  # rows per store query while streaming a CSV
    key_scan_interval_s: float = 1.0  # blocked networks' unknown key ids: one read of the key table per interval
    audit_flush_every_s: float = 5.0  # counted refusals: their minute's row is written this soon after it ends


@dataclass
class Portal:
    """Portal state: configuration, the audit log and its refusal tally, the key check, the bad-key limiter."""

    config: PortalConfig
    audit: AuditLog
    keys: KeyChecker
    bad_keys: RateLimiter = field(init=False)
    refusals: RefusalTally = field(init=False)
    blocked_until: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bad_keys = RateLimiter(self.config.bad_keys_per_min, self.config.bad_key_burst)
        self.refusals = RefusalTally(self.audit)

    def blocked_for(self, network: str, now: float) -> float:
        until = self.blocked_until.get(network, 0.0)
        if until <= now:
            self.blocked_until.pop(network, None)
            return 0.0
        return until - now

    def refused(self, network: str, now: float) -> None:
        wait = self.bad_keys.check(network, now)
        if wait > 0:
            if len(self.blocked_until) > 100_000:
                self.blocked_until = {k: v for k, v in self.blocked_until.items() if v > now}
            self.blocked_until[network] = now + wait


PORTAL = web.AppKey("isp_portal", Portal)
TEMPLATES = web.AppKey("isp_templates", jinja2.Environment)


@dataclass(frozen=True)
class Access:
    """A request whose key verified: the key's id and its provider."""

    key_id: str
    provider: str


Responder = Callable[[], Awaitable[web.StreamResponse]]
Action = Callable[[web.Request, Access], Awaitable[Responder]]


async def _record(request: web.Request, key_id: str, provider: str, outcome: str, status: int) -> bool:
    request.app[METRICS].inc(f"isp_requests_{outcome}_total")
    entry = AuditEntry(
        utcnow().replace(microsecond=0),
        key_id,
        provider,
        request.method,
        request.raw_path,
        ip_network(client_ip(request)),
        outcome,
        status,
    )
    return await request.app[PORTAL].audit.record(entry)


def _presented_key(request: web.Request) -> str | None:
    """The Bearer credentials, '' when the header is not one Bearer token, None when absent."""
    values = request.headers.getall("Authorization", [])
    if not values:
        return None
    scheme, _, token = values[0].strip().partition(" ")
    if len(values) > 1 or scheme.lower() != "bearer":  # scheme is case-insensitive (RFC 7235 §2.1)
        return ""
    return token.strip()


def _unauthorized(reason: str, error: str | None) -> web.HTTPException:
    exc = json_error(401, reason)
    challenge = f'Bearer realm="{REALM}"' + (f', error="{error}"' if error else "")  # RFC 6750 §3
    exc.headers["WWW-Authenticate"] = challenge
    return exc


async def _authorize(request: web.Request) -> Access:
    """The key's access; a valid key first, then the network's block, then the refusal (401)."""
    portal = request.app[PORTAL]
    network = ip_network(client_ip(request))
    now = time.monotonic()
    blocked_s = portal.blocked_for(network, now)
    presented = _presented_key(request)
    parsed = parse_key(presented) if presented else None
    verdict = Verdict("malformed_key")
    if parsed is not None:
        try:
            verdict = await portal.keys.check(parsed[0], parsed[1], blocked_s > 0)
        except StoreError:
            await _record(request, parsed[0], "", "store_error", 503)
            raise
        if verdict.allowed:
            assert verdict.record is not None
            return Access(verdict.key_id, verdict.record.provider)
    if blocked_s > 0:  # counted, one audit row per network and minute (audit.RefusalTally)
        request.app[METRICS].inc("isp_requests_rate_limited_total")
        portal.refusals.add(utcnow(), network, request.method, request.raw_path, "rate_limited", 429)
        raise json_error(429, "too many refused keys from your network; retry later", retry_after_s=blocked_s)
    portal.refused(network, now)
    if presented is None:
        await _record(request, "", "", "no_key", 401)
        raise _unauthorized("an ISP key is required: send `Authorization: Bearer <key>` (see /isp/)", None)
    provider = verdict.record.provider if verdict.record else ""
    await _record(request, verdict.key_id, provider, verdict.outcome, 401)
    reason = {"expired": "this ISP key has expired", "revoked": "this ISP key was revoked"}.get(
        verdict.outcome, "this ISP key is not valid"
    )
    raise _unauthorized(f"{reason}: ask the platform operator for a new key (see /isp/)", "invalid_token")


def _refuse_other_provider(request: web.Request, access: Access) -> None:
    """The provider comes from the key: naming another one anywhere else is refused (403)."""
    named = [v for k, v in request.query.items() if k.strip().casefold() in _PROVIDER_PARAMS]
    named += [v for k, v in request.headers.items() if k.casefold() in _PROVIDER_HEADERS]
    own = access.provider.casefold()
    if any(v.strip().casefold() != own for v in named):
        raise json_error(
            403,
            f"this key is for {access.provider}: the provider comes from the key, "
            "and an ISP can read only its own data",
            "provider",
        )


def _guarded(action: Action) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Authenticate, refuse provider overrides, run `action`, audit the outcome, then answer."""

    async def handler(request: web.Request) -> web.StreamResponse:
        access = await _authorize(request)
        try:
            _refuse_other_provider(request, access)
            respond = await action(request, access)
        except web.HTTPException as exc:
            await _record(
                request, access.key_id, access.provider, _STATUS_OUTCOME.get(exc.status, "refused"), exc.status
            )
            raise
        except StoreError:
            await _record(request, access.key_id, access.provider, "store_error", 503)
            raise
        if not await _record(request, access.key_id, access.provider, "allowed", 200):
            raise json_error(503, "the access cannot be written to the audit log right now; retry later")
        return await respond()

    return handler


def _month(request: web.Request) -> tuple[int, int, str]:
    text = request.match_info.get("month", "")
    m = _MONTH.fullmatch(text) if text.isascii() else None
    if m is None:
        raise json_error(400, f"{text[:40]!r} is not a month: use YYYY-MM, e.g. 2025-07", "month")
    return int(m.group(1)), int(m.group(2)), text


async def _in_store(request: web.Request, fn: Callable[[Store], Any]) -> Any:
    return await request.app[INGEST].run_in_store(fn)


def _slug(provider: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", provider.lower()).strip("-") or "isp"


async def _stream_csv(
    request: web.Request, filename: str, header: Sequence[str], pages: AsyncIterator[list[list[str]]]
) -> web.StreamResponse:
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
        }
    )
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    rows = 0
    try:
        async for page in pages:
            writer.writerows(page)
            rows += len(page)
            await resp.write(buf.getvalue().encode())
            buf.seek(0)
            buf.truncate()
        await resp.write(buf.getvalue().encode())
    except Exception:
        log.warning("ISP download %s stopped after %d rows", request.path, rows, exc_info=True)
        raise
    await resp.write_eof()
    return resp


def _call_fetch(
    fetch: Callable[[Store, Sequence[Any] | None, int], list[tuple[Any, ...]]],
    after: Sequence[Any] | None,
    limit: int,
    store: Store,
) -> list[tuple[Any, ...]]:
    return fetch(store, after, limit)


def _stats_page(
    month: str, provider: str, group: tuple[str, str], store: Store, after: Sequence[Any] | None, limit: int
) -> list[tuple[Any, ...]]:
    return isp_data.stats_page(store, month, provider, group, after, limit)


async def _paged(
    request: web.Request,
    fetch: Callable[[Store, Sequence[Any] | None, int], list[tuple[Any, ...]]],
    to_csv: Callable[[Sequence[Any]], list[str]],
) -> AsyncIterator[list[list[str]]]:
    limit = request.app[PORTAL].config.page_rows
    after: Sequence[Any] | None = None
    while True:
        page = functools.partial(_call_fetch, fetch, after, limit)
        rows = cast(list[tuple[Any, ...]], await _in_store(request, page))
        if rows:
            yield [to_csv(r) for r in rows]
        if len(rows) < limit:
            return
        after = rows[-1]


async def months_action(request: web.Request, access: Access) -> Responder:
    months = await _in_store(request, lambda s: isp_data.months(s, access.provider))
    base = f"{request.scheme}://{request.host}/isp/v1"
    body = {
        "provider": access.provider,
        "key_id": access.key_id,
        "months": [
            {
                **m,
                "stats_csv": f"{base}/{m['month']}/stats.csv" if m["stats"] else None,
                "tests_csv": f"{base}/{m['month']}/tests.csv",
            }
            for m in months
        ],
    }

    async def respond() -> web.StreamResponse:
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    return respond


async def stats_action(request: web.Request, access: Access) -> Responder:
    _, _, month = _month(request)
    groups = cast(list[tuple[str, str]], await _in_store(request, lambda s: isp_data.stats_groups(s, month)))
    if not groups:
        raise json_error(404, f"month {month} has no statistics yet (see GET /isp/v1/months)", "month")

    async def pages() -> AsyncIterator[list[list[str]]]:
        for group in groups:
            async for page in _paged(
                request,
                functools.partial(_stats_page, month, access.provider, group),
                isp_data.stats_csv_row,
            ):
                yield page

    async def respond() -> web.StreamResponse:
        return await _stream_csv(
            request, f"ispeed-{_slug(access.provider)}-{month}-stats.csv", isp_data.STATS_OUT, pages()
        )

    return respond


async def tests_action(request: web.Request, access: Access) -> Responder:
    year, mon, month = _month(request)

    async def respond() -> web.StreamResponse:
        pages = _paged(
            request,
            lambda s, after, n: isp_data.tests_page(s, year, mon, access.provider, after, n),
            isp_data.tests_csv_row,
        )
        return await _stream_csv(
            request, f"ispeed-{_slug(access.provider)}-{month}-tests.csv", isp_data.TESTS_OUT, pages
        )

    return respond


async def unknown_action(request: web.Request, access: Access) -> Responder:
    raise json_error(
        404,
        "no such ISP endpoint: use GET /isp/v1/months, /isp/v1/YYYY-MM/stats.csv or /isp/v1/YYYY-MM/tests.csv",
        "path",
    )


async def isp_page(request: web.Request) -> web.Response:
    lang = "en" if request.query.get("lang") == "en" else "vi"
    html = (
        request.app[TEMPLATES]
        .get_template("index.html")
        .render(lang=lang, base_url=f"{request.scheme}://{request.host}", today=dt.date.today().strftime("%Y-%m"))
    )
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-cache"})


def add_routes(app: web.Application, config: PortalConfig | None = None) -> None:
    """Register the portal (its audit log flushes before the store closes)."""
    config = config or PortalConfig()
    app[PORTAL] = portal = Portal(
        config,
        AuditLog(lambda fn: app[INGEST].run_in_store(fn)),
        KeyChecker(lambda fn: app[INGEST].run_in_store(fn), app[METRICS], config.key_scan_interval_s),
    )

    async def audit_ctx(app: web.Application) -> AsyncIterator[None]:
        tally = asyncio.create_task(portal.refusals.run(portal.config.audit_flush_every_s), name="ispeed-isp-tally")
        yield
        tally.cancel()
        await asyncio.gather(tally, return_exceptions=True)
        await portal.refusals.flush()  # the counts of the current minute, before the store closes
        await portal.audit.close()

    app.cleanup_ctx.append(audit_ctx)
    page_dir = site_dir() / "isp"
    if (page_dir / "index.html").exists():
        app[TEMPLATES] = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(page_dir)), autoescape=jinja2.select_autoescape(["html"])
        )
        app.router.add_get("/isp", isp_page)
        app.router.add_get("/isp/", isp_page)
    else:
        log.warning("ISP page not found in %s: /isp/ will answer 404", page_dir)
    app.router.add_get("/isp/v1/months", _guarded(months_action), allow_head=False)
    app.router.add_get("/isp/v1/{month}/stats.csv", _guarded(stats_action), allow_head=False)
    app.router.add_get("/isp/v1/{month}/tests.csv", _guarded(tests_action), allow_head=False)
    # everything else under /isp (any method, any letter case) is authenticated and audited too
    app.router.add_route("*", r"/{portal:(?i:isp)}/{tail:.*}", _guarded(unknown_action))
    app.router.add_route("*", r"/{portal:(?i:isp)}", _guarded(unknown_action))
