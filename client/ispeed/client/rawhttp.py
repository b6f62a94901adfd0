"""Download streams over plain HTTP/1.1 connections that count body bytes without keeping them.

Why not aiohttp here: its client parser and StreamReader copy every received byte into new
bytes objects and wake the reading task for each chunk; on fast paths (loopback, 10 Gbit/s and
up) that client CPU, not the network, capped the download phase (~0.45 s of CPU per GB on
loopback: one core at 16-18 Gbit/s). Here the kernel copies each read into one preallocated
buffer shared by all streams (`asyncio.BufferedProtocol`), the protocol adds the byte count to
the stream's counter and drops the bytes, and the stream's task wakes only when a whole
response has arrived (~0.15-0.2 s/GB; iperf3's C receiver ~0.16).

One connection per stream, kept alive between requests; GET only, identity encoding. A
response this module does not count by itself (Transfer-Encoding, e.g. chunked) raises
`Unsupported` before any of its body is counted, so the caller can use a full HTTP client.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

from ispeed.core.errors import MeasurementError, ServerUnreachable
from ispeed.core.tcpinfo import OooCounter

READ_BUFFER_BYTES = 1 << 20  # one recv_into per readiness event; 256 KiB cost ~40 % more CPU
# per GB when the client is starved (more reads), 2-4 MiB no better
MAX_HEAD_BYTES = 64 << 10  # status line and headers
MAX_ERROR_BODY_BYTES = 64 << 10  # kept of a non-200 answer, for the error message
HAPPY_EYEBALLS_DELAY_S = 0.25  # as aiohttp: try the next address of a host name after this


def read_buffer() -> memoryview:
    """A buffer the streams of one event loop can share: each read is counted (or, in a
    response head, copied out) before the loop makes the next read into it."""
    return memoryview(bytearray(READ_BUFFER_BYTES))


class Unsupported(Exception):
    """The server answered in a form counted only by a full HTTP client (e.g. chunked)."""


class _Stale(Exception):
    """A kept-alive connection was closed by the server before any byte of the next answer."""


@dataclass(frozen=True)
class Origin:
    """Where to connect and what to send as Host, from a base URL like http://host:port/prefix."""

    host: str  # name or address as given (IPv6 without brackets)
    port: int
    ssl: ssl.SSLContext | None
    host_header: str
    path_prefix: str  # the base URL's path without a trailing slash
    address: str = ""  # the address to connect to, when the test pinned one (client/family.py)

    @classmethod
    def from_url(cls, base_url: str) -> Origin | None:
        """The origin of an http(s) base URL; None for URLs this module leaves to aiohttp
        (credentials, query or fragment in the base URL)."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        if parts.username is not None or parts.query or parts.fragment:
            return None
        host = parts.hostname
        default_port = 443 if parts.scheme == "https" else 80
        port = parts.port or default_port
        shown = f"[{host}]" if ":" in host else host
        host_header = shown if port == default_port else f"{shown}:{port}"
        return cls(
            host=host,
            port=port,
            ssl=_client_ssl_context() if parts.scheme == "https" else None,
            host_header=host_header,
            path_prefix=parts.path.rstrip("/"),
        )


def _client_ssl_context() -> ssl.SSLContext:
    """Certificate and host name checks as aiohttp does them by default; HTTP/1.1 only."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


class _Response:
    """What the head of one response said, and how its body ends."""

    def __init__(self, status: int, length: int | None, keep_alive: bool) -> None:
        self.status = status
        self.length = length  # None: the body ends when the server closes
        self.keep_alive = keep_alive
        self.received = 0
        self.error_body = bytearray()  # non-200 answers only


class _CountingProtocol(asyncio.BufferedProtocol):
    """One connection; adds the body bytes of 200 answers to counters[index] as they arrive."""

    def __init__(self, counters: list[int], index: int, what: str, buffer: memoryview) -> None:
        self._counters = counters
        self._index = index
        self._what = what
        self._buffer = buffer
        self._left = 0  # > 0 only while counting a 200 body of known length
        self._head: bytearray | None = None  # set while reading a response head
        self._response: _Response | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None
        self.reusable = False
        self.lost = False
        self.answers = 0  # complete responses on this connection

    # -- asyncio protocol callbacks ---------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio.Transport but have its methods
        self.transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        left = self._left
        if nbytes < left:  # the hot path: a read in the middle of a counted body
            self._left = left - nbytes
            self._counters[self._index] += nbytes
            return
        self._data(self._buffer[:nbytes])

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._catch_up()
        self.lost = True
        self.reusable = False
        self._left = 0
        response = self._response
        if self._waiter is None or self._waiter.done():
            return
        if response is not None and response.length is None:  # a body delimited by the close
            self._finish()
            return
        if response is None and not self._head and self.answers:
            self._fail(_Stale())  # the usual keep-alive race: the caller asks again, once
            return
        if response is None:
            where = "before the end of the response head"
        else:
            where = f"after {response.received} of {response.length} body bytes"
        reason = f" ({exc.__class__.__name__}: {exc})" if exc else ""
        self._fail(MeasurementError(f"{self._what}: the server closed the connection {where}{reason}"))

    # -- one request ----------------------------------------------------------------------------
    async def get(self, target: str, host_header: str) -> None:
        """Send GET `target`; return once its whole body was counted (200) or raise."""
        assert self.transport is not None
        if self.lost:  # closed since the last answer (kept alive) or right after connecting
            raise (
                _Stale()
                if self.answers
                else MeasurementError(f"{self._what}: the server closed the connection before the request")
            )
        self.reusable = False
        self._head = bytearray()
        self._response = None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(
            f"GET {target} HTTP/1.1\r\nHost: {host_header}\r\nConnection: keep-alive\r\n"
            "Accept-Encoding: identity\r\nUser-Agent: ispeed\r\n\r\n".encode("latin-1")
        )
        await self._waiter

    def _catch_up(self) -> None:
        """The hot path counts down `_left` only: bring `received` up to date."""
        if self._left > 0 and self._response is not None and self._response.length is not None:
            self._response.received = self._response.length - self._left

    def _data(self, data: memoryview) -> None:
        """Everything but the hot path: response heads, body ends, error bodies, stray bytes."""
        self._catch_up()
        if self._waiter is None or self._waiter.done():
            if len(data) and self.transport is not None:  # bytes nobody asked for: drop the link
                self.reusable = False
                self.transport.abort()
            return
        if self._head is not None:
            self._head += data
            data = self._read_head()
            if self._head is not None or self._waiter.done():
                return
        response = self._response
        assert response is not None
        n = len(data)
        extra = 0 if response.length is None else max(0, response.received + n - response.length)
        n -= extra
        response.received += n
        if response.status == 200:
            self._counters[self._index] += n
        elif len(response.error_body) < MAX_ERROR_BODY_BYTES:
            response.error_body += data[: min(n, MAX_ERROR_BODY_BYTES - len(response.error_body))]
        if extra:
            self._fail(
                MeasurementError(
                    f"{self._what}: the server sent {extra} bytes past the {response.length}-byte body it announced"
                )
            )
        elif response.length is not None:
            self._left = response.length - response.received if response.status == 200 else 0
            if response.received == response.length:
                self._finish()

    def _read_head(self) -> memoryview:
        """Parse the head once it is complete; the body bytes that came with it (maybe none)."""
        assert self._head is not None
        while True:
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                if len(self._head) > MAX_HEAD_BYTES:
                    self._fail(MeasurementError(f"{self._what}: response head over {MAX_HEAD_BYTES} bytes"))
                return memoryview(b"")
            lines = bytes(self._head[:end]).decode("latin-1").split("\r\n")
            rest = self._head[end + 4 :]
            try:
                response = _parse_head(lines)
            except Unsupported as exc:
                self._fail(exc)
                return memoryview(b"")
            except ValueError as exc:
                self._fail(MeasurementError(f"{self._what}: not an HTTP/1.1 answer ({exc})"))
                return memoryview(b"")
            if 100 <= response.status < 200:  # an interim answer (e.g. 100 Continue): skip it
                self._head = rest
                continue
            self._head = None
            self._response = response
            if response.length == 0:
                self._finish()
            return memoryview(rest)

    def _finish(self) -> None:
        response, waiter = self._response, self._waiter
        assert response is not None and waiter is not None
        self._left = 0
        if response.status != 200:
            text = response.error_body.decode("utf-8", "replace")
            self._fail(MeasurementError(f"{self._what}: HTTP {response.status} {text}"))
            return
        self.answers += 1
        self.reusable = response.keep_alive and response.length is not None and not self.lost
        waiter.set_result(None)

    def _fail(self, exc: Exception) -> None:
        self._left = 0
        self._head = None
        self.reusable = False
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)


def _parse_head(lines: list[str]) -> _Response:
    version, _, rest = lines[0].partition(" ")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise ValueError(f"status line {lines[0][:80]!r}")
    status = int(rest[:3])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"header line {line[:80]!r}")
        name, value = name.strip().lower(), value.strip()
        if name == "content-length" and headers.get(name, value) != value:
            raise ValueError("two different Content-Length headers")
        headers[name] = f"{headers[name]}, {value}" if name in headers and name != "content-length" else value
    if "transfer-encoding" in headers:
        raise Unsupported(f"Transfer-Encoding: {headers['transfer-encoding']}")
    raw_length = headers.get("content-length")
    length = int(raw_length) if raw_length is not None else None
    if length is not None and length < 0:
        raise ValueError(f"Content-Length {raw_length}")
    if status in (204, 304):
        length = 0
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep_alive = "close" not in tokens if version == "HTTP/1.1" else "keep-alive" in tokens
    return _Response(status, length, keep_alive)


async def count_downloads(
    origin: Origin,
    target: str,
    counters: list[int],
    index: int,
    stop_at: float,
    connect_timeout_s: float,
    what: str,
    buffer: memoryview | None = None,
    ooo: OooCounter | None = None,
) -> None:
    """GET `target` again and again until the loop's clock passes `stop_at` (or the task is
    cancelled), adding body bytes to counters[index]; one kept-alive connection at a time.
    `buffer` (from `read_buffer()`) may be shared by the streams of one event loop; `ooo`, when
    given, watches each connection's out-of-order arrivals (method v1's window edges).

    Raises MeasurementError for error answers and broken connections, ServerUnreachable when
    no connection can be made, Unsupported for answers to leave to a full HTTP client."""
    loop = asyncio.get_running_loop()
    buffer = buffer if buffer is not None else read_buffer()
    protocol: _CountingProtocol | None = None
    sock: socket.socket | None = None
    try:
        while loop.time() < stop_at:
            if protocol is None or not protocol.reusable:
                if ooo is not None:
                    ooo.unwatch(sock)
                if protocol is not None and protocol.transport is not None:
                    protocol.transport.abort()
                protocol = await _connect(origin, counters, index, connect_timeout_s, what, buffer)
                if ooo is not None and protocol.transport is not None:
                    sock = protocol.transport.get_extra_info("socket")
                    ooo.watch(sock)
            try:
                await protocol.get(target, origin.host_header)
            except _Stale:
                protocol.reusable = False  # reconnect and ask again; a new connection is never stale
    finally:
        # abort, not close: nothing to flush, and a TLS close would first wait for the peer
        if ooo is not None:
            ooo.unwatch(sock)  # before the abort: its last count is read from the open socket
        if protocol is not None and protocol.transport is not None:
            protocol.transport.abort()


async def _connect(
    origin: Origin, counters: list[int], index: int, timeout_s: float, what: str, buffer: memoryview
) -> _CountingProtocol:
    loop = asyncio.get_running_loop()
    protocol = _CountingProtocol(counters, index, what, buffer)
    hostname = origin.host if origin.ssl else None
    try:
        async with asyncio.timeout(timeout_s):
            if isinstance(loop, asyncio.BaseEventLoop):
                await loop.create_connection(
                    lambda: protocol,
                    origin.address or origin.host,
                    origin.port,
                    ssl=origin.ssl,
                    server_hostname=hostname,
                    happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY_S,
                )
            else:  # uvloop (`ispeed demo` runs the client under it) has no happy eyeballs option
                await loop.create_connection(
                    lambda: protocol,
                    origin.address or origin.host,
                    origin.port,
                    ssl=origin.ssl,
                    server_hostname=hostname,
                )
    except (OSError, TimeoutError) as exc:
        raise ServerUnreachable(
            f"{what}: cannot connect to {origin.host_header} ({exc.__class__.__name__}: {exc})"
        ) from exc
    return protocol
