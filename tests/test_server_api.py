"""The test server's HTTP API: validation answers, token rules, and checks against its counters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from ispeed.client.config import TestConfig
from ispeed.client.engine import Engine
from ispeed.core.errors import ServerRefused
from ispeed.core.store import open_store
from ispeed.server.app import running
from ispeed.server.config import ServerConfig
from tests.raw_client import paced_download, paced_upload

SECRET = b"test-secret-0123456789abcdef"


def with_server(store_url: str, body: Callable[[str, aiohttp.ClientSession], Awaitable[Any]], **cfg: Any) -> Any:
    async def main() -> Any:
        config = ServerConfig(host="127.0.0.1", port=0, store_url=store_url, secret=SECRET, **cfg)
        async with running(config) as (url, _app), aiohttp.ClientSession() as http:
            return await body(url, http)

    return asyncio.run(main())


async def post(
    http: aiohttp.ClientSession, url: str, data: Any, content_type: str = "application/json"
) -> tuple[int, Any]:
    raw = data if isinstance(data, (bytes, str)) else json.dumps(data)
    async with http.post(url, data=raw, headers={"Content-Type": content_type}) as r:
        return r.status, await r.json(content_type=None)


@pytest.fixture
def chdb_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"chdb:{tmp_path / 'store'}"


def test_malformed_and_incomplete_results_get_400_naming_the_problem(chdb_url: str) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> None:
        res = url + "/api/v1/results"
        status, answer = await post(http, res, b"{not json")
        assert status == 400 and answer["field"] == "body" and "not valid JSON" in answer["error"]
        status, answer = await post(http, res, {"download_mbps": 5, "upload_mbps": 1})
        assert (status, answer["field"], answer["error"]) == (400, "token", "is required")
        status, answer = await post(http, res, {"token": "a.b", "upload_mbps": 1})
        assert (status, answer["field"]) == (400, "download_mbps")
        status, answer = await post(http, res, {"token": "a.b", "download_mbps": -1, "upload_mbps": 1})
        assert (status, answer["field"]) == (400, "download_mbps") and "between" in answer["error"]
        status, answer = await post(http, res, {"token": "a.b", "download_mbps": 1, "upload_mbps": 1, "evil": 1})
        assert (status, answer["field"], answer["error"]) == (400, "evil", "unknown field")
        status, answer = await post(http, res, [1, 2])
        assert (status, answer["field"]) == (400, "body")
        status, answer = await post(http, res, "x=1", content_type="application/x-www-form-urlencoded")
        assert (status, answer["field"]) == (415, "Content-Type")
        status, answer = await post(http, res, b"{" + b" " * 20000 + b"}")
        assert (status, answer["field"]) == (413, "body")
        status, answer = await post(http, res, {"token": "abc.def", "download_mbps": 1, "upload_mbps": 1})
        assert (status, answer["field"]) == (403, "token")

    with_server(chdb_url, body)


def test_measurement_endpoints_validate_before_transfer(chdb_url: str) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> None:
        async with http.get(url + "/api/v1/download", params={"bytes": "10"}) as r:
            assert r.status == 400 and (await r.json())["field"] == "token"
        status, ticket = await post(http, url + "/api/v1/tests", {"streams": 2, "duration_s": 2})
        assert status == 201
        for params, field in (
            ({"bytes": "x"}, "bytes"),
            ({"bytes": "10", "stream": "7"}, "stream"),
            ({"bytes": str(1 << 40)}, "bytes"),
        ):
            async with http.get(url + "/api/v1/download", params={"token": ticket["token"], **params}) as r:
                assert r.status == 400 and (await r.json())["field"] == field
        async with http.get(url + "/api/v1/download", params={"token": ticket["token"], "bytes": "5000"}) as r:
            assert r.status == 200 and len(await r.read()) == 5000
        status, answer = await post(http, url + "/api/v1/tests", {"streams": 99})
        assert (status, answer["field"]) == (400, "streams")

    with_server(chdb_url, body)


def test_full_test_is_stored_and_token_cannot_be_reused(chdb_url: str) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> dict[str, Any]:
        result = await Engine(TestConfig(server_url=url, streams=2, duration_s=1.0, device_id="dev-1")).run()
        assert result["submitted"] and result["valid"]
        assert result["download_mbps"] > 100 and result["upload_mbps"] > 100
        assert result["bytes_down"] > 0 and result["bytes_up"] > 0
        assert result["latency_ms"] is not None and result["latency_ms"] < 50
        return result

    result = with_server(chdb_url, body)
    with open_store(chdb_url) as store:
        rows = store.query(
            "SELECT test_id, download_mbps, upload_mbps, device_hash, ip_hash, ip_network, valid FROM {db}.measurements"
        )
    assert len(rows) == 1
    test_id, down, up, device_hash, ip_hash, ip_net, valid = rows[0]
    assert (test_id, down, valid) == (result["test_id"], result["download_mbps"], 1)
    assert up == pytest.approx(result["upload_mbps"], rel=1e-3)
    # "dev-1" is a self-chosen id, not one this server signed: the test counts under its IP hash
    assert device_hash == "" and len(ip_hash) == 32 and ip_net == "127.0.0.0/24"
    assert "127.0.0.1" not in ip_hash


def test_reused_forged_and_inflated_results(chdb_url: str) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> None:
        status, ticket = await post(http, url + "/api/v1/tests", {"streams": 1, "duration_s": 1})
        token = ticket["token"]
        claim = {"token": token, "download_mbps": 10, "upload_mbps": 10}
        # never transferred: refused
        status, answer = await post(http, url + "/api/v1/results", claim)
        assert (status, answer["field"]) == (422, "token")
        # move some bytes both ways, over most of the 1 s phase each (the server measures both)
        assert await paced_download(http, url, token, 0.8) > 0
        assert await paced_upload(http, url, token, 0.8) > 0
        # a forged signature: refused
        forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        status, answer = await post(http, url + "/api/v1/results", {**claim, "token": forged})
        assert (status, answer["field"]) == (403, "token")
        # inflated download (a few MiB cannot make 100 Gbit/s over 1 s): stored with the server's
        # own figure, flagged invalid
        status, answer = await post(http, url + "/api/v1/results", {**claim, "download_mbps": 99_000})
        assert status == 201 and answer["valid"] is False and "differs" in answer["invalid_reason"]
        assert 0 < answer["download_mbps"] < 100
        # the token is spent
        status, answer = await post(http, url + "/api/v1/results", claim)
        assert (status, answer["field"]) == (409, "token")

    with_server(chdb_url, body)


def test_rate_and_concurrency_limits_answer_429_with_retry_after(chdb_url: str) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> None:
        statuses = []
        for _ in range(6):
            async with http.post(url + "/api/v1/tests", json={"streams": 1}) as r:
                statuses.append(r.status)
                if r.status == 429:
                    answer = await r.json()
                    assert int(r.headers["Retry-After"]) >= 1 and "retry" in answer["error"]
        # burst of 2, and at most 3 open tests per network: the third and later are refused
        assert statuses[:2] == [201, 201] and set(statuses[2:]) == {429}

    with_server(chdb_url, body, tests_per_min_per_network=4, max_tests_per_network=3)


def test_draining_server_refuses_new_tests(chdb_url: str) -> None:
    from ispeed.server.keys import STATUS

    async def main() -> None:
        config = ServerConfig(host="127.0.0.1", port=0, store_url=chdb_url, secret=SECRET)
        async with running(config) as (url, app), aiohttp.ClientSession() as http:
            app[STATUS].draining = True
            status, answer = await post(http, url + "/api/v1/tests", {})
            assert status == 503 and "shutting down" in answer["error"]

    asyncio.run(main())


def test_stalled_upload_is_cut_at_the_test_deadline(chdb_url: str) -> None:
    from ispeed.server.keys import REGISTRY

    async def main() -> None:
        config = ServerConfig(host="127.0.0.1", port=0, store_url=chdb_url, secret=SECRET)
        async with running(config) as (url, app), aiohttp.ClientSession() as http:
            status, ticket = await post(http, url + "/api/v1/tests", {"streams": 1, "duration_s": 1})
            state = app[REGISTRY].get(ticket["test_id"])
            host, port = url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(
                f"POST /api/v1/upload?token={ticket['token']} HTTP/1.1\r\nHost: x\r\n"
                "Content-Length: 1000000\r\n\r\n".encode()
                + b"x" * 1000
            )
            await writer.drain()
            await asyncio.sleep(0.3)
            assert state.bytes_up.get(0) == 1000 and state.transports
            state.created -= 60  # the test's deadline passes while the client stalls mid-body
            loop = asyncio.get_running_loop()
            start = loop.time()
            data = await asyncio.wait_for(reader.read(), timeout=5)  # only the sweeper can end this
            assert reader.at_eof() and b"200" not in data[:20] and loop.time() - start < 2.5
            assert state.cut and not state.transports
            writer.close()

    asyncio.run(main())


def test_slowloris_headers_are_closed_by_the_keepalive_timer(chdb_url: str) -> None:
    async def main() -> None:
        config = ServerConfig(host="127.0.0.1", port=0, store_url=chdb_url, secret=SECRET, keepalive_timeout_s=1.0)
        async with running(config) as (url, _app):
            host, port = url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"GET /healthz HTTP/1.1\r\n")
            loop = asyncio.get_running_loop()
            start = loop.time()
            for _ in range(20):  # trickle a header line every 0.25 s
                await asyncio.sleep(0.25)
                if reader.at_eof():
                    break
                writer.write(b"X-Slow: 1\r\n")
                try:
                    if await asyncio.wait_for(reader.read(1), 0.01) == b"":
                        break
                except TimeoutError:
                    pass
            assert loop.time() - start < 3.0
            writer.close()

    asyncio.run(main())


async def _moved_ticket(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """A started test that moved ~200 KiB each way over most of its 1 s phases (the server measures
    both), ready for a result submission."""
    status, ticket = await post(http, url + "/api/v1/tests", {"streams": 1, "duration_s": 1})
    assert status == 201
    await asyncio.gather(
        paced_download(http, url, ticket["token"], 0.95, 16 << 10),
        paced_upload(http, url, ticket["token"], 0.95, 16 << 10),
    )
    return ticket


def test_text_fields_that_cannot_be_stored_get_400_naming_the_field(chdb_url: str) -> None:
    """A lone surrogate or a control character in a free-text field is refused at the edge."""

    async def body(url: str, http: aiohttp.ClientSession) -> None:
        res = url + "/api/v1/results"
        for field, bad in (
            ("client_version", "\ud800"),
            ("device_id", "dev\udfff"),
            ("client_version", "1.0\x00"),
            ("device_id", "a\x1bb"),
            ("client_version", "x\x85"),
            ("token", "a.b\n"),
        ):
            ticket = await _moved_ticket(http, url)
            claim = {"token": ticket["token"], "download_mbps": 1, "upload_mbps": 1, field: bad}
            status, answer = await post(http, res, json.dumps(claim))  # json.dumps writes "\ud800" escaped
            assert (status, answer["field"]) == (400, field), (field, bad, status, answer)
            assert "UTF-8" in answer["error"] or "control character" in answer["error"]
        ticket = await _moved_ticket(http, url)  # the next honest result is stored normally
        status, answer = await post(
            http,
            res,
            {
                "token": ticket["token"],
                "download_mbps": 1,
                "upload_mbps": 1,
                "client_version": "ispeed 1.0 (Tiếng Việt)",
            },
        )
        assert (status, answer["stored"]) == (201, "stored")

    with_server(chdb_url, body)
    with open_store(chdb_url) as store:
        assert store.query("SELECT client_version FROM {db}.measurements") == [("ispeed 1.0 (Tiếng Việt)",)]


async def _raw_exchange(url: str, pieces: list[bytes], gap_s: float = 0.1, timeout_s: float = 10.0) -> tuple[int, Any]:
    """Send `pieces` on one TCP connection `gap_s` apart; (status, JSON body) of the answer."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        for i, piece in enumerate(pieces):
            if i:
                await asyncio.sleep(gap_s)
            writer.write(piece)
            await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)
        status = int(head.split(b" ", 2)[1])
        length = int(
            next(line.split(b":", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
        )
        return status, json.loads(await asyncio.wait_for(reader.readexactly(length), timeout_s))
    finally:
        writer.close()


def _request(path: str, body: bytes, chunked: bool = False) -> tuple[bytes, bytes]:
    """(headers + first half, second half) of a POST whose body arrives in two pieces."""
    half = len(body) // 2
    if chunked:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
        )
        first, second = body[:half], body[half:]
        return (head + b"%x\r\n%s\r\n" % (len(first), first), b"%x\r\n%s\r\n0\r\n\r\n" % (len(second), second))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
    )
    return head + body[:half], body[half:]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_bodies_arriving_in_two_pieces_are_read_whole(chdb_url: str, chunked: bool) -> None:
    """Headers and half the body, 100 ms of nothing, then the rest: a whole JSON body."""

    async def body(url: str, http: aiohttp.ClientSession) -> str:
        status, answer = await _raw_exchange(
            url, list(_request("/api/v1/tests", b'{"streams": 2, "duration_s": 3}', chunked))
        )
        assert status == 201, answer
        assert (answer["streams"], answer["duration_s"]) == (2, 3)
        ticket = await _moved_ticket(http, url)
        claim = json.dumps(
            {
                "token": ticket["token"],
                "download_mbps": 0.5,
                "upload_mbps": 0.5,
                "latency_ms": 1.0,
                "device_id": "split-body",
            }
        ).encode()
        status, answer = await _raw_exchange(url, list(_request("/api/v1/results", claim, chunked)))
        assert status == 201, answer
        assert answer["stored"] == "stored"
        return str(ticket["test_id"])

    test_id = with_server(chdb_url, body)
    with open_store(chdb_url) as store:
        assert store.query("SELECT test_id FROM {db}.measurements") == [(test_id,)]


def test_a_body_that_never_arrives_whole_gets_408_and_stores_nothing(chdb_url: str) -> None:
    """A Content-Length that promises more than comes: 408 with a JSON reason after the body timeout."""

    async def body(url: str, http: aiohttp.ClientSession) -> None:
        ticket = await _moved_ticket(http, url)
        claim = json.dumps({"token": ticket["token"], "download_mbps": 0.5, "upload_mbps": 0.5}).encode()
        head, _ = _request("/api/v1/results", claim + b" " * 100)  # promises 100 bytes more than sent
        loop = asyncio.get_running_loop()
        start = loop.time()
        status, answer = await _raw_exchange(url, [head.split(b"\r\n\r\n")[0] + b"\r\n\r\n" + claim])
        assert (status, answer["field"]) == (408, "body") and "did not arrive" in answer["error"]
        assert 0.5 <= loop.time() - start < 5

    with_server(chdb_url, body, body_timeout_s=1.0)
    assert ServerRefused("the body did not arrive", 408).retryable  # the agent sends it again later
    with open_store(chdb_url) as store:
        assert store.query("SELECT count() FROM {db}.measurements") == [(0,)]


def test_unused_tokens_give_their_capacity_slot_back_within_seconds(
    chdb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tokens nobody uses hold no slot past IDLE_RELEASE_S; tests moving bytes keep theirs."""
    from ispeed.server import registry

    monkeypatch.setattr(registry, "IDLE_RELEASE_S", 1.0, raising=False)  # 5 s in service; 1 s keeps this short

    async def body(url: str, http: aiohttp.ClientSession) -> None:
        first = [await post(http, url + "/api/v1/tests", {"streams": 1, "duration_s": 3}) for _ in range(2)]
        assert [s for s, _ in first] == [201, 201]
        status, answer = await post(http, url + "/api/v1/tests", {"streams": 1})
        assert status == 503 and "capacity" in answer["error"]  # both slots taken, for now
        # one of the two starts moving bytes and keeps moving them; the other is never used
        moving = asyncio.create_task(paced_download(http, url, first[0][1]["token"], 2.5))
        await asyncio.sleep(1.5)
        status, answer = await post(http, url + "/api/v1/tests", {"streams": 1})
        assert status == 201, answer  # the unused token's slot is free
        status, answer = await post(http, url + "/api/v1/tests", {"streams": 1})
        assert status == 503  # the running test kept its slot
        await moving

    with_server(chdb_url, body, max_running_tests=2)
