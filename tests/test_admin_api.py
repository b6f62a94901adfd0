"""The local admin API (/admin/v1/isp-keys) on both store backends: loopback peers and signed requests only."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request

from ispeed.core.errors import ConfigError, UsageError
from ispeed.server.admin_api import ADMIN, loopback_peer
from ispeed.server.admin_auth import authorization, store_label
from ispeed.server.admin_client import AdminClient
from ispeed.server.app import running
from ispeed.server.config import ServerConfig
from ispeed.server.isp_keys import KEY_RE

SECRET = b"admin-api-test-secret-0123456789"
LIST = "/admin/v1/isp-keys"


def with_server(store_url: str, body: Any) -> Any:
    async def run() -> Any:
        config = ServerConfig(host="127.0.0.1", port=0, store_url=store_url, secret=SECRET)
        async with running(config) as (url, app), aiohttp.ClientSession() as http:
            return await body(url, http, app)

    return asyncio.run(run())


async def call(
    http: aiohttp.ClientSession,
    url: str,
    method: str,
    target: str,
    payload: Any = None,
    headers: dict[str, str] | None = None,
    secret: bytes = SECRET,
    sign: bool = True,
    signed_body: bytes | None = None,
) -> tuple[int, dict[str, Any]]:
    body = b"" if payload is None else payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    auth = {"Authorization": authorization(secret, method, target, body if signed_body is None else signed_body)}
    async with http.request(
        method,
        url + target,
        data=body,
        headers={**(auth if sign else {}), **(headers or {})},
        skip_auto_headers=["Content-Type"],
    ) as r:
        return r.status, await r.json(content_type=None)


def test_loopback_peers_only() -> None:
    for peer in (("127.0.0.1", 5), ("127.8.9.10", 5), ("::1", 5, 0, 0), ("::ffff:127.0.0.1", 5, 0, 0)):
        assert loopback_peer(peer), peer
    for other in (
        ("10.0.0.1", 5),
        ("203.0.113.7", 5),
        ("::ffff:10.0.0.1", 5, 0, 0),
        ("2001:db8::1", 5, 0, 0),
        ("0.0.0.0", 5),
        ("localhost", 5),
        "",
        None,
        "/run/ispeed.sock",
        (),
        (b"127.0.0.1", 5),
    ):
        assert not loopback_peer(other), other


def test_remote_peer_gets_403_even_when_signed(store_url: str) -> None:
    """The real guard, on a request whose TCP peer is another machine (a mocked transport: no traffic leaves)."""
    from unittest import mock

    async def body(url: str, http: aiohttp.ClientSession, app: Any) -> None:
        transport = mock.Mock()
        transport.get_extra_info.side_effect = lambda name, default=None: (
            ("203.0.113.7", 40000) if name == "peername" else default
        )
        (handler,) = [
            r.handler
            for r in app.router.routes()
            if r.method == "GET" and r.resource is not None and r.resource.canonical == LIST
        ]
        req = make_mocked_request(
            "GET", LIST, headers={"Authorization": authorization(SECRET, "GET", LIST)}, app=app, transport=transport
        )
        with pytest.raises(aiohttp.web.HTTPException) as refused:
            await handler(req)
        assert refused.value.status == 403 and "this machine" in json.loads(refused.value.text or "")["error"]

    with_server(store_url, body)


def test_admin_api_creates_lists_and_revokes_keys(store_url: str) -> None:
    async def body(url: str, http: aiohttp.ClientSession, app: Any) -> None:
        store = app[ADMIN].store
        assert store == store_label(store_url)
        status, created = await call(http, url, "POST", LIST, {"provider": "mobifone", "note": "noc"})
        assert status == 201 and KEY_RE.fullmatch(created["key"]) and created["provider"] == "MobiFone"
        assert (created["status"], created["note"], created["expires_at"]) == ("active", "noc", None)
        key, kid = created["key"], created["key_id"]

        async with http.get(url + "/isp/v1/months", headers={"Authorization": f"Bearer {key}"}) as r:
            assert r.status == 200
        status, listed = await call(http, url, "GET", f"{LIST}?store={store}")
        assert status == 200 and [k["key_id"] for k in listed["keys"]] == [kid] and key not in json.dumps(listed)
        assert listed["keys"][0]["last_used_at"] is not None

        status, revoked = await call(http, url, "POST", f"{LIST}/{kid}/revoke", {"reason": "leaked"})
        assert status == 200 and revoked["status"] == "revoked" and revoked["revoked_at"]
        async with http.get(url + "/isp/v1/months", headers={"Authorization": f"Bearer {key}"}) as r:
            assert r.status == 401

        # bad requests: JSON 4xx naming the field
        for method, target, payload, code, field in (
            ("POST", LIST, {"provider": "NoSuchISP"}, 400, "provider"),
            ("POST", LIST, {"provider": "VNPT", "expires": "2020-01-01"}, 400, "expires"),
            ("POST", LIST, {"provider": "VNPT", "expires": "31/12/2099"}, 400, "expires"),
            ("POST", LIST, {"provider": "VNPT", "note": "\ud800"}, 400, "note"),
            ("POST", LIST, {"provider": "VNPT", "note": 5}, 400, "note"),
            ("POST", LIST, {"provider": "VNPT", "admin": True}, 400, "admin"),
            ("POST", LIST, [1, 2], 400, "body"),
            ("POST", LIST, b"{not json", 400, "body"),
            ("POST", LIST, b"\xff\xfe", 400, "body"),
            ("POST", f"{LIST}/feedfacecafe/revoke", None, 404, "key_id"),
            ("POST", f"{LIST}/..%2F..%2Fx/revoke", None, 404, "key_id"),
            ("DELETE", f"{LIST}/{kid}", None, 404, "path"),
            ("GET", "/admin/", None, 404, "path"),
            ("GET", f"{LIST}?store=chdb:/elsewhere", None, 409, "store"),
        ):
            status, answer = await call(http, url, method, target, payload)
            assert (status, answer.get("field")) == (code, field), (target, payload, status, answer)
        status, listed = await call(http, url, "GET", LIST)
        assert [k["key_id"] for k in listed["keys"]] == [kid]  # none of the refused calls created a key

    with_server(store_url, body)


def test_unsigned_forged_stale_replayed_or_proxied_requests_are_refused(store_url: str) -> None:
    async def body(url: str, http: aiohttp.ClientSession, app: Any) -> None:
        good = authorization(SECRET, "GET", LIST)
        ts, nonce = int(time.time()), "ab" * 16
        garbage = [
            "",
            "Bearer " + SECRET.decode(),
            SECRET.decode(),
            "ISPEED-HMAC-SHA256",
            "ISPEED-HMAC-SHA256 ",
            "ISPEED-HMAC-SHA256 ts=,nonce=,sig=",
            f"ISPEED-HMAC-SHA256 ts=abc,nonce={nonce},sig={'0' * 64}",
            f"ISPEED-HMAC-SHA256 ts={'9' * 400},nonce={nonce},sig={'0' * 64}",
            f"ISPEED-HMAC-SHA256 ts=1e400,nonce={nonce},sig={'0' * 64}",
            f"ISPEED-HMAC-SHA256 ts={ts},nonce={nonce},sig={'0' * 63}",
            f"ISPEED-HMAC-SHA256 ts={ts},nonce=xyz,sig={'0' * 64}",
            f"ISPEED-HMAC-SHA256 ts={ts},ts={ts},nonce={nonce},sig={'0' * 64}",
            f"ISPEED-HMAC-SHA256 ts={ts},nonce={nonce},sig={'ü' * 64}",
            f"ISPEED-HMAC-SHA256 ts={ts},nonce={nonce},sig={'0' * 64}",
            good.replace("ts=", "ts=-"),
            good + ",",
            good + "," + good,
            good.upper(),
            "A" * 8_000,
        ]
        for value in garbage:
            async with http.get(url + LIST, headers={"Authorization": value}) as r:
                assert r.status == 401 and "error" in await r.json(), value[:80]
        async with http.get(url + LIST, headers=[("Authorization", good), ("Authorization", good)]) as r:
            assert r.status == 401
        for method, target, kwargs in (
            ("GET", LIST, {"secret": b"another-secret-of-32-characters!"}),  # wrong secret
            ("GET", LIST, {"sign": False}),  # no signature
            ("POST", LIST, {"payload": {"provider": "VNPT"}, "signed_body": b"{}"}),
        ):  # body swapped
            status, answer = await call(http, url, method, target, **kwargs)
            assert status == 401 and "error" in answer, (target, kwargs, answer)
        # a signature made for another target
        async with http.get(
            url + LIST + "?store=x", headers={"Authorization": authorization(SECRET, "GET", LIST)}
        ) as r:
            assert r.status == 401
        # a signature made for GET does not create a key
        auth = authorization(SECRET, "GET", LIST, b'{"provider": "VNPT"}')
        async with http.post(url + LIST, data=b'{"provider": "VNPT"}', headers={"Authorization": auth}) as r:
            assert r.status == 401
        # stale, and replayed
        stale = authorization(SECRET, "GET", LIST, now=time.time() - 120)
        async with http.get(url + LIST, headers={"Authorization": stale}) as r:
            assert r.status == 401 and "clock" in (await r.json())["error"]
        once = authorization(SECRET, "GET", LIST)
        async with http.get(url + LIST, headers={"Authorization": once}) as r:
            assert r.status == 200
        async with http.get(url + LIST, headers={"Authorization": once}) as r:
            assert r.status == 401 and "already used" in (await r.json())["error"]
        # through a proxy on this machine (its TCP peer is loopback too): 403, signed or not
        for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP", "Via"):
            status, answer = await call(http, url, "GET", LIST, headers={header: "127.0.0.1"})
            assert status == 403 and "proxy" in answer["error"], header
        # none of this created a key
        status, listed = await call(http, url, "GET", LIST)
        assert status == 200 and listed["keys"] == []

    with_server(store_url, body)


def test_client_errors_name_the_flag(store_url: str) -> None:
    async def body(url: str, http: aiohttp.ClientSession, app: Any) -> None:
        def attempts() -> list[tuple[type[Exception], str]]:
            out: list[tuple[type[Exception], str]] = []
            for client, action in (
                (AdminClient(url, "wrong-secret-of-sixteen", store_url), lambda c: c.list()),
                (AdminClient(url, SECRET.decode(), "chdb:/somewhere/else"), lambda c: c.list()),
                (AdminClient(url, SECRET.decode(), store_url), lambda c: c.revoke("feedfacecafe", "")),
            ):
                try:
                    action(client)
                except (ConfigError, UsageError) as exc:
                    out.append((type(exc), str(exc)))
            return out

        got = await asyncio.to_thread(attempts)
        assert [(t, msg.split(" ", 1)[0]) for t, msg in got] == [
            (ConfigError, "--secret"),
            (ConfigError, "--server"),
            (UsageError, "key"),
        ]
        assert "unknown" in got[2][1]
        with pytest.raises(ConfigError, match="--server"):
            AdminClient("ftp://127.0.0.1:1/x", "s" * 16, store_url)

    with_server(store_url, body)
