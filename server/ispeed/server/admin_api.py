"""Local admin API of a running server: ISP keys created, listed and revoked without stopping it.

`ispeed isp-key` calls it when the embedded store it names is held by this server (a chDB
directory is open in one process at a time). Every request must come from a loopback TCP peer
(the socket's peer, never `X-Forwarded-For`), must not carry a proxy's forwarding headers (a
reverse proxy on the same machine connects from loopback too), and must be signed with the
server secret (`admin_auth`).

    GET  /admin/v1/isp-keys                    {"store": …, "keys": [key, …]}
    POST /admin/v1/isp-keys                    {"provider", "expires"?: "YYYY-MM-DD", "note"?} → 201 {"key", …key}
    POST /admin/v1/isp-keys/{key_id}/revoke    {"reason"?} → 200 key

`?store=LABEL` names the store the caller means (`admin_auth.store_label`); another store → 409.
Answers: 403 (not loopback, or through a proxy), 401 (signature missing, malformed, stale, replayed
or wrong), 400 (bad body), 404 (no such key or endpoint), 409 (another store); JSON, never a 500.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

from ispeed.core.errors import ConfigError, ValidationError
from ispeed.core.store import Store
from ispeed.core.timeutil import utcnow
from ispeed.server.admin_auth import Verifier, store_label
from ispeed.server.errors import json_error
from ispeed.server.isp_keys import (
    KEY_ID_RE,
    KeyRecord,
    create_key,
    find_key,
    key_json,
    list_keys,
    parse_expiry,
    provider_name,
    revoke_key,
)
from ispeed.server.keys import CONFIG, INGEST

log = logging.getLogger("ispeed.server.admin")

MAX_BODY_BYTES = 16 << 10
MAX_TEXT_CHARS = 500
FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host", "Via")


@dataclass
class Admin:
    verifier: Verifier
    store: str  # this server's store label


ADMIN = web.AppKey("admin", Admin)
AdminHandler = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]


def loopback_peer(peername: object) -> bool:
    """True for a TCP peer on this machine's loopback (127.0.0.0/8, ::1, or ::ffff:127.x.y.z)."""
    if not isinstance(peername, tuple) or not peername or not isinstance(peername[0], str):
        return False
    try:
        addr = ipaddress.ip_address(peername[0].split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def _text(data: dict[str, Any], name: str, default: str | None = "") -> str | None:
    value = data.get(name, default)
    if value is None and default is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
        raise ValidationError(name, f"must be a string of at most {MAX_TEXT_CHARS} characters")
    try:
        value.encode("utf-8")  # a lone surrogate from JSON cannot be stored
    except UnicodeEncodeError as exc:
        raise ValidationError(name, "is not valid Unicode text") from exc
    return value


def _body(raw: bytes, fields: frozenset[str]) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationError("body", "must be a JSON object") from exc
    if not isinstance(data, dict):
        raise ValidationError("body", "must be a JSON object")
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValidationError(str(unknown[0])[:40], f"unknown field; this endpoint takes {sorted(fields)}")
    return data


def _guarded(
    handler: AdminHandler, fields: frozenset[str] = frozenset()
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Loopback peer, no proxy, a valid signature, the caller's store: then `handler(request, body)`."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        if not loopback_peer(peer) or any(h in request.headers for h in FORWARDING_HEADERS):
            raise json_error(
                403,
                "the admin API answers only requests made on this machine, not through a "
                "proxy: run `ispeed isp-key` on the server's host",
            )
        if (request.content_length or 0) > MAX_BODY_BYTES:
            raise json_error(413, f"admin requests carry at most {MAX_BODY_BYTES} bytes", "body")
        raw = await request.read()
        if len(raw) > MAX_BODY_BYTES:
            raise json_error(413, f"admin requests carry at most {MAX_BODY_BYTES} bytes", "body")
        admin = request.app[ADMIN]
        admin.verifier.check(request.headers.getall("Authorization", []), request.method, request.raw_path, raw)
        wanted = request.query.get("store")
        if wanted is not None and wanted != admin.store:
            raise json_error(
                409,
                f"this server's store is {admin.store}, not {wanted[:300]}: give --server "
                "the URL of the `ispeed serve` that holds that store",
                "store",
            )
        return await handler(request, _body(raw, fields))

    return guarded


async def _in_store(request: web.Request, fn: Callable[[Store], Any]) -> Any:
    return await request.app[INGEST].run_in_store(fn)


async def list_handler(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    records = cast(list[KeyRecord], await _in_store(request, list_keys))
    now = utcnow()
    return web.json_response(
        {"store": request.app[ADMIN].store, "keys": [key_json(r, now) for r in records]},
        headers={"Cache-Control": "no-store"},
    )


async def create_handler(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    try:
        provider = provider_name(_text(body, "provider") or "")
        expires_at = parse_expiry(_text(body, "expires", None))
    except ConfigError as exc:
        raise ValidationError(exc.key.lstrip("-"), str(exc)) from exc
    note = _text(body, "note") or ""
    new = await _in_store(request, lambda s: create_key(s, provider, expires_at, note))
    log.info("admin API: created ISP key %s for %s", new.record.key_id, provider)
    return web.json_response(
        {"key": new.key, **key_json(new.record)}, status=201, headers={"Cache-Control": "no-store"}
    )


async def revoke_handler(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    key_id = request.match_info["key_id"]
    reason = _text(body, "reason") or ""

    def revoke(store: Store) -> KeyRecord | None:
        return revoke_key(store, key_id, reason) if find_key(store, key_id) else None

    record = cast(KeyRecord | None, await _in_store(request, revoke) if KEY_ID_RE.fullmatch(key_id) else None)
    if record is None:
        raise json_error(404, f"key id {key_id[:40]!r} is unknown: see `ispeed isp-key list` for the ids", "key_id")
    log.info("admin API: revoked ISP key %s (%s)", record.key_id, record.provider)
    return web.json_response(key_json(record), headers={"Cache-Control": "no-store"})


async def not_found(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    raise json_error(
        404, "no such admin endpoint: GET or POST /admin/v1/isp-keys, POST /admin/v1/isp-keys/{key_id}/revoke", "path"
    )


def add_routes(app: web.Application) -> None:
    """Register the admin API (its signatures use the server secret of `app[CONFIG]`)."""
    config = app[CONFIG]
    app[ADMIN] = Admin(Verifier(config.secret), store_label(config.store_url))
    app.router.add_get("/admin/v1/isp-keys", _guarded(list_handler), allow_head=False)
    app.router.add_post("/admin/v1/isp-keys", _guarded(create_handler, frozenset({"provider", "expires", "note"})))
    app.router.add_post("/admin/v1/isp-keys/{key_id}/revoke", _guarded(revoke_handler, frozenset({"reason"})))
    app.router.add_route("*", "/admin/{tail:.*}", _guarded(not_found))
