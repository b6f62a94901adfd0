"""ndt7 server rules (spec/ndt7-notes.md): refusals before the upgrade, scaling, messages, pairing."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ispeed.core.store import open_store
from ispeed.server import ndt7_messages as m
from ispeed.server import ndt7_results
from ispeed.server.app import running
from ispeed.server.config import ServerConfig
from ispeed.server.keys import METRICS

SECRET = b"test-secret-0123456789abcdef"
PROTO = [m.SUBPROTOCOL]


def with_server(store_url: str, body: Callable[[str, aiohttp.ClientSession], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        config = ServerConfig(host="127.0.0.1", port=0, store_url=store_url, secret=SECRET)
        async with running(config) as (url, _app), aiohttp.ClientSession() as http:
            return await body(url, http)

    return asyncio.run(main())


@pytest.fixture
def short_subtests(monkeypatch: pytest.MonkeyPatch) -> None:
    """2 s subtests and a 1 s pairing window keep these protocol tests short."""
    monkeypatch.setattr(m, "SUBTEST_S", 2.0)
    monkeypatch.setattr(ndt7_results, "PAIR_GAP_S", 1.0)


def test_message_size_scaling_follows_the_spec() -> None:
    size, total, sizes = m.INITIAL_MESSAGE_BYTES, 0, []
    for _ in range(400):
        total += size
        sizes.append(size)
        size = m.next_message_size(size, total)
    assert sizes[0] == 1 << 13 and max(sizes) == 1 << 20
    assert all(b in (a, 2 * a) for a, b in zip(sizes, sizes[1:], strict=False))  # only ever doubles
    first_double = next(i for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)) if b > a)
    assert first_double == 15  # after 16 messages of 8 KiB the total is 16 × 8 KiB
    rng = random.Random(1)
    delays = [m.next_measurement_delay(rng) for _ in range(2000)]
    assert min(delays) >= 0.025 and max(delays) <= 0.625 and 0.2 < sum(delays) / len(delays) < 0.3


def test_query_metadata_rules() -> None:
    meta, early = m.parse_query("", {"client_name": "x", "server_secret": "y", "early_exit": "250"}, "download")
    assert meta == {"client_name": "x", "early_exit": "250"} and early == 250_000_000
    assert m.parse_query("", {"early_exit": "100"}, "upload")[1] is None  # download only
    with pytest.raises(m.QueryError, match="early_exit"):
        m.parse_query("", {"early_exit": "100"}, "download")
    with pytest.raises(m.QueryError, match="4096"):
        m.parse_query("a=" + "x" * 4100, {}, "download")
    assert (
        m.client_label(
            {"client_name": "app", "client_version": "2", "client_library_name": "lib", "client_library_version": "3"}
        )
        == "app/2 (lib/3)"
    )
    assert m.declared_network_type({"network_type": "5G"}) == "5g" and m.declared_network_type({}) is None


def test_refused_with_400_before_the_upgrade(tmp_path: Path) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> None:
        ws_url = url.replace("http", "ws", 1)
        async with http.get(url + "/ndt/v7/download") as r:  # not an upgrade
            assert r.status == 400 and "WebSocket" in (await r.json())["error"]
        for path, params, protocols, _needle in (
            ("/ndt/v7/download", {}, [], "Sec-WebSocket-Protocol"),
            ("/ndt/v7/upload", {}, ["other.proto"], "Sec-WebSocket-Protocol"),
            ("/ndt/v7/download", {"early_exit": "7"}, PROTO, "early_exit"),
            ("/ndt/v7/download", {"x": "y" * 4100}, PROTO, "4096"),
        ):
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await http.ws_connect(ws_url + path, params=params, protocols=protocols)
            assert info.value.status == 400, (path, params)
        async with http.get(
            url + "/ndt/v7/download",
            params={"early_exit": "7"},
            headers={
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Protocol": m.SUBPROTOCOL,
            },
        ) as r:
            assert r.status == 400 and "early_exit" in (await r.json())["error"]

    with_server(f"chdb:{tmp_path / 'store'}", body)


def test_download_messages_early_exit_and_lone_subtest_is_stored_incomplete(
    tmp_path: Path, short_subtests: None
) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> dict[str, Any]:
        ws_url = url.replace("http", "ws", 1) + "/ndt/v7/download"
        seen: dict[str, Any] = {"sizes": [], "texts": []}
        async with http.ws_connect(
            ws_url, protocols=PROTO, params={"client_name": "probe", "server_x": "1"}, max_msg_size=1 << 24
        ) as ws:
            assert ws.protocol == m.SUBPROTOCOL
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    seen["sizes"].append(len(msg.data))
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    seen["texts"].append(json.loads(msg.data))
            seen["close_code"] = ws.close_code
        await asyncio.sleep(1.5)  # past the pairing window: stored alone
        return seen

    store = f"chdb:{tmp_path / 'store'}"
    seen = with_server(store, body)
    assert seen["close_code"] == 1000
    sizes, texts = seen["sizes"], seen["texts"]
    assert sizes[0] == 1 << 13 and max(sizes) == 1 << 20
    first, last = texts[0], texts[-1]
    assert first["Origin"] == "server" and first["Test"] == "download" and "ConnectionInfo" in first
    assert set(first["ConnectionInfo"]) == {"Client", "Server", "UUID", "StartTime"}
    assert last["AppInfo"]["NumBytes"] == sum(sizes)  # the last message is the summary
    assert 1.9e6 <= last["AppInfo"]["ElapsedTime"] <= 3e6
    tcp = last["TCPInfo"]
    for key in (
        "BusyTime",
        "BytesAcked",
        "BytesReceived",
        "BytesSent",
        "BytesRetrans",
        "ElapsedTime",
        "MinRTT",
        "RTT",
        "RTTVar",
        "RWndLimited",
        "SndBufLimited",
    ):
        assert isinstance(tcp[key], int), key
    assert tcp["BytesAcked"] >= 0.9 * sum(sizes) and tcp["MinRTT"] > 0
    assert 5 <= len(texts) <= 2.0 * 10 + 2  # at most ~10 per second on average
    with open_store(store) as s:
        rows = s.query(
            "SELECT test_id, download_mbps, upload_mbps, client_kind, client_version, valid,"
            " invalid_reason FROM {db}.measurements"
        )
    assert len(rows) == 1
    test_id, down, up, kind, version, valid, reason = rows[0]
    assert test_id == first["ConnectionInfo"]["UUID"] and kind == "ndt7" and version == "probe"
    assert down > 100 and up == 0 and valid == 0 and reason.startswith("ndt7 incomplete: no upload")


def test_early_exit_ends_the_download_after_250_mb(tmp_path: Path) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> tuple[int, float]:
        ws_url = url.replace("http", "ws", 1) + "/ndt/v7/download"
        received, loop = 0, asyncio.get_running_loop()
        t0 = loop.time()
        async with http.ws_connect(ws_url, protocols=PROTO, params={"early_exit": "250"}, max_msg_size=1 << 24) as ws:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    received += len(msg.data)
        return received, loop.time() - t0

    received, seconds = with_server(f"chdb:{tmp_path / 'store'}", body)
    assert 250_000_000 <= received < 252_000_000 and seconds < 9


def test_upload_accepts_8_mib_messages_and_pairs_with_the_download(tmp_path: Path, short_subtests: None) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> dict[str, Any]:
        base = url.replace("http", "ws", 1)
        meta = {"client_name": "pairing-test", "client_version": "9", "network_type": "mobile"}
        async with http.ws_connect(base + "/ndt/v7/download", protocols=PROTO, params=meta, max_msg_size=1 << 24) as ws:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    down_uuid = json.loads(msg.data).get("ConnectionInfo", {}).get("UUID", "")
                    break
            async for _msg in ws:
                pass
        sent, last = 0, {}
        big = bytes(8 << 20)
        async with http.ws_connect(base + "/ndt/v7/upload", protocols=PROTO, params=meta) as ws:

            async def reader() -> None:
                nonlocal last
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        last = json.loads(msg.data)

            task = asyncio.create_task(reader())
            for _ in range(6):
                await ws.send_bytes(big)
                sent += len(big)
            await task  # the server closes after its 2 s subtest
            code = ws.close_code
        await asyncio.sleep(0.5)
        return {"down_uuid": down_uuid, "sent": sent, "last": last, "code": code}

    store = f"chdb:{tmp_path / 'store'}"
    out = with_server(store, body)
    assert out["code"] == 1000
    assert out["last"]["Test"] == "upload" and out["last"]["AppInfo"]["NumBytes"] == out["sent"]
    assert out["last"]["TCPInfo"]["BytesReceived"] >= out["sent"]
    with open_store(store) as s:
        rows = s.query(
            "SELECT test_id, download_mbps, upload_mbps, server_bytes_up, network_type, valid,"
            " latency_ms, ip_version FROM {db}.measurements"
        )
    assert len(rows) == 1  # one paired result, keyed by the download's UUID
    test_id, down, up, server_up, network, valid, latency, ip_version = rows[0]
    assert test_id == out["down_uuid"] and network == "mobile" and valid == 1 and ip_version == 4
    assert down > 100 and up > 0 and server_up >= out["sent"] and latency is not None


def test_locate_lists_servers_in_the_ndt7_url_shape(tmp_path: Path) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> dict[str, Any]:
        async with http.get(url + "/v2/nearest/ndt/ndt7", params={"client_name": "c", "server_x": "1"}) as r:
            assert r.status == 200
            return await r.json()

    answer = with_server(f"chdb:{tmp_path / 'store'}", body)
    first = answer["results"][0]
    assert first["machine"] == "local-1"
    urls = first["urls"]
    assert set(urls) == {
        "ws:///ndt/v7/download",
        "ws:///ndt/v7/upload",
        "wss:///ndt/v7/download",
        "wss:///ndt/v7/upload",
    }
    assert urls["ws:///ndt/v7/download"].startswith("ws://127.0.0.1:")
    assert urls["ws:///ndt/v7/upload"].endswith("/ndt/v7/upload?client_name=c")


def with_limited_server(
    store_url: str, body: Callable[[str, aiohttp.ClientSession], Awaitable[Any]], **limits: Any
) -> Any:
    async def main() -> Any:
        config = ServerConfig(host="127.0.0.1", port=0, store_url=store_url, secret=SECRET, **limits)
        async with running(config) as (url, app), aiohttp.ClientSession() as http:
            answer = await body(url, http)
            metrics = app[METRICS].render()
            return answer, metrics

    return asyncio.run(main())


def test_ndt7_has_the_native_per_network_limits(tmp_path: Path, short_subtests: None) -> None:
    """One network cannot take every ndt7 slot, nor open subtests faster than its rate."""

    async def body(url: str, http: aiohttp.ClientSession) -> list[int]:
        ws_url = url.replace("http", "ws", 1) + "/ndt/v7/download"
        statuses = []
        async with http.ws_connect(ws_url, protocols=PROTO, max_msg_size=1 << 24) as first:
            await first.receive()  # running now: it holds the network's only slot
            for _ in range(2):
                try:
                    async with http.ws_connect(ws_url, protocols=PROTO, max_msg_size=1 << 24):
                        statuses.append(101)
                except aiohttp.WSServerHandshakeError as exc:
                    statuses.append(exc.status)
        return statuses

    statuses, metrics = with_limited_server(
        f"chdb:{tmp_path / 'store'}", body, max_tests_per_network=1, tests_per_min_per_network=1e6
    )
    assert statuses == [429, 429]
    assert "ispeed_ndt7_refused_total 2" in metrics and "ispeed_tests_refused_network_busy_total 2" in metrics

    async def burst(url: str, http: aiohttp.ClientSession) -> list[int]:
        ws_url = url.replace("http", "ws", 1) + "/ndt/v7/upload"
        statuses = []
        for _ in range(4):
            try:
                async with http.ws_connect(ws_url, protocols=PROTO):
                    statuses.append(101)
            except aiohttp.WSServerHandshakeError as exc:
                statuses.append(exc.status)
        return statuses

    statuses, metrics = with_limited_server(f"chdb:{tmp_path / 'store2'}", burst, tests_per_min_per_network=4)
    assert statuses == [101, 101, 429, 429]  # a burst of half the per-minute rate, then refused
    assert "ispeed_ndt7_refused_rate_total 2" in metrics


def test_ndt7_subtests_too_short_to_measure_are_stored_invalid(tmp_path: Path, short_subtests: None) -> None:
    """A connection opened and closed at once moved almost nothing: kept for audit, never ranked."""

    async def body(url: str, http: aiohttp.ClientSession) -> None:
        ws_url = url.replace("http", "ws", 1)
        async with http.ws_connect(ws_url + "/ndt/v7/download", protocols=PROTO, max_msg_size=1 << 24) as ws:
            await ws.receive()
        async with http.ws_connect(ws_url + "/ndt/v7/upload", protocols=PROTO) as ws:
            await ws.send_bytes(b"\0" * 1024)
        await asyncio.sleep(0.5)

    store = f"chdb:{tmp_path / 'store'}"
    _, metrics = with_limited_server(store, body)
    with open_store(store) as s:
        rows = s.query("SELECT valid, invalid_reason FROM {db}.measurements")
    assert len(rows) == 1 and rows[0][0] == 0, rows
    assert rows[0][1].startswith("ndt7 download too short or too small to measure"), rows
    assert "ispeed_ndt7_results_invalid_total 1" in metrics
