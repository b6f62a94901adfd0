"""Test lifecycle: POST /api/v1/tests issues a signed token; GET shows the server's counters."""

from __future__ import annotations

from aiohttp import web

from ispeed.core.fields import Field
from ispeed.core.method import METHOD_VERSION
from ispeed.core.udp_probe import encode_key
from ispeed.server import receipts
from ispeed.server.errors import json_error
from ispeed.server.keys import CONFIG, METRICS, REGISTRY, STATUS, TEST_RATE, UDP
from ispeed.server.measure import capacity_check
from ispeed.server.privacy import ip_network, keyed_hash
from ispeed.server.proxy import client_ip
from ispeed.server.tokens import issue, verify
from ispeed.server.udp_counts import UdpTest, udp_key
from ispeed.server.validate import check, read_json

START_FIELDS = {
    "streams": Field(int, low=1, high=64),
    "duration_s": Field(float, low=1, high=600),
}


async def start_test(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG]
    registry = request.app[REGISTRY]
    body = await read_json(request, 4096) if request.can_read_body else {}
    values = check(body, START_FIELDS)
    streams = values["streams"] or 4
    duration_s = values["duration_s"] or cfg.default_duration_s
    if streams > cfg.max_streams:
        raise json_error(400, f"streams must be at most {cfg.max_streams}, got {streams}", "streams")
    if duration_s > cfg.max_duration_s:
        raise json_error(400, f"duration_s must be at most {cfg.max_duration_s:g}, got {duration_s:g}", "duration_s")
    metrics = request.app[METRICS]
    if request.app[STATUS].draining:
        metrics.inc("tests_refused_draining_total")
        raise json_error(503, "this server is shutting down; use another server", retry_after_s=60)
    network = ip_network(client_ip(request))
    wait_s = request.app[TEST_RATE].check(network)
    if wait_s:
        metrics.inc("tests_refused_rate_total")
        raise json_error(
            429, f"too many tests from your network; retry in {wait_s:.0f} s", retry_after_s=round(wait_s, 1)
        )
    registry.expire()
    capacity_check(request, network)
    net_hash = keyed_hash(cfg.secret, "net", network)
    claims, token = issue(cfg.secret, cfg.server_id, net_hash, streams, duration_s, cfg.token_ttl_s)
    state = registry.add(claims, net_key=network)
    state.udp = UdpTest(udp_key(cfg.secret, claims.test_id), claims.test_id, duration_s)
    metrics.inc("tests_started_total")
    udp_port = request.app[UDP].port
    return web.json_response(
        {
            "test_id": claims.test_id,
            "token": token,
            "server_id": cfg.server_id,
            "streams": streams,
            "duration_s": duration_s,
            "expires_at": claims.expires_at,
            "max_request_bytes": cfg.max_request_bytes,
            "method_version": METHOD_VERSION,
            "paths": {
                "download": "/api/v1/download",
                "upload": "/api/v1/upload",
                "latency": "/api/v1/latency",
                "rpm": "/api/v1/rpm",
                "counters": f"/api/v1/tests/{claims.test_id}",
                "results": "/api/v1/results",
            },
            # method v2: where and with what key to send UDP probes (spec/method-v2.md); absent: no UDP here
            **({"udp": {"port": udp_port, "key": encode_key(state.udp.key)}} if udp_port else {}),
        },
        status=201,
    )


async def test_counters(request: web.Request) -> web.Response:
    """The server's own view of a test (its upload count is the upload truth)."""
    cfg = request.app[CONFIG]
    claims = verify(cfg.secret, request.query.get("token", ""), cfg.server_id)
    if claims.test_id != request.match_info["test_id"]:
        raise json_error(403, "the token belongs to another test", "token")
    state = request.app[REGISTRY].get(claims.test_id)
    if state is None:
        raise json_error(410, "this test is no longer known to the server", "test_id")
    summary = state.summary()
    summary["receipt"] = receipts.sign(cfg.secret, state.counters())
    return web.json_response(summary)
