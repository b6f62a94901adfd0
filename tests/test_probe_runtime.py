"""Probes are answered on their own thread: a busy main loop does not delay them (probe_runtime.py).

The server's main loop is made to stand still (as 64 clients' transfers make it, for longer) while
a client on another thread sends WebSocket and RPM probes: with the probe thread they come back
at once and the server records a small server-added delay; with `--probes-inline` (the old
design) they wait for the main loop and the server says so in `server_delay_p99_ms`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from ispeed.server.app import running
from ispeed.server.config import ServerConfig
from ispeed.server.loop_lag import LoopLag
from ispeed.server.probe_runtime import is_probe

SECRET = b"probe-runtime-secret-0123456789"
STALL_S = 0.6


def _rpm_probe(url: str, token: str) -> float:
    """One foreign probe on a new connection (blocking, from the client thread): ms to the answer."""
    parts = urlsplit(url)
    t0 = time.perf_counter()
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(f"GET /api/v1/rpm?token={token} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    return (time.perf_counter() - t0) * 1000


async def _probe_client(
    url: str, token: str, opened: threading.Event, go: threading.Event, out: dict[str, Any]
) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{url}/api/v1/latency?token={token}") as ws:
        opened.set()
        await asyncio.get_running_loop().run_in_executor(None, go.wait, 10)
        await asyncio.sleep(0.05)  # the main loop is standing still from here
        rtts = []
        for k in range(5):
            t0 = time.perf_counter()
            await ws.send_str(str(k))
            msg = await ws.receive(timeout=5)
            assert msg.data == str(k)
            rtts.append((time.perf_counter() - t0) * 1000)
        out["ws"] = rtts
        out["rpm"] = await asyncio.get_running_loop().run_in_executor(None, _rpm_probe, url, token)


def _run(tmp_path: Path, probe_thread: bool) -> tuple[dict[str, Any], dict[str, Any], str]:
    async def main() -> tuple[dict[str, Any], dict[str, Any], str]:
        config = ServerConfig(
            host="127.0.0.1", port=0, store_url=f"chdb:{tmp_path}/store", secret=SECRET, probe_thread=probe_thread
        )
        async with running(config) as (url, _app), aiohttp.ClientSession() as http:
            async with http.post(url + "/api/v1/tests", json={"streams": 1, "duration_s": 2}) as r:
                ticket = await r.json()
            out: dict[str, Any] = {}
            opened, go = threading.Event(), threading.Event()
            client = threading.Thread(
                target=lambda: asyncio.run(_probe_client(url, ticket["token"], opened, go, out)), daemon=True
            )
            client.start()
            assert await asyncio.get_running_loop().run_in_executor(None, opened.wait, 10)
            go.set()
            time.sleep(STALL_S)  # the main loop stands still, as a loaded one does between its callbacks
            await asyncio.get_running_loop().run_in_executor(None, client.join, 20)
            async with http.get(f"{url}/api/v1/tests/{ticket['test_id']}", params={"token": ticket["token"]}) as r:
                counters = await r.json()
            async with http.get(url + "/metrics") as r:
                metrics = await r.text()
        return out, counters, metrics

    return asyncio.run(main())


def test_probes_are_answered_while_the_main_loop_stands_still(tmp_path: Path) -> None:
    out, counters, metrics = _run(tmp_path, probe_thread=True)
    assert max(out["ws"]) < 50, out  # loopback: well under a millisecond when nothing waits
    assert out["rpm"] < 50, out
    assert counters["server_delay_p99_ms"] < 5, counters  # what the server says it added
    assert "probe_connections_total" in metrics and "probe_loop_lag_p99_ms" in metrics


def test_inline_probes_wait_for_the_main_loop_and_the_server_says_so(tmp_path: Path) -> None:
    out, counters, _ = _run(tmp_path, probe_thread=False)
    assert out["ws"][0] > 0.5 * STALL_S * 1000, out  # the first probe waited for the stalled loop
    assert counters["server_delay_p99_ms"] > 0.5 * STALL_S * 1000, counters  # and the server knows it


def test_connections_that_are_not_probes_reach_the_main_application(tmp_path: Path) -> None:
    async def main() -> list[bytes]:
        config = ServerConfig(host="127.0.0.1", port=0, store_url=f"chdb:{tmp_path}/store", secret=SECRET)
        async with running(config) as (url, _app):
            parts = urlsplit(url)
            answers = []
            for pause_s, request in (
                (0.0, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
                (2.3, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),  # silent past the peek wait
                (0.0, b"GET /api/v1/rpm HTTP/1.1\r\nHost: x\r\n\r\n"),  # a probe without token, keep-alive asked
            ):
                reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
                await asyncio.sleep(pause_s)
                writer.write(request)
                answers.append(await asyncio.wait_for(reader.read(), 10))
                writer.close()
        return answers

    healthz, late, no_token = asyncio.run(main())
    assert healthz.startswith(b"HTTP/1.1 200") and b'"status": "ok"' in healthz
    assert late.startswith(b"HTTP/1.1 200")
    assert no_token.startswith(b"HTTP/1.1 403") or no_token.startswith(b"HTTP/1.1 400"), no_token[:200]
    assert b'"error"' in no_token  # the probe application answers with the same JSON reasons
    # and it ended the connection (read() above reached its end): a next request is routed anew


@pytest.mark.parametrize(
    ("head", "probe"),
    [
        (b"GET /api/v1/rpm?token=x HTTP/1.1", True),
        (b"GET /api/v1/latency?token=x HTTP/1.1", True),
        (b"GET /api/v1/rpmx HTTP/1.1", False),
        (b"POST /api/v1/rpm?token=x HTTP/1.1", False),
        (b"GET /api/v1/download?token=x", False),
        (b"GE", False),
    ],
)
def test_only_probe_requests_are_kept_on_the_probe_loop(head: bytes, probe: bool) -> None:
    assert is_probe(head) is probe


def test_loop_lag_reads_a_stall_it_has_not_sampled_yet() -> None:
    async def main() -> tuple[float, float]:
        lag = LoopLag()
        task = asyncio.create_task(lag.run())
        await asyncio.sleep(0.05)
        quiet = lag.now_ms()
        time.sleep(0.2)  # the loop stands still
        stalled = lag.now_ms()  # before the tick that will sample it runs
        task.cancel()
        return quiet, stalled

    quiet, stalled = asyncio.run(main())
    assert quiet < 20
    assert stalled >= 150
