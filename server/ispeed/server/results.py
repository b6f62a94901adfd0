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

from ispeed.core import method, submission
from ispeed.core.fields import Field
from ispeed.core.method import RAMP_MAX_FRACTION, SAMPLE_INTERVAL_S
from ispeed.core.schema import Measurement
from ispeed.core.timeutil import local_date
from ispeed.server import receipts, udp_result
from ispeed.server.errors import json_error
from ispeed.server.keys import CONFIG, INGEST, METRICS, REGISTRY, RESULT_RATE
from ispeed.server.labels import decide
from ispeed.server.privacy import ip_network, ip_version, keyed_hash, round_coord
from ispeed.server.proxy import client_ip
from ispeed.server.receipts import Counters
from ispeed.server.rpm_evidence import SERVER_DELAY_BOUND_MS, disagreement
from ispeed.server.tokens import verify
from ispeed.server.validate import check, read_json

log = logging.getLogger("ispeed.server.results")

RESULT_FIELDS: dict[str, Field] = submission.FIELDS  # the one table, shared with the clients

# Method v1 §4 (spec/method-v1.md): the stored figures are the server's own; the client's are
# kept for audit. A client figure further than the tolerance from the server's flags the result (a
# broken or dishonest client): TOLERANCE, plus an allowance for the two ends sampling the phase
# 100 ms apart at different instants (each window edge may sit up to one sample interval off, over
# a window of at least half the phase): 2 × 0.1 s / (0.5 × D), i.e. +4 % at D = 10 s and +40 % at
# D = 1 s. Honest clients read within ~2 % over 10 s phases (perf/results/accuracy.md), but 1 s
# loopback tests at 20-40 Gbit/s, whose rate swings with the CPU, read up to ±20 % apart.
TOLERANCE = 0.10
EDGE_ALLOWANCE_S = 2 * SAMPLE_INTERVAL_S / (1 - RAMP_MAX_FRACTION)
DOWNLOAD_SLACK = 1.05  # claimed bytes vs bytes the server wrote
# A direction is measured when the server's own timeline of it spans at least this share of the
# token's phase and moved at least MIN_PHASE_BYTES; otherwise the result is refused (422).
MIN_PHASE_FRACTION = 0.5
MIN_PHASE_BYTES = 64 << 10


def unmeasured(counters: Counters) -> str:
    """'' when the server measured both phases itself, else why not (method v1 §4)."""
    need_s = MIN_PHASE_FRACTION * counters.duration_s
    phases = (
        ("download", counters.download_span_s, counters.download_acked_bytes),
        ("upload", counters.upload_span_s, counters.bytes_up),
    )
    for name, span_s, moved in phases:
        if span_s < 0:  # a receipt from a server before method v1 §4: no upload span kept
            continue
        if moved < MIN_PHASE_BYTES or span_s < need_s:
            return (
                f"the server measured too little {name} to publish: {moved} bytes over {span_s:.1f} s "
                f"(at least {MIN_PHASE_BYTES} bytes over {need_s:g} s, half the {counters.duration_s:g} s "
                "phase, are needed); run the whole test again"
            )
    return ""


def tolerance(duration_s: float) -> float:
    """How far (relative) a client figure may be from the server's over phases of `duration_s`."""
    return TOLERANCE + EDGE_ALLOWANCE_S / max(duration_s, SAMPLE_INTERVAL_S)


def _differs(claim: float, server: float, tolerance: float) -> bool:
    return abs(claim - server) > tolerance * server


def consistency(values: dict[str, object], counters: Counters) -> str:
    """'' when the client's figures agree with the server's own, else the reason (stored flagged)."""
    down_claim = float(values["download_mbps"])  # type: ignore[arg-type]
    up_claim = float(values["upload_mbps"])  # type: ignore[arg-type]
    server_down = counters.download_mbps
    if server_down < 0:
        return "no server-side download figure (a receipt from a server before method v1 §4)"
    allowed = tolerance(counters.duration_s)
    if _differs(down_claim, server_down, allowed):
        return (
            f"client_disagrees: download {down_claim:.1f} Mbps differs from the server's own "
            f"{server_down:.1f} Mbps by more than {allowed:.0%}"
        )
    bytes_down = values.get("bytes_down")
    if isinstance(bytes_down, int) and bytes_down > counters.bytes_down * DOWNLOAD_SLACK + (1 << 20):
        return f"client_disagrees: bytes_down {bytes_down} exceeds the {counters.bytes_down} bytes the server sent"
    server_up = counters.upload_mbps
    if _differs(up_claim, server_up, allowed):
        return (
            f"client_disagrees: upload {up_claim:.1f} Mbps differs from the server's own "
            f"{server_up:.1f} Mbps by more than {allowed:.0%}"
        )
    return ""


def _measured_rpm(values: dict[str, object]) -> bool:
    return values.get("rpm_down") is not None or values.get("rpm_up") is not None


def quality_flags(values: dict[str, object], counters: Counters) -> list[str]:
    """Method v2 flags: `rpm_disagrees` (a client RPM the server's handshakes contradict, or one
    it saw too few probes for) and `server_delayed` (the probes waited here beyond the bound)."""
    flags: list[str] = []
    for phase, key, probes, server_rpm in (
        ("download", "rpm_down", counters.rpm_down_probes, counters.rpm_down_server),
        ("upload", "rpm_up", counters.rpm_up_probes, counters.rpm_up_server),
    ):
        claimed = values.get(key)
        why = disagreement(
            phase, claimed if isinstance(claimed, float) else None, probes, server_rpm if server_rpm > 0 else None
        )
        if why:
            log.info("result %s: %s", counters.test_id, why)
            if "rpm_disagrees" not in flags:
                flags.append("rpm_disagrees")
    if counters.server_delay_p99_ms is not None and counters.server_delay_p99_ms > SERVER_DELAY_BOUND_MS:
        flags.append("server_delayed")
    return flags


def _rounded(value: object) -> float | None:
    return round(value, 1) if isinstance(value, float) else None


async def submit_result(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG]
    metrics = request.app[METRICS]
    metrics.inc("results_received_total")
    wait_s = request.app[RESULT_RATE].check(ip_network(client_ip(request)))
    if wait_s:
        metrics.inc("results_refused_rate_total")
        raise json_error(
            429, f"too many submissions from your network; retry in {wait_s:.0f} s", retry_after_s=round(wait_s, 1)
        )
    values = check(await read_json(request, cfg.max_result_body_bytes), RESULT_FIELDS)
    receipt = values.pop("receipt")
    udp_phases = udp_result.parse_phases(values["quality_phases"])  # 400 before anything else happens
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
        raise json_error(
            410,
            "this test is not known to the server (expired or from before a restart) and no receipt came with it",
            "token",
        )
    if counters.bytes_down == 0 or counters.bytes_up == 0:
        metrics.inc("results_no_transfer_total")
        raise json_error(422, "the server saw no download or no upload for this test", "token")
    too_little = unmeasured(counters)
    if too_little:
        metrics.inc("results_unmeasured_total")
        raise json_error(422, too_little, "token")

    reason = consistency(values, counters)
    # the network that ran the transfers, not the one that submits (an agent may submit later,
    # from elsewhere; a client may not borrow another network's attribution)
    ip = counters.transfer_ip or client_ip(request)
    labels = decide(
        request.app,
        ip,
        values["lat"],
        values["lon"],
        values["accuracy_m"],
        values["network_type"],
        values["network_type_device"],
        values["device_id"],
    )
    place = labels.place
    reason = reason or labels.invalid_reason
    started = dt.datetime.fromtimestamp(claims.issued_at, dt.UTC)
    # method v2's UDP loss and delay: the server's own counts, joined with the client's (udp_result.py)
    udp = udp_result.stored(values["udp_status"], udp_phases, counters)
    flags = (["client_disagrees"] if reason.startswith("client_disagrees") else []) + list(labels.flags)
    flags += udp.flags
    flags += quality_flags(values, counters)
    row = Measurement(
        test_id=claims.test_id,
        started_at=started,
        local_date=local_date(started),
        network_type=labels.network_type,
        provider=place.provider,
        asn=place.asn,
        province_code=place.province_code,
        commune_code=place.commune_code,
        location_source=place.location_source,
        lat=round_coord(values["lat"]),
        lon=round_coord(values["lon"]),
        device_hash=labels.device_hash,
        ip_hash=keyed_hash(cfg.secret, "ip", ip),
        ip_network=ip_network(ip),
        download_mbps=round(max(counters.download_mbps, 0.0), 3),
        upload_mbps=round(counters.upload_mbps, 3),
        latency_ms=values["latency_ms"],
        jitter_ms=values["jitter_ms"],
        loaded_latency_down_ms=values["loaded_latency_down_ms"],
        loaded_latency_up_ms=values["loaded_latency_up_ms"],
        bytes_down=values["bytes_down"] or 0,
        bytes_up=values["bytes_up"] or 0,
        server_bytes_down=counters.bytes_down,
        server_bytes_up=counters.bytes_up,
        streams=counters.streams,  # the token's, never the submission's
        duration_s=counters.duration_s,
        tcp_min_rtt_ms=counters.tcp_min_rtt_ms,
        tcp_retrans_ratio=counters.tcp_retrans_ratio,
        server_id=cfg.server_id,
        client_kind=values["client_kind"] or "cli",
        client_version=values["client_version"] or "",
        # the server measured: its method, whatever the client says; v1 for a client that did not probe
        # method v2 when its figures were measured (UDP probes or RPM); a v1 client's result stays v1
        method_version=method.METHOD_VERSION if udp.udp_status or _measured_rpm(values) else method.SPEED_ONLY_VERSION,
        simulated=False,
        valid=not reason,
        invalid_reason=reason,
        client_download_mbps=values["download_mbps"],
        client_upload_mbps=values["upload_mbps"],
        location_accuracy_m=place.location_accuracy_m,
        network_type_source=labels.network_type_source,
        connection_type=place.connection_type,
        device_source=labels.device_source,
        flags=",".join(flags),
        **udp.columns(),
        ip_version=ip_version(ip),  # of the address that ran the transfers (IPv4-mapped: 4)
        rpm_down=_rounded(values["rpm_down"]),
        rpm_up=_rounded(values["rpm_up"]),
        server_delay_p99_ms=counters.server_delay_p99_ms,
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
    return web.json_response(
        {
            "status": "accepted" if fresh else "duplicate",
            "stored": outcome,
            "test_id": row.test_id,
            "valid": row.valid,
            "invalid_reason": reason,
            "download_mbps": round(row.download_mbps, 3),
            "upload_mbps": round(row.upload_mbps, 3),
            "provider": row.provider,
            "province_code": row.province_code,
            "commune_code": row.commune_code,
            "location_source": row.location_source,
            "network_type": row.network_type,
            "network_type_source": row.network_type_source,
            "device_source": row.device_source,
            "flags": list(flags),
            "udp_status": row.udp_status,
            "udp_probes": row.udp_probes,
            "loss_up_pct": row.loss_up_pct,
            "loss_down_pct": row.loss_down_pct,
            "ip_version": row.ip_version,
            "rpm_down": row.rpm_down,
            "rpm_up": row.rpm_up,
        },
        status=201 if fresh else 200,
    )
