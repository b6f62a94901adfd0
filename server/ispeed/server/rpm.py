"""GET /api/v1/rpm: the responsiveness test's foreign probe (spec/method-v2.md, Responsiveness).

The client opens a new TCP connection for each probe, asks for this one-byte object and times
the handshake and the request; the answer closes the connection. The request is checked like
every request of a test (a valid token, the test still open, the network that started it),
refused on a connection that carried anything before (its round trip would not be this
probe's handshake), and bounded per test. The server keeps the handshake round trip its kernel
measured and the time the request waited here (`rpm_evidence`; on the probe thread its own
clock from the request's first bytes, else the kernel's `tcpi_last_data_recv`).
"""

from __future__ import annotations

import time

from aiohttp import web

from ispeed.core import tcpinfo
from ispeed.server.errors import json_error
from ispeed.server.keys import METRICS
from ispeed.server.measure import test_state
from ispeed.server.probe_runtime import PROBE_RUNTIME, RPM_PATH
from ispeed.server.proxy import from_trusted_proxy
from ispeed.server.registry import PHASE_GRACE_S, TestState
from ispeed.server.rpm_evidence import MAX_PROBES_PER_TEST

PATH = RPM_PATH
BODY = b"1"  # the draft's small object: one byte


def phase_at(state: TestState, now: float) -> str:
    """The phase a probe arriving at `now` (monotonic) belongs to, by this server's clock:
    idle before the first download request, download or upload while that phase runs (its
    duration plus the grace its streams get), `between` / `after` otherwise."""
    duration_s = state.claims.duration_s
    if state.up_started is not None and now >= state.up_started:
        return "upload" if now <= state.up_started + duration_s + PHASE_GRACE_S else "after"
    if state.down is not None and now >= state.down.started:
        return "download" if now <= state.down.started + duration_s + PHASE_GRACE_S else "between"
    return "idle"


async def probe(request: web.Request) -> web.StreamResponse:
    state, _ = test_state(request)  # 403 / 409 / 410 before anything else
    metrics = request.app[METRICS]
    if state.rpm.probes >= MAX_PROBES_PER_TEST:
        metrics.inc("rpm_probes_refused_total")
        raise json_error(
            429, f"this test already sent {MAX_PROBES_PER_TEST} responsiveness probes: start a new test", "token"
        )
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport else None
    info = tcpinfo.read_fields(sock)
    if info is not None and info["BytesSent"] > 0:
        metrics.inc("rpm_probes_refused_total")
        raise json_error(
            400,
            "a responsiveness probe needs a new connection: this one carried an answer before "
            "(its round trip would not be this probe's handshake)",
            "Connection",
        )
    now = time.monotonic()
    phase = phase_at(state, now)
    proxied = from_trusted_proxy(request)  # then the connection is the proxy's: its handshake is not the client's
    handshake_ms = info["RTT"] / 1000 if info is not None and info["RTT"] and not proxied else None
    state.rpm.add_probe(phase, handshake_ms, proxied)
    runtime = request.app.get(PROBE_RUNTIME)
    waited = runtime.waited_ms(sock.fileno()) if runtime is not None and sock is not None else None
    if waited is not None:  # on the probe loop: since its first bytes showed, lateness included
        state.probe_delays_ms.append(waited)
    elif info is not None and not proxied:
        state.probe_delays_ms.append(float(info["LastDataRecv"]))  # the kernel's count, in its ticks
    metrics.inc("rpm_probes_total")
    resp = web.Response(body=BODY, content_type="application/octet-stream", headers={"Cache-Control": "no-store"})
    resp.force_close()  # Connection: close, one probe per connection
    return resp
