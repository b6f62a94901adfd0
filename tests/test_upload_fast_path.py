"""The upload endpoint's fast path: bodies with a Content-Length counted straight off the socket.

Raw HTTP/1.1 clients, so the test controls exactly what was sent and how the connection ends;
each test runs on both event loops the server meets (uvloop in `ispeed serve`, asyncio in tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import uvloop
from aiohttp import web

from ispeed.server.app import running
from ispeed.server.config import ServerConfig
from ispeed.server.keys import METRICS, REGISTRY
from ispeed.server.registry import TestState
from ispeed.server.upload_fast import BodySink

SECRET = b"test-secret-0123456789abcdef"
MIB = 1 << 20
T = TypeVar("T")

loops = pytest.mark.parametrize("loop", ["uvloop", "asyncio"])


def run(loop: str, main: Callable[[], Awaitable[T]]) -> T:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop if loop == "uvloop" else None) as runner:
        return runner.run(main())  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_server_errors(caplog: pytest.LogCaptureFixture) -> Any:
    """No traceback, 'Error handling request' (a 500) or unretrieved task exception is logged."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors


class Server:
    def __init__(self, url: str, app: web.Application) -> None:
        self.url = url
        self.app = app
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)

    async def start_test(self, streams: int = 2) -> tuple[str, TestState]:
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url + "/api/v1/tests", json={"streams": streams, "duration_s": 1}) as r,
        ):
            ticket = await r.json()
        state = self.app[REGISTRY].get(ticket["test_id"])
        assert state is not None
        return ticket["token"], state

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self.host, self.port)

    def counter(self, name: str) -> float:
        return self.app[METRICS].counters[name]


@contextlib.asynccontextmanager
async def server(tmp_path: Path, **cfg: Any) -> AsyncIterator[Server]:
    config = ServerConfig(host="127.0.0.1", port=0, store_url=f"chdb:{tmp_path / 'store'}", secret=SECRET, **cfg)
    async with running(config) as (url, app):
        yield Server(url, app)


def upload_head(token: str, stream: int = 0, length: int | None = None, extra: str = "") -> bytes:
    size = f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    return (
        f"POST /api/v1/upload?token={token}&stream={stream} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/octet-stream\r\n{size}{extra}\r\n"
    ).encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], Any]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    status_line, *lines = head.strip().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, json.loads(body)


async def until(cond: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def sinks(state: TestState) -> list[BodySink]:
    return [p for t in state.transports if isinstance(p := t.get_protocol(), BodySink)]


@loops
def test_content_length_body_is_counted_exactly_off_the_socket(loop: str, tmp_path: Path) -> None:
    n = 5 * MIB + 4321

    async def main() -> None:
        async with server(tmp_path) as srv:
            token, state = await srv.start_test()
            reader, writer = await srv.connect()
            writer.write(upload_head(token, stream=1, length=n, extra="Expect: 100-continue\r\n"))  # as curl -T
            assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
            body = bytes(range(256)) * (n // 256 + 1)
            writer.write(body[:MIB])
            await until(lambda: bool(sinks(state)))  # the connection is the sink's now, mid-body
            sent = MIB
            for size in (1, 777, 3 * MIB, 65536, n):  # uneven pieces, the last one the rest
                piece = body[sent : min(n, sent + size)]
                writer.write(piece)
                await writer.drain()
                sent += len(piece)
            status, headers, answer = await read_response(reader)
            assert (status, answer, headers["connection"]) == (200, {"bytes": n}, "close")
            assert await reader.read() == b""  # and the server closed it
            writer.close()
            assert state.bytes_up == {1: n} and state.up_total == n and state.up_timeline[0] == (0.0, 0)
            # its socket was watched for receive holes (method v1 §5), one reading per sample
            assert state.up_sockets.known and len(state.up_ooo) == len(state.up_timeline)
            assert set(state.up_ooo) == {0}  # loopback never reorders
            assert state.active_streams == 0 and not state.transports and state.tcp
            assert srv.counter("bytes_received_total") == n and srv.counter("streams_cut_total") == 0

    run(loop, main)


@loops
def test_chunked_and_already_complete_bodies_keep_aiohttps_path_and_the_connection(loop: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with server(tmp_path) as srv:
            token, state = await srv.start_test()
            reader, writer = await srv.connect()
            for _ in range(2):  # one connection, kept alive
                writer.write(upload_head(token))
                for size in (3 * MIB, 10, MIB + 1):
                    writer.write(f"{size:x}\r\n".encode() + b"c" * size + b"\r\n")
                writer.write(b"0\r\n\r\n")
                status, headers, answer = await read_response(reader)
                assert (status, answer) == (200, {"bytes": 4 * MIB + 11}) and headers.get("connection") != "close"
            # a small body that came with its headers: aiohttp had it all, nothing to take over
            writer.write(upload_head(token, length=1000) + b"s" * 1000)
            status, headers, answer = await read_response(reader)
            assert (status, answer) == (200, {"bytes": 1000}) and headers.get("connection") != "close"
            writer.close()
            assert state.bytes_up == {0: 2 * (4 * MIB + 11) + 1000} and state.active_streams == 0

    run(loop, main)


@loops
def test_batched_wakeups_never_hold_bytes_back_at_low_rates_or_stalls(loop: str, tmp_path: Path) -> None:
    """SO_RCVLOWAT rises with the rate of a multi-gigabit stream only, and a slow or stalled
    stream is counted within ms (a slow stream keeps the kernel's 1 byte: see LOWAT_MIN_BPS)."""

    async def main() -> None:
        async with server(tmp_path) as srv:
            token, state = await srv.start_test()
            reader, writer = await srv.connect()
            # a body longer than this test sends even at loopback's 30 Gbit/s (1 GiB once ended
            # inside the fast part, and the sink with it)
            writer.write(upload_head(token, length=6 << 30))
            sent, lags, slow_peak = 0, 0, 1
            for _ in range(40):  # ~2 MB/s, 10 ms apart: each piece counted before the next is sent
                writer.write(b"s" * 20_000)
                await writer.drain()
                sent += 20_000
                await asyncio.sleep(0.01)
                lags += state.up_total != sent
                slow_peak = max(slow_peak, sinks(state)[0]._lowat)
            assert lags <= 4, lags  # a busy machine may delay a few
            assert slow_peak == 1, slow_peak
            stop, peak = time.monotonic() + 0.3, 1
            while time.monotonic() < stop:  # as fast as it goes: the sink reads in batches
                writer.write(b"f" * MIB)
                await writer.drain()
                sent += MIB
                peak = max(peak, sinks(state)[0]._lowat)
            assert peak > 64 << 10, peak
            writer.write(b"t" * 1000)  # a last few bytes, then nothing: a stall
            sent += 1000
            await until(lambda: state.up_total == sent, timeout_s=1.0)
            writer.close()
            await until(lambda: state.active_streams == 0)
            assert state.bytes_up == {0: sent}

    run(loop, main)


@loops
@pytest.mark.parametrize("how", ["reset", "fin"])
def test_client_that_aborts_mid_body_has_its_partial_bytes_counted(loop: str, how: str, tmp_path: Path) -> None:
    sent = 3 * MIB + 17

    async def main() -> None:
        async with server(tmp_path) as srv:
            token, state = await srv.start_test()
            reader, writer = await srv.connect()
            writer.write(upload_head(token, length=64 * MIB) + b"a" * sent)
            await writer.drain()
            await until(lambda: state.bytes_up.get(0) == sent)
            assert sinks(state)
            if how == "reset":  # what our client does at its phase deadline
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            else:
                writer.close()
            await until(lambda: state.active_streams == 0)
            assert state.bytes_up == {0: sent} and not state.transports
            assert srv.counter("bytes_received_total") == sent

    run(loop, main)


@loops
@pytest.mark.parametrize("cause", ["bytes", "sweeper"])
def test_body_over_the_test_limits_is_cut(loop: str, cause: str, tmp_path: Path) -> None:
    """The handler's own check cuts past the bytes limit; the sweeper, a test past its deadline."""

    async def main() -> None:
        limit = 8 * MIB if cause == "bytes" else 200 << 30
        async with server(tmp_path, max_bytes_per_test=limit) as srv:
            token, state = await srv.start_test()
            reader, writer = await srv.connect()
            writer.write(upload_head(token, length=512 * MIB))
            sent = 0
            with contextlib.suppress(ConnectionError):
                while sent < 512 * MIB and not writer.is_closing():  # ~50 MiB/s: past the limit between two checks
                    writer.write(b"b" * MIB)
                    await writer.drain()
                    sent += MIB
                    if cause == "sweeper" and sent == MIB:
                        await until(lambda: bool(sinks(state)))
                        state.created -= 3600  # the test's time is up while its body still arrives
                    await asyncio.sleep(0.02)
            with contextlib.suppress(ConnectionError):
                assert b"200" not in await asyncio.wait_for(reader.read(), timeout=5)
            writer.close()
            assert sent < 512 * MIB
            await until(lambda: state.active_streams == 0)
            got = state.bytes_up[0]
            assert MIB <= got <= sent and got == srv.counter("bytes_received_total") and not state.transports
            if cause == "bytes":
                assert got > limit and srv.counter("streams_cut_total") == 1
            else:
                assert state.cut

    run(loop, main)


@loops
@pytest.mark.parametrize(
    "length, extra, status, field",
    [
        (MIB + 1, "", 413, "Content-Length"),  # over the request limit
        # aiohttp would count a gzip body after decompression: a small body could claim gigabytes
        (1024, "Content-Encoding: gzip\r\n", 415, "Content-Encoding"),
    ],
)
def test_refused_upload_bodies_are_answered_before_any_byte_is_counted(
    loop: str, length: int, extra: str, status: int, field: str, tmp_path: Path
) -> None:
    async def main() -> None:
        async with server(tmp_path, max_request_bytes=MIB) as srv:
            token, state = await srv.start_test()
            reader, writer = await srv.connect()
            writer.write(upload_head(token, length=length, extra=extra))
            status_got, _, answer = await read_response(reader)
            assert (status_got, answer["field"]) == (status, field) and not state.bytes_up
            writer.close()
            await writer.wait_closed()  # else aiohttp's lingering read of the refused body delays the shutdown

    run(loop, main)


@loops
def test_server_shutdown_ends_a_stalled_body_and_counts_it(loop: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with server(tmp_path) as srv:
            token, state = await srv.start_test()
            reader, writer = await srv.connect()
            writer.write(upload_head(token, length=10 * MIB) + b"d" * MIB)
            await until(lambda: state.bytes_up.get(0) == MIB and bool(sinks(state)))
            start = time.monotonic()
        # aiohttp lets a running handler finish for its shutdown timeout (5 s), then cancels the
        # request: the sink's handler must end then, not after a second timeout
        assert time.monotonic() - start < 7.5 and state.active_streams == 0 and state.bytes_up == {0: MIB}
        with contextlib.suppress(ConnectionError):
            await reader.read()
        writer.close()

    run(loop, main)


@loops
def test_streamed_client_bodies_with_content_length_reconnect_and_add_up(loop: str, tmp_path: Path) -> None:
    """As the ispeed client sends them: an async generator body with a Content-Length, repeated."""

    async def body() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"e" * MIB

    async def main() -> None:
        async with server(tmp_path) as srv, aiohttp.ClientSession() as http:
            token, state = await srv.start_test()
            for _ in range(3):
                async with http.post(
                    srv.url + "/api/v1/upload",
                    params={"token": token, "stream": "1"},
                    data=body(),
                    headers={"Content-Length": str(8 * MIB)},
                ) as r:
                    assert (r.status, await r.json()) == (200, {"bytes": 8 * MIB})
            assert state.bytes_up == {1: 24 * MIB} and state.active_streams == 0

    run(loop, main)
