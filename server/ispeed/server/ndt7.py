"""ndt7 compatibility: `/ndt/v7/download`, `/ndt/v7/upload` and a locate-style server list.

Any ndt7 client (M-Lab's web test, `@m-lab/ndt7`, ndt7-client-go, apps embedding them) can
test against this server unchanged. The protocol is M-Lab's ndt7 specification; constants and
messages are in `ndt7_messages`, pairing and storing in `ndt7_results`.

- Validated before the upgrade (400): a WebSocket upgrade, the `net.measurementlab.ndt.v7`
  subprotocol, a query string of at most 4 KiB, `early_exit` (download) only `250`.
- The test clock starts when the handshake completes; the server ends each subtest after 10 s
  with a Close frame (1000), or earlier on the download once `early_exit` bytes were sent.
- Download: random bytes from the shared pre-generated payload, messages scaled from 2^13 to
  2^20 bytes. Upload: binary messages up to 2^24 bytes are accepted and counted.
- Both subtests send measurement messages (AppInfo, ConnectionInfo once, TCPInfo from the
  kernel, BBRInfo under BBR) at random intervals averaging 250 ms, and one last on close.
- No compression (`permessage-deflate` is refused), or zero-filled uploads would inflate.
- EOF, resets and timeouts end a subtest early; its result is still recorded.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
import socket
import time
import uuid
from urllib.parse import urlencode

from aiohttp import WSMsgType, web

from ispeed.server import ndt7_messages as m
from ispeed.server.errors import json_error
from ispeed.server.keys import CONFIG, METRICS, PAYLOAD, TEST_RATE
from ispeed.server.measure import PAYLOAD_BYTES, capacity_check
from ispeed.server.ndt7_results import NDT7_RESULTS, Ndt7Results, Subtest
from ispeed.server.privacy import ip_network
from ispeed.server.proxy import client_ip

log = logging.getLogger("ispeed.server.ndt7")

LOCATE_PATH = "/v2/nearest/ndt/ndt7"  # same path as M-Lab's locate service
_CLOSE_WAIT_S = m.HARD_LIMIT_S - m.SUBTEST_S
_DISCONNECTS = (ConnectionError, asyncio.TimeoutError, RuntimeError)


def _refuse(request: web.Request, reason: str, status: int = 400, **extra: object) -> web.HTTPException:
    request.app[METRICS].inc("ndt7_refused_total")
    return json_error(status, reason, "ndt7", **extra)


async def _open(request: web.Request, kind: str) -> tuple[web.WebSocketResponse, Subtest, socket.socket | None]:
    """Validate the request, upgrade it, and start the subtest's clock."""
    results = request.app[NDT7_RESULTS]
    ws = web.WebSocketResponse(
        protocols=(m.SUBPROTOCOL,),
        compress=False,
        autoping=True,
        heartbeat=None,
        max_msg_size=m.MAX_RECEIVED_MESSAGE_BYTES,
        timeout=_CLOSE_WAIT_S,
    )
    ready = ws.can_prepare(request)
    if not ready.ok:
        raise _refuse(request, f"{request.path} is a WebSocket endpoint: send an upgrade request")
    if ready.protocol != m.SUBPROTOCOL:
        raise _refuse(request, f"the Sec-WebSocket-Protocol header must offer {m.SUBPROTOCOL}")
    try:
        metadata, early_exit = m.parse_query(request.query_string, request.query, kind)
    except m.QueryError as exc:
        raise _refuse(request, str(exc)) from exc
    network = ip_network(client_ip(request))
    wait_s = request.app[TEST_RATE].check(network)  # the native API's limits, per client network
    if wait_s:
        request.app[METRICS].inc("ndt7_refused_rate_total")
        raise _refuse(
            request, f"too many tests from your network; retry in {wait_s:.0f} s", 429, retry_after_s=round(wait_s, 1)
        )
    try:
        capacity_check(request, network)
    except web.HTTPException:
        request.app[METRICS].inc("ndt7_refused_total")
        raise
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport else None
    peer = transport.get_extra_info("peername") if transport else None
    local = transport.get_extra_info("sockname") if transport else None
    await ws.prepare(request)
    sub = Subtest(
        uuid=str(uuid.uuid4()),
        kind=kind,
        ip=client_ip(request),
        network=network,
        metadata=metadata,
        started_at=dt.datetime.now(dt.UTC),
        started=time.monotonic(),
        early_exit_bytes=early_exit,
        client_addr=m.addr(peer),
        server_addr=m.addr(local),
    )
    results.begin(sub)
    request.app[METRICS].inc(f"ndt7_{kind}_total")
    return ws, sub, sock


async def _send_measurement(
    ws: web.WebSocketResponse, sub: Subtest, sock: socket.socket | None, with_conn: bool = False
) -> None:
    elapsed_us = int((time.monotonic() - sub.started) * 1e6)
    tcp = m.read_tcp_info(sock, elapsed_us)
    sub.observe(elapsed_us, tcp)
    conn = m.connection_info(sub.client_addr, sub.server_addr, sub.uuid, sub.started_at) if with_conn else None
    msg = m.measurement(sub.kind, elapsed_us, sub.app_bytes, tcp, m.read_bbr_info(sock, elapsed_us), conn)
    await ws.send_str(json.dumps(msg, separators=(",", ":")))


async def _read_client(ws: web.WebSocketResponse, sub: Subtest) -> None:
    """Download side: client text messages are measurements (ignored); binary is a violation."""
    async for msg in ws:
        if msg.type == WSMsgType.BINARY:
            sub.error = "client sent a binary message during the download"
            await ws.close(code=1003, message=b"binary messages are not expected from the client")
            return
        if msg.type == WSMsgType.TEXT:
            sub.client_messages += 1


async def download(request: web.Request) -> web.WebSocketResponse:
    ws, sub, sock = await _open(request, "download")
    payload = request.app[PAYLOAD]
    rng = random.Random()
    reader = asyncio.create_task(_read_client(ws, sub))
    size, offset = m.INITIAL_MESSAGE_BYTES, 0
    clock = time.monotonic
    end = sub.started + m.SUBTEST_S
    try:
        await _send_measurement(ws, sub, sock, with_conn=True)
        next_measurement = clock() + m.next_measurement_delay(rng)
        while not ws.closed and not reader.done():
            now = clock()
            if now >= end:
                break
            if sub.early_exit_bytes is not None and sub.app_bytes >= sub.early_exit_bytes:
                sub.early_exit = True
                break
            if now >= next_measurement:
                await _send_measurement(ws, sub, sock)
                next_measurement = now + m.next_measurement_delay(rng)
            await ws.send_bytes(payload[offset : offset + size])  # type: ignore[arg-type]  # memoryview: no copy
            sub.app_bytes += size
            offset = (offset + size) % PAYLOAD_BYTES
            size = m.next_message_size(size, sub.app_bytes)
        await _close_subtest(ws, sub, sock)
    except _DISCONNECTS as exc:
        sub.error = sub.error or f"{exc.__class__.__name__}: {exc}"
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        _record_end(request, sub, sock, "bytes_sent_total")
    return ws


async def _measure_periodically(ws: web.WebSocketResponse, sub: Subtest, sock: socket.socket | None) -> None:
    rng = random.Random()
    await _send_measurement(ws, sub, sock, with_conn=True)
    while not ws.closed:
        await asyncio.sleep(m.next_measurement_delay(rng))
        if not ws.closed:
            await _send_measurement(ws, sub, sock)


async def upload(request: web.Request) -> web.WebSocketResponse:
    ws, sub, sock = await _open(request, "upload")
    request.app[NDT7_RESULTS].claim_download(sub)
    sender = asyncio.create_task(_measure_periodically(ws, sub, sock))
    end = sub.started + m.SUBTEST_S
    try:
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0 or sender.done():
                break
            try:
                msg = await ws.receive(timeout=remaining)
            except TimeoutError:
                break
            if msg.type == WSMsgType.BINARY:
                sub.app_bytes += len(msg.data)
            elif msg.type == WSMsgType.TEXT:
                sub.client_messages += 1
            else:  # CLOSE / CLOSING / CLOSED / ERROR: the client ended the subtest
                if msg.type == WSMsgType.ERROR:
                    sub.error = f"{msg.data}"
                break
        sender.cancel()  # no periodic message may race the final one
        await asyncio.gather(sender, return_exceptions=True)
        await _close_subtest(ws, sub, sock)
    except _DISCONNECTS as exc:
        sub.error = sub.error or f"{exc.__class__.__name__}: {exc}"
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        _record_end(request, sub, sock, "bytes_received_total")
    return ws


async def _close_subtest(ws: web.WebSocketResponse, sub: Subtest, sock: socket.socket | None) -> None:
    """Spec: a last measurement (the summary: counters only grow), then a normal close (1000)."""
    if not ws.closed:
        await _send_measurement(ws, sub, sock)
        await ws.close(code=1000)


def _record_end(request: web.Request, sub: Subtest, sock: socket.socket | None, metric: str) -> None:
    """Final kernel counters of the subtest, the byte metric, and hand it to pairing/storage."""
    elapsed_us = int((time.monotonic() - sub.started) * 1e6)
    sub.observe(elapsed_us, m.read_tcp_info(sock, elapsed_us))
    request.app[METRICS].inc(metric, sub.app_bytes)
    request.app[NDT7_RESULTS].finish(sub)


async def locate(request: web.Request) -> web.Response:
    """This platform's servers in the shape of M-Lab's locate v2 answer (`results[].urls`).

    Client metadata in the query (minus `server_*` keys) is carried into the returned URLs, so
    clients that discover servers here keep their `client_name` in the stored result.
    """
    cfg = request.app[CONFIG]
    try:
        metadata, _ = m.parse_query(request.query_string, request.query, "locate")
    except m.QueryError as exc:
        raise _refuse(request, str(exc)) from exc
    query = ("?" + urlencode(metadata)) if metadata else ""
    hosts = [(cfg.server_id, request.host)]
    for i, peer in enumerate(cfg.peers):
        host = peer.split("://", 1)[-1].rstrip("/")
        hosts.append((f"peer-{i + 1}", host))
    results = []
    for machine, host in hosts:
        urls = {
            f"{scheme}:///ndt/v7/{kind}": f"{scheme}://{host}/ndt/v7/{kind}{query}"
            for scheme in ("ws", "wss")
            for kind in ("download", "upload")
        }
        results.append(
            {
                "machine": machine,
                "hostname": host.rsplit(":", 1)[0].strip("[]"),
                "location": {"country": "VN", "province_code": cfg.province_code if machine == cfg.server_id else ""},
                "urls": urls,
            }
        )
    return web.json_response({"results": results})


def add_routes(app: web.Application) -> None:
    """Register the ndt7 endpoints and the pairing/storing of their results."""
    results = Ndt7Results(app)
    app[NDT7_RESULTS] = results

    async def flush(app: web.Application) -> None:
        await results.flush()

    app.on_shutdown.append(flush)
    app.router.add_get(m.DOWNLOAD_PATH, download)
    app.router.add_get(m.UPLOAD_PATH, upload)
    app.router.add_get(LOCATE_PATH, locate)
