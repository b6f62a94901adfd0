"""Measurement endpoints: download (server sends), upload (server counts), latency (echo).

Query parameters are validated before any byte moves or any WebSocket upgrade. The server
counts what it sends and receives per test and stream; its upload count is the truth.
"""

from __future__ import annotations

import asyncio
import os
import time

from aiohttp import WSMsgType, hdrs, web

from ispeed.core import tcpinfo
from ispeed.server import upload_fast
from ispeed.server.errors import json_error
from ispeed.server.keys import CONFIG, METRICS, PAYLOAD, REGISTRY
from ispeed.server.registry import TestState
from ispeed.server.tokens import verify

CHUNK_BYTES = 1 << 20          # large writes: ~3x the throughput of 64 KiB ones (DESIGN.md)
FAIR_SHARE_BYTES = 8 << 20     # a download stream lets the others run after this many bytes
PAYLOAD_BYTES = 16 << 20       # pre-generated random (incompressible) buffer
_DISCONNECTS = (ConnectionResetError, ConnectionError, asyncio.CancelledError)


def make_payload() -> memoryview:
    """Random bytes, plus one chunk repeated at the end so any slice [o, o+CHUNK) is in range."""
    data = os.urandom(PAYLOAD_BYTES)
    return memoryview(data + data[:CHUNK_BYTES])


def _int_param(request: web.Request, name: str, low: int, high: int, default: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise json_error(400, f"query parameter {name} is required", name)
        return default
    try:
        value = int(raw)
    except ValueError:
        raise json_error(400, f"{name} must be an integer, got {raw[:40]!r}", name) from None
    if not low <= value <= high:
        raise json_error(400, f"{name} must be between {low} and {high}, got {value}", name)
    return value


def test_state(request: web.Request) -> tuple[TestState, int]:
    """The test this request belongs to (from its token) and its stream number."""
    cfg = request.app[CONFIG]
    claims = verify(cfg.secret, request.query.get("token", ""), cfg.server_id)
    state = request.app[REGISTRY].get(claims.test_id)
    if state is None:
        raise json_error(410, "this test is no longer known to the server: start a new test", "token")
    stream = _int_param(request, "stream", 0, claims.streams - 1, default=0)
    if state.submitted:
        raise json_error(409, "this test's result was already submitted: start a new test", "token")
    return state, stream


async def download(request: web.Request) -> web.StreamResponse:
    cfg = request.app[CONFIG]
    state, stream = test_state(request)
    size = _int_param(request, "bytes", 1, cfg.max_request_bytes)
    if state.total_bytes + size > cfg.max_bytes_per_test:
        size = max(1, cfg.max_bytes_per_test - state.total_bytes)
    payload = request.app[PAYLOAD]
    metrics = request.app[METRICS]
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream", "Cache-Control": "no-store"})
    resp.content_length = size
    sock = request.transport.get_extra_info("socket") if request.transport else None
    deadline = state.deadline
    clock = time.monotonic
    state.active_streams += 1
    transport = request.transport
    if transport:
        state.transports.add(transport)
    sent = 0
    offset = 0
    info = None
    next_info = 0.0
    try:
        await resp.prepare(request)
        while sent < size:
            n = min(CHUNK_BYTES, size - sent)
            await resp.write(payload[offset:offset + n])
            sent += n
            if sent % FAIR_SHARE_BYTES < n:
                # a write into a socket buffer with room never suspends: against a client that
                # reads as fast as loopback allows, one stream would hold the event loop and
                # starve the others (64 loopback clients: 20 moved no byte in 5 s)
                await asyncio.sleep(0)
            offset = (offset + n) % PAYLOAD_BYTES
            now = clock()
            if now >= next_info:
                info = tcpinfo.read(sock) or info
                next_info = now + tcpinfo.READ_INTERVAL_S
                if now > deadline:
                    metrics.inc("streams_cut_total")
                    if request.transport:
                        request.transport.close()
                    break
    except _DISCONNECTS:
        pass  # the client ends download streams by closing them: that is the normal end
    finally:
        state.active_streams -= 1
        state.transports.discard(transport)
        state.bytes_down[stream] = state.bytes_down.get(stream, 0) + sent
        metrics.inc("bytes_sent_total", sent)
        info = tcpinfo.read(sock) or info
        if info:
            state.tcp.append(info)
    return resp


class _UpCount:
    """One upload stream's count, whichever way its body is read: timeline, TCP_INFO, cut."""

    def __init__(self, request: web.Request, state: TestState, stream: int) -> None:
        self.state = state
        self.stream = stream
        self.max_bytes = request.app[CONFIG].max_bytes_per_test
        self.metrics = request.app[METRICS]
        self.transport = request.transport
        self.sock = self.transport.get_extra_info("socket") if self.transport else None
        state.up_sockets.watch(self.sock)   # receive holes, for the upload window's edges
        self.deadline = state.deadline
        self.received = 0
        self.cut = False
        self.info: tcpinfo.TcpInfo | None = None
        self.next_info = 0.0

    def add(self, n: int) -> None:
        self.received += n
        now = time.monotonic()
        self.state.add_up(self.stream, n, now)
        if now >= self.next_info:   # total_bytes sums dicts: checked with TCP_INFO, not per read
            self.info = tcpinfo.read(self.sock) or self.info
            self.next_info = now + tcpinfo.READ_INTERVAL_S
            if not self.cut and (self.state.total_bytes > self.max_bytes or now > self.deadline):
                self.cut = True
                self.metrics.inc("streams_cut_total")
                if self.transport:
                    self.transport.close()


async def upload(request: web.Request) -> web.StreamResponse:
    cfg = request.app[CONFIG]
    state, stream = test_state(request)
    if request.content_length is not None and request.content_length > cfg.max_request_bytes:
        raise json_error(413, f"upload body over {cfg.max_request_bytes} bytes", "Content-Length")
    if request.headers.get(hdrs.CONTENT_ENCODING, "identity").lower() != "identity":
        # aiohttp would count the body after decompression: a gzip bomb would inflate the truth
        raise json_error(415, "upload bodies must not be compressed: the server counts the bytes "
                              "as they arrive; send them without Content-Encoding", "Content-Encoding")
    count = _UpCount(request, state, stream)
    state.active_streams += 1
    transport = request.transport
    if transport:
        state.transports.add(transport)
    taken_over = upload_fast.eligible(request)
    try:
        if taken_over:
            # a body of known length: counted straight off the socket (0.41 -> 0.18 CPU s/GB)
            taken_over = await upload_fast.read_body(request, count.add)
        else:
            # iter_chunks hands over each buffered chunk as it is; iter_any would join them into a
            # new bytes object first (one more copy of every byte: ~20 % of this path's CPU)
            async for chunk, _ in request.content.iter_chunks():
                count.add(len(chunk))
                if count.cut:
                    break
    except _DISCONNECTS:
        pass  # the client ends upload streams by closing them mid-body
    except Exception:  # aiohttp payload errors on an aborted body  # noqa: BLE001
        pass
    finally:
        state.active_streams -= 1
        state.transports.discard(transport)
        count.metrics.inc("bytes_received_total", count.received)
        state.up_sockets.unwatch(count.sock)
        info = tcpinfo.read(count.sock) or count.info
        if info:
            state.tcp.append(info)
    resp = web.json_response({"bytes": count.received})
    if taken_over:
        resp.force_close()   # aiohttp's parser still expects the body: this connection cannot go on
    return resp


async def latency(request: web.Request) -> web.StreamResponse:
    """WebSocket echo: the client times each round trip; the server counts probes."""
    state, _ = test_state(request)
    ws = web.WebSocketResponse(max_msg_size=4096, heartbeat=None, autoping=True)
    await ws.prepare(request)
    deadline = state.deadline
    transport = request.transport
    if transport:
        state.transports.add(transport)
    try:
        await _echo(ws, state, deadline)
    finally:
        state.transports.discard(transport)
    return ws


async def _echo(ws: web.WebSocketResponse, state: TestState, deadline: float) -> None:
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            state.latency_probes += 1
            await ws.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await ws.close(code=1003, message=b"binary messages are not expected here")
            break
        if time.monotonic() > deadline:
            await ws.close(code=1000, message=b"test time is over")
            break
