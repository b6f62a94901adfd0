"""The client's raw HTTP/1.1 download streams (`ispeed.client.rawhttp`): exact byte counts
against the real server app on loopback, kept-alive connections, error answers, broken
connections, answers left to aiohttp, IPv6, host names and TLS."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import socket
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import uvloop

from ispeed.client import rawhttp
from ispeed.client.config import TestConfig
from ispeed.client.engine import Engine
from ispeed.core.errors import MeasurementError, ServerUnreachable
from ispeed.core.tcpinfo import OooCounter
from ispeed.server.app import running
from ispeed.server.config import ServerConfig
from ispeed.server.keys import REGISTRY

SECRET = b"test-secret-0123456789abcdef"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
LOOPS = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}  # `ispeed demo` runs the client under uvloop


# -- helpers --------------------------------------------------------------------------------------
def run(main: Awaitable[Any], loop: str = "asyncio") -> Any:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        return runner.run(main)  # type: ignore[arg-type]


def with_app(
    tmp_path: Path,
    body: Callable[[str, Any, str], Awaitable[Any]],
    host: str = "127.0.0.1",
    streams: int = 4,
    loop: str = "asyncio",
) -> Any:
    """Run `body(base_url, state, token)` against the real server app on loopback; `state` is
    the server's own record of the test (its bytes_down per stream: what it sent)."""

    async def main() -> Any:
        config = ServerConfig(host=host, port=0, store_url=f"chdb:{tmp_path / 'store'}", secret=SECRET)
        async with running(config) as (url, app), aiohttp.ClientSession() as http:
            async with http.post(url + "/api/v1/tests", json={"streams": streams, "duration_s": 10}) as r:
                assert r.status == 201, await r.text()
                ticket = await r.json()
            return await body(url, app[REGISTRY].get(ticket["test_id"]), ticket["token"])

    return run(main(), loop)


def target(token: str, stream: int, size: int) -> str:
    return "/api/v1/download?" + urlencode({"token": token, "stream": stream, "bytes": size})


def origin(base: str) -> rawhttp.Origin:
    found = rawhttp.Origin.from_url(base)
    assert found is not None
    return found


async def run_for(base: str | rawhttp.Origin, path: str, seconds: float, counters: list[int], index: int = 0) -> None:
    loop = asyncio.get_running_loop()
    where = base if isinstance(base, rawhttp.Origin) else origin(base)
    await rawhttp.count_downloads(where, path, counters, index, loop.time() + seconds, 5.0, f"download stream {index}")


async def fake_server(
    handler: Handler, host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None
) -> tuple[asyncio.Server, int, list[int]]:
    """A loopback server running `handler` per connection; also counts connections."""
    accepted: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the test is over
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, host, 0, ssl=ssl_context)
    return server, server.sockets[0].getsockname()[1], accepted


async def download_failure(handler: Handler) -> tuple[str, list[int], int]:
    """Download from a scripted server until it fails: (the error's message, counters, connections)."""
    server, port, accepted = await fake_server(handler)
    async with server:
        counters = [0]
        with pytest.raises(MeasurementError) as err:
            await run_for(f"http://127.0.0.1:{port}", "/d", 5.0, counters)
        return str(err.value), counters, len(accepted)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def ok_head(length: int, extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n{extra}\r\n".encode()


def count_connects(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    made: list[int] = []
    real = rawhttp._connect

    async def counting(*args: Any, **kw: Any) -> Any:
        made.append(1)
        return await real(*args, **kw)

    monkeypatch.setattr(rawhttp, "_connect", counting)
    return made


# -- against the real server app --------------------------------------------------------------------
@pytest.mark.parametrize("loop", LOOPS)
def test_counts_exactly_what_the_server_sent_over_one_kept_alive_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loop: str
) -> None:
    connects = count_connects(monkeypatch)
    size = 1_000_003  # not a multiple of any buffer size

    async def body(url: str, state: Any, token: str) -> None:
        counters = [0]
        await run_for(url, target(token, 0, size), 0.5, counters)
        await asyncio.sleep(0.2)  # the server's handler records its count after its last write
        assert counters[0] >= 2 * size and counters[0] % size == 0
        assert counters[0] == state.bytes_down[0]

    with_app(tmp_path, body, loop=loop)
    assert len(connects) == 1


def test_streams_sharing_one_buffer_each_count_their_own_bytes(tmp_path: Path) -> None:
    sizes = [300_001, 1_000_000, 2_500_007, 77]

    async def body(url: str, state: Any, token: str) -> None:
        counters = [0] * 4
        loop = asyncio.get_running_loop()
        buffer = rawhttp.read_buffer()
        stop_at = loop.time() + 0.5
        await asyncio.gather(
            *(
                rawhttp.count_downloads(
                    origin(url), target(token, i, n), counters, i, stop_at, 5.0, f"download stream {i}", buffer
                )
                for i, n in enumerate(sizes)
            )
        )
        await asyncio.sleep(0.2)
        for i, n in enumerate(sizes):
            assert counters[i] > 0 and counters[i] % n == 0, (i, counters[i])
            assert counters[i] == state.bytes_down[i]

    with_app(tmp_path, body)


def test_an_error_answer_is_a_measurement_error_with_the_servers_reason(tmp_path: Path) -> None:
    async def body(url: str, state: Any, token: str) -> tuple[str, str, str]:
        counters = [0]
        with pytest.raises(MeasurementError) as bad_size:
            await run_for(url, target(token, 0, 0), 1.0, counters)
        with pytest.raises(MeasurementError) as bad_token:
            await run_for(url, target("not.a-token", 0, 1000), 1.0, counters)
        with pytest.raises(MeasurementError) as bad_stream:
            await run_for(url, target(token, 9, 1000), 1.0, counters)
        assert counters == [0]
        return str(bad_size.value), str(bad_token.value), str(bad_stream.value)

    size, token, stream = with_app(tmp_path, body)
    assert size.startswith("download stream 0: HTTP 400 ")
    assert json.loads(size.split("HTTP 400 ", 1)[1])["error"] == "bytes must be between 1 and 8589934592, got 0"
    assert token.startswith("download stream 0: HTTP 4") and "token" in token
    assert stream.startswith("download stream 0: HTTP 400 ") and "stream must be between 0 and 3" in stream


def test_the_engine_download_phase_counts_with_rawhttp(tmp_path: Path) -> None:
    class NoGet:
        def get(self, *args: Any, **kw: Any) -> Any:
            raise AssertionError("the download went through aiohttp")

    async def body(url: str, state: Any, token: str) -> Any:
        engine = Engine(TestConfig(server_url=url, streams=4, duration_s=1, submit=False))
        ooo = OooCounter()
        result = await engine._phase(
            "download",
            engine._download_stream(NoGet(), token, ooo),  # type: ignore[arg-type]
            None,
            0.1,
            ooo,
        )
        await asyncio.sleep(0.2)
        return result, state.total_down

    result, server_sent = with_app(tmp_path, body)
    assert result.mbps > 100 and 0 < result.bytes <= server_sent
    assert result.samples[0] == (0.0, 0) and len(result.samples) >= 9  # sampled every 100 ms for 1 s
    # the streams' sockets were watched for receive holes (method v1 §5); loopback never reorders
    assert result.ooo is not None and len(result.ooo) == len(result.samples) and set(result.ooo) == {0}


def test_ipv6_loopback(tmp_path: Path) -> None:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")

    async def body(url: str, state: Any, token: str) -> None:
        assert url.startswith("http://[::1]:")
        where = origin(url)
        assert where.host == "::1" and where.host_header == url.removeprefix("http://")
        counters = [0]
        await run_for(where, target(token, 0, 123_457), 0.3, counters)
        assert counters[0] > 0 and counters[0] % 123_457 == 0

    with_app(tmp_path, body, host="::1")


# -- against scripted servers ------------------------------------------------------------------------
@pytest.mark.parametrize("loop", LOOPS)
def test_server_closing_mid_body_counts_what_arrived_and_says_so(loop: str) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok_head(1_000_000) + b"x" * 1000)
        await writer.drain()

    message, counters, _ = run(download_failure(handler), loop)
    assert counters == [1000]
    assert message == "download stream 0: the server closed the connection after 1000 of 1000000 body bytes"


def test_server_closing_a_new_connection_before_answering_fails_at_once() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    message, _, connections = asyncio.run(download_failure(handler))
    assert connections == 1
    assert "closed the connection before the end of the response head" in message


def test_kept_alive_connection_closed_between_answers_is_replaced() -> None:
    """The server closes after each answer without saying so: the usual keep-alive race."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok_head(5000) + b"y" * 5000)
        await writer.drain()

    async def main() -> tuple[list[int], int]:
        server, port, accepted = await fake_server(handler)
        async with server:
            counters = [0]
            await run_for(f"http://127.0.0.1:{port}", "/d", 0.3, counters)
            return counters, len(accepted)

    counters, connections = asyncio.run(main())
    assert connections >= 2 and counters[0] % 5000 == 0 and counters[0] >= 5000 * (connections - 1)


def test_connection_close_answers_and_heads_in_pieces() -> None:
    """Heads split over several reads, an interim 100 answer, `Connection: close`, HTTP/1.0."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        head = b"HTTP/1.1 100 Continue\r\n\r\n" + ok_head(7, "Connection: close\r\nX-Pad: " + "p" * 3000 + "\r\n")
        for i in range(0, len(head), 1000):
            writer.write(head[i : i + 1000])
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"1234567")
        await writer.drain()
        await reader.read()  # the client closes

    async def http10(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\n\r\n" + b"z" * 4321)  # no length: the body ends at the close

    async def main() -> tuple[list[int], int, list[int], int]:
        server, port, accepted = await fake_server(handler)
        async with server:
            counters = [0]
            await run_for(f"http://127.0.0.1:{port}", "/d", 0.3, counters)
        server10, port10, accepted10 = await fake_server(http10)
        async with server10:
            counters10 = [0]
            await run_for(f"http://127.0.0.1:{port10}", "/d", 0.3, counters10)
        return counters, len(accepted), counters10, len(accepted10)

    counters, connections, counters10, connections10 = asyncio.run(main())
    assert counters == [7 * connections] and connections >= 2
    assert counters10 == [4321 * connections10] and connections10 >= 2


def test_bytes_past_the_announced_length_are_an_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok_head(10) + b"0123456789EXTRA")
        await writer.drain()
        await reader.read()

    message, counters, _ = asyncio.run(download_failure(handler))
    assert message == "download stream 0: the server sent 5 bytes past the 10-byte body it announced"
    assert counters == [10]


def test_a_chunked_answer_is_left_to_aiohttp() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2710\r\n" + b"c" * 10000 + b"\r\n2710\r\n" + b"c" * 10000 + b"\r\n0\r\n\r\n"
    )

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(chunked)
            await writer.drain()

    async def main() -> tuple[list[int], Any]:
        server, port, _ = await fake_server(handler)
        async with server:
            counters = [0]
            with pytest.raises(rawhttp.Unsupported):
                await run_for(f"http://127.0.0.1:{port}", "/d", 5.0, counters)
            engine = Engine(TestConfig(server_url=f"http://127.0.0.1:{port}", streams=2, duration_s=1, submit=False))
            async with engine._session() as session:
                result = await engine._phase(
                    "download", engine._download_stream(session, "t", OooCounter()), None, None
                )
            return counters, result

    counters, result = asyncio.run(main())
    assert counters == [0]  # nothing of the chunked body was counted by rawhttp
    assert result.bytes >= 20000


def test_an_unreachable_server_is_server_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused

        async def main() -> str:
            with pytest.raises(ServerUnreachable) as err:
                await run_for(f"http://127.0.0.1:{port}", "/d", 5.0, [0])
            return str(err.value)

        assert asyncio.run(main()).startswith(f"download stream 0: cannot connect to 127.0.0.1:{port} ")


def test_a_host_name_and_a_path_prefix() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            seen.append(await read_request(reader))
            writer.write(ok_head(999) + b"h" * 999)
            await writer.drain()

    async def main() -> list[int]:
        server, port, _ = await fake_server(handler)
        async with server:
            where = origin(f"http://localhost:{port}/speed/")
            counters = [0]
            await run_for(where, where.path_prefix + "/api/v1/download?x=1", 0.2, counters)
            return counters

    counters = asyncio.run(main())
    assert counters[0] > 0 and counters[0] % 999 == 0
    first = seen[0].decode().split("\r\n")
    assert first[0] == "GET /speed/api/v1/download?x=1 HTTP/1.1"
    assert "Host: localhost:" + first[1].rsplit(":", 1)[1] == first[1]


def test_origins() -> None:
    plain = origin("http://example.org/")
    assert (plain.host, plain.port, plain.host_header, plain.path_prefix, plain.ssl) == (
        "example.org",
        80,
        "example.org",
        "",
        None,
    )
    tls = origin("https://[2001:db8::1]:8443/x/")
    assert (tls.host, tls.port, tls.host_header, tls.path_prefix) == ("2001:db8::1", 8443, "[2001:db8::1]:8443", "/x")
    assert tls.ssl is not None and tls.ssl.verify_mode == ssl.CERT_REQUIRED and tls.ssl.check_hostname
    assert origin("https://h.example").host_header == "h.example" and origin("https://h.example").port == 443
    assert rawhttp.Origin.from_url("http://user:pw@h.example") is None  # credentials: aiohttp's job
    assert rawhttp.Origin.from_url("ftp://h.example") is None


# -- TLS ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(d / "key.pem"),
            "-out",
            str(d / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    return d / "cert.pem", d / "key.pem"


@pytest.mark.parametrize("loop", LOOPS)
def test_https_counts_exactly_and_checks_the_certificate(certificate: tuple[Path, Path], loop: str) -> None:
    cert, key = certificate
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    size = 3_000_001
    blob = b"t" * size

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(ok_head(size) + blob)
            await writer.drain()

    async def main() -> tuple[list[int], int, str]:
        server, port, accepted = await fake_server(handler, ssl_context=served)
        async with server:
            where = origin(f"https://127.0.0.1:{port}")
            with pytest.raises(ServerUnreachable) as untrusted:  # self-signed: refused by default
                await run_for(where, "/d", 5.0, [0])
            trusting = ssl.create_default_context(cafile=str(cert))
            counters = [0]
            await run_for(dataclasses.replace(where, ssl=trusting), "/d", 0.5, counters)
            return counters, len(accepted), str(untrusted.value)

    counters, connections, message = run(main(), loop)
    assert counters[0] >= size and counters[0] % size == 0
    assert connections == 1  # kept alive for every request (the refused handshake never got this far)
    assert "CERTIFICATE_VERIFY_FAILED" in message
