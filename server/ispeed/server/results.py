"""POST /api/v1/results: validate, check against the server's own counters, enrich, store.

Refused (4xx, nothing stored): malformed bodies, forged/expired/unknown tokens, a token used
twice, a test the server never saw transfer. A result arriving after its test was forgotten
(token expired, server restarted) is checked against the signed receipt of the server's
counters that the client got at the end of the test (see receipts.py). Stored but flagged `valid=0` with a reason:
figures inconsistent with the server's counters (so they can be audited, never published).
"""

from __future__ import annotations

import datetime as dt
import logging

from aiohttp import web

from ispeed.core import method
from ispeed.core.schema import NETWORK_TYPES, Measurement
from ispeed.core.timeutil import local_date
from ispeed.server.attribution import Attribution
from ispeed.server.errors import json_error
from ispeed.server.keys import ATTRIBUTION, CONFIG, INGEST, METRICS, REGISTRY, RESULT_RATE
from ispeed.server.privacy import ip_network, keyed_hash, round_coord
from ispeed.server.proxy import client_ip
from ispeed.server import receipts
from ispeed.server.receipts import Counters
from ispeed.server.tokens import verify
from ispeed.server.validate import Field, check, read_json

log = logging.getLogger("ispeed.server.results")

MBPS = Field(float, required=True, low=0, high=100_000)
MS = Field(float, low=0, high=60_000)
RESULT_FIELDS: dict[str, Field] = {
    "token": Field(str, required=True, max_len=1024),
    "test_id": Field(str, max_len=64),
    "download_mbps": MBPS,
    "upload_mbps": MBPS,
    "latency_ms": MS,
    "jitter_ms": MS,
    "loaded_latency_down_ms": MS,
    "loaded_latency_up_ms": MS,
    "bytes_down": Field(int, low=0, high=1e15),
    "bytes_up": Field(int, low=0, high=1e15),
    "streams": Field(int, low=1, high=64),
    "duration_s": Field(float, low=0, high=600),
    "network_type": Field(str, choices=NETWORK_TYPES),
    "lat": Field(float, low=-90, high=90),
    "lon": Field(float, low=-180, high=180),
    "accuracy_m": Field(float, low=0, high=1e7),
    "device_id": Field(str, max_len=128),
    "client_kind": Field(str, choices=("cli", "agent", "browser")),
    "client_version": Field(str, max_len=64),
    "method_version": Field(str, max_len=16),
    "receipt": Field(str, max_len=4096),
}

UPLOAD_TOLERANCE = 0.10        # claimed upload vs the server's own figure
DOWNLOAD_SLACK = 1.05          # claimed bytes vs bytes the server wrote


def consistency(values: dict[str, object], counters: Counters) -> str:
    """'' when the claimed figures agree with the server's counters, else the reason."""
    down_claim = float(values["download_mbps"])  # type: ignore[arg-type]
    up_claim = float(values["upload_mbps"])  # type: ignore[arg-type]
    server_up = counters.upload_mbps
    duration = float(values["duration_s"] or counters.duration_s)  # type: ignore[arg-type]
    # the steady window is at least half the phase, so this bounds any honest download figure
    max_down = counters.bytes_down * 8 / 1e6 / max(duration * (1 - method.RAMP_MAX_FRACTION), 0.1)
    if down_claim > max_down * DOWNLOAD_SLACK:
        return f"download {down_claim:.1f} Mbps exceeds what the server sent ({max_down:.1f} Mbps at most)"
    bytes_down = values.get("bytes_down")
    if isinstance(bytes_down, int) and bytes_down > counters.bytes_down * DOWNLOAD_SLACK + (1 << 20):
        return f"bytes_down {bytes_down} exceeds the {counters.bytes_down} bytes the server sent"
    if server_up > 0 and abs(up_claim - server_up) > UPLOAD_TOLERANCE * server_up:
        return f"upload {up_claim:.1f} Mbps differs from the server's count ({server_up:.1f} Mbps)"
    return ""


async def submit_result(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG]
    metrics = request.app[METRICS]
    metrics.inc("results_received_total")
    wait_s = request.app[RESULT_RATE].check(ip_network(client_ip(request)))
    if wait_s:
        metrics.inc("results_refused_rate_total")
        raise json_error(429, f"too many submissions from your network; retry in {wait_s:.0f} s",
                         retry_after_s=round(wait_s, 1))
    values = check(await read_json(request, cfg.max_result_body_bytes), RESULT_FIELDS)
    receipt = values.pop("receipt")
    claims = verify(cfg.secret, values["token"], cfg.server_id, allow_expired=receipt is not None)
    if values["test_id"] not in (None, claims.test_id):
        raise json_error(400, "test_id does not match the token", "test_id")
    if (values["lat"] is None) != (values["lon"] is None):
        raise json_error(400, "give both lat and lon, or neither", "lat" if values["lat"] is None else "lon")
    state = request.app[REGISTRY].get(claims.test_id)
    if state is not None:
        if state.submitted:
            metrics.inc("results_reused_token_total")
            raise json_error(409, "a result for this test was already submitted", "token")
        counters = state.counters()
    elif receipt is not None:
        counters = receipts.verify(cfg.secret, receipt, claims.test_id)
        metrics.inc("results_by_receipt_total")
    else:
        raise json_error(410, "this test is not known to the server (expired or from before a restart) "
                              "and no receipt came with it", "token")
    if counters.bytes_down == 0 or counters.bytes_up == 0:
        metrics.inc("results_no_transfer_total")
        raise json_error(422, "the server saw no download or no upload for this test", "token")

    reason = consistency(values, counters)
    ip = client_ip(request)
    attribution: Attribution = request.app[ATTRIBUTION]  # type: ignore[assignment]
    place = attribution.place(ip, values["lat"], values["lon"], values["accuracy_m"])
    started = dt.datetime.fromtimestamp(claims.issued_at, dt.timezone.utc)
    server_up = counters.upload_mbps
    row = Measurement(
        test_id=claims.test_id,
        started_at=started,
        local_date=local_date(started),
        network_type=values["network_type"] or "fixed",
        provider=place.provider,
        asn=place.asn,
        province_code=place.province_code,
        commune_code=place.commune_code,
        location_source=place.location_source,
        lat=round_coord(values["lat"]),
        lon=round_coord(values["lon"]),
        device_hash=keyed_hash(cfg.secret, "device", values["device_id"]) if values["device_id"] else "",
        ip_hash=keyed_hash(cfg.secret, "ip", ip),
        ip_network=ip_network(ip),
        download_mbps=values["download_mbps"],
        upload_mbps=server_up if server_up > 0 else values["upload_mbps"],
        latency_ms=values["latency_ms"],
        jitter_ms=values["jitter_ms"],
        loaded_latency_down_ms=values["loaded_latency_down_ms"],
        loaded_latency_up_ms=values["loaded_latency_up_ms"],
        bytes_down=values["bytes_down"] or 0,
        bytes_up=values["bytes_up"] or 0,
        server_bytes_down=counters.bytes_down,
        server_bytes_up=counters.bytes_up,
        streams=values["streams"] or counters.streams,
        duration_s=values["duration_s"] or counters.duration_s,
        tcp_min_rtt_ms=counters.tcp_min_rtt_ms,
        tcp_retrans_ratio=counters.tcp_retrans_ratio,
        server_id=cfg.server_id,
        client_kind=values["client_kind"] or "cli",
        client_version=values["client_version"] or "",
        method_version=values["method_version"] or method.METHOD_VERSION,
        simulated=False,
        valid=not reason,
        invalid_reason=reason,
    )
    if state is not None:
        state.submitted = True
    try:
        outcome = await request.app[INGEST].submit(row)
    except Exception:
        if state is not None:
            state.submitted = False  # not acknowledged: the client may retry
        raise
    if reason:
        metrics.inc("results_flagged_invalid_total")
        log.info("result %s stored as invalid: %s", row.test_id, reason)
    request.app[REGISTRY].finished += 1
    fresh = outcome != "duplicate"
    return web.json_response({
        "status": "accepted" if fresh else "duplicate",
        "stored": outcome,
        "test_id": row.test_id,
        "valid": row.valid,
        "invalid_reason": reason,
        "upload_mbps": round(row.upload_mbps, 3),
        "provider": row.provider,
        "province_code": row.province_code,
        "commune_code": row.commune_code,
    }, status=201 if fresh else 200)
