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
from ispeed.server.keys import CONFIG, LOOP_LAG, METRICS, NDT7_RUNNING, PAYLOAD, REGISTRY
from ispeed.server.loop_lag import LoopLag
from ispeed.server.privacy import ip_network, keyed_hash
from ispeed.server.proxy import client_ip
from ispeed.server.registry import TestState
from ispeed.server.timeline import DownloadTimeline
from ispeed.server.tokens import verify

CHUNK_BYTES = 1 << 20  # large writes: ~3x the throughput of 64 KiB ones (docs/architecture.md)
FAIR_SHARE_BYTES = 8 << 20  # a download stream lets the others run after this many bytes
PAYLOAD_BYTES = 16 << 20  # pre-generated random (incompressible) buffer
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
    """The test this request belongs to (from its token) and its stream number.

    Every request of a test comes from the network that started it (the token carries a keyed
    hash of that /24 or /48): a result is attributed to the network that ran its transfers.
    """
    cfg = request.app[CONFIG]
    claims = verify(cfg.secret, request.query.get("token", ""), cfg.server_id)
    state = request.app[REGISTRY].get(claims.test_id)
    if state is None:
        raise json_error(410, "this test is no longer known to the server: start a new test", "token")
    stream = _int_param(request, "stream", 0, claims.streams - 1, default=0)
    if state.submitted:
        raise json_error(409, "this test's result was already submitted: start a new test", "token")
    if keyed_hash(cfg.secret, "net", ip_network(client_ip(request))) != claims.net_hash:
        request.app[METRICS].inc("streams_refused_network_total")
        raise json_error(
            403,
            "this test was started from another network: run every stream of a test from the network that started it",
            "token",
        )
    return state, stream


def claim_stream(request: web.Request, state: TestState, direction: str, stream: int) -> float:
    """Admit one stream of a phase, or refuse it (409, 429, 503); returns the server's clock.

    A test runs at most its token's number of streams per direction at once (one per stream
    number), new requests of a phase are accepted until the token's duration has passed since
    the phase's first request, and a test that gave its capacity slot back (idle for
    IDLE_RELEASE_S) must find a free one again.
    """
    metrics = request.app[METRICS]
    now = time.monotonic()
    running = state.streams_down if direction == "download" else state.streams_up
    started = (state.down.started if state.down else None) if direction == "download" else state.up_started
    if started is not None and now > started + state.claims.duration_s:
        metrics.inc("streams_refused_phase_over_total")
        raise json_error(
            409,
            f"the {direction} phase of this test is over (it lasts "
            f"{state.claims.duration_s:g} s from its first request): start a new test",
            "token",
        )
    if stream in running:
        metrics.inc("streams_refused_busy_total")
        raise json_error(
            409,
            f"{direction} stream {stream} of this test is already running: a test runs at "
            f"most {state.claims.streams} streams each way, one per stream number",
            "stream",
        )
    if not state.is_open(now):
        capacity_check(request, state.net_key)
    running.add(stream)
    state.last_activity = now
    if not state.transfer_ip:
        state.transfer_ip = client_ip(request)
    return now


def release_stream(state: TestState, direction: str, stream: int) -> None:
    (state.streams_down if direction == "download" else state.streams_up).discard(stream)
    state.last_activity = time.monotonic()


def capacity_check(request: web.Request, network: str) -> None:
    """Refuse (503, 429) when the server, or this client network, runs as many tests as allowed.

    Native tests holding a slot and running ndt7 subtests count alike (`Ndt7Results.running`).
    """
    cfg = request.app[CONFIG]
    metrics = request.app[METRICS]
    registry = request.app[REGISTRY]
    ndt7_running = request.app[NDT7_RUNNING]
    if registry.open_tests() + ndt7_running.total >= cfg.max_running_tests:
        metrics.inc("tests_refused_busy_total")
        raise json_error(
            503, "this server is at its test capacity; retry in a minute or use another server", retry_after_s=30
        )
    if registry.open_for_network(network) + ndt7_running.for_network(network) >= cfg.max_tests_per_network:
        metrics.inc("tests_refused_network_busy_total")
        raise json_error(
            429,
            f"your network already runs {cfg.max_tests_per_network} tests here; retry when one finishes",
            retry_after_s=10,
        )


async def download(request: web.Request) -> web.StreamResponse:
    cfg = request.app[CONFIG]
    state, stream = test_state(request)
    size = _int_param(request, "bytes", 1, cfg.max_request_bytes)
    now = claim_stream(request, state, "download", stream)
    if state.bytes_moved + size > cfg.max_bytes_per_test:
        size = max(1, cfg.max_bytes_per_test - state.bytes_moved)
    payload = request.app[PAYLOAD]
    metrics = request.app[METRICS]
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream", "Cache-Control": "no-store"})
    resp.content_length = size
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport else None
    if state.down is None:
        state.down = DownloadTimeline(now, state.claims.duration_s)
    timeline = state.down
    timeline.watch(transport, sock)
    phase_end = state.phase_end("download") or state.deadline
    max_bytes = cfg.max_bytes_per_test
    clock = time.monotonic
    state.active_streams += 1
    if transport:
        state.transports.add(transport)
    sent = 0
    offset = 0
    info = None
    next_info = 0.0
    disconnected = False
    try:
        await resp.prepare(request)
        while sent < size:
            n = min(CHUNK_BYTES, size - sent)
            await resp.write(payload[offset : offset + n])
            sent += n
            state.bytes_moved += n
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
                if info:  # the loaded connection's smoothed RTT: the server's view of working latency
                    state.rpm.add_loaded("download", info.rtt_us / 1000)
            if now > phase_end or state.bytes_moved > max_bytes:  # the phase is over, or the cap is hit
                metrics.inc("streams_cut_total")
                if transport:
                    transport.close()
                break
    except _DISCONNECTS:
        disconnected = True  # the client ends download streams by closing them: that is the normal end
    finally:
        if disconnected:
            timeline.closed(transport, clock())
        else:
            timeline.done(transport)
        release_stream(state, "download", stream)
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
        state.up_sockets.watch(self.sock)  # receive holes, for the upload window's edges
        self.deadline = state.phase_end("upload") or state.deadline
        self.received = 0
        self.cut = False
        self.info: tcpinfo.TcpInfo | None = None
        self.next_info = 0.0

    def add(self, n: int) -> None:
        self.received += n
        now = time.monotonic()
        self.state.add_up(self.stream, n, now)
        if not self.cut and (self.state.bytes_moved > self.max_bytes or now > self.deadline):
            self._cut()
        if now >= self.next_info:
            self.info = tcpinfo.read(self.sock) or self.info
            self.next_info = now + tcpinfo.READ_INTERVAL_S
            if self.info:  # the receiver's RTT estimate: the server's view of the upload's working latency
                self.state.rpm.add_loaded("upload", self.info.rcv_rtt_us / 1000)

    def _cut(self) -> None:
        """The phase is over or the test's byte cap is reached: close this stream."""
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
        raise json_error(
            415,
            "upload bodies must not be compressed: the server counts the bytes "
            "as they arrive; send them without Content-Encoding",
            "Content-Encoding",
        )
    now = claim_stream(request, state, "upload", stream)
    if state.up_started is None:
        state.up_started = now
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
        release_stream(state, "upload", stream)
        state.active_streams -= 1
        state.transports.discard(transport)
        count.metrics.inc("bytes_received_total", count.received)
        state.up_sockets.unwatch(count.sock)
        info = tcpinfo.read(count.sock) or count.info
        if info:
            state.tcp.append(info)
    resp = web.json_response({"bytes": count.received})
    if taken_over:
        resp.force_close()  # aiohttp's parser still expects the body: this connection cannot go on
    return resp


async def latency(request: web.Request) -> web.StreamResponse:
    """WebSocket echo: the client times each round trip; the server counts probes and what each
    waited here (the serving loop's lateness plus receive-to-answer; probe_runtime.py)."""
    state, _ = test_state(request)
    ws = web.WebSocketResponse(max_msg_size=4096, heartbeat=None, autoping=True)
    await ws.prepare(request)
    await _echo(ws, state, state.deadline, request.app[LOOP_LAG])
    return ws


async def _echo(ws: web.WebSocketResponse, state: TestState, deadline: float, lag: LoopLag) -> None:
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:  # an idle socket too: the probe loop has no sweeper
            await ws.close(code=1000, message=b"test time is over")
            return
        try:
            msg = await ws.receive(timeout=remaining)
        except TimeoutError:
            continue
        received = time.monotonic()
        if msg.type == WSMsgType.TEXT:
            state.latency_probes += 1
            await ws.send_str(msg.data)
            state.probe_delays_ms.append(lag.now_ms() + (time.monotonic() - received) * 1000)
        elif msg.type == WSMsgType.BINARY:
            await ws.close(code=1003, message=b"binary messages are not expected here")
            return
        elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            return
