"""Signed receipts of the server's own counters, so a result can be checked after a restart.

The client fetches its test's counters together with a receipt (HMAC under the server secret).
A result submitted later (the agent retrying after an outage, or after this server restarted
and forgot the test) is checked against the receipt instead of the in-memory counters.
Replays are harmless: the store keeps one row per test_id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import asdict, dataclass

from ispeed.server.tokens import TokenError

RECEIPT_TTL_S = 7 * 86400


@dataclass(frozen=True)
class Counters:
    """What the server measured of one test: the figures a submitted result is checked against."""

    test_id: str
    issued_at: float
    streams: int
    duration_s: float
    bytes_down: int
    bytes_up: int
    upload_mbps: float
    tcp_min_rtt_ms: float | None
    tcp_retrans_ratio: float | None
    signed_at: float = 0.0
    # the server-side download (method v1 §4) and what the too-little-to-measure rule reads;
    # a receipt signed by an older server lacks them: download_mbps -1 = not measured here
    download_mbps: float = -1.0
    download_span_s: float = 0.0
    download_acked_bytes: int = 0
    upload_span_s: float = -1.0
    transfer_ip: str = ""  # the address that ran the transfers (the result is attributed to it)
    # method v2: the UDP probes per phase as the server counted them (quality.SERVER_KEYS); None before
    udp: dict[str, dict[str, int]] | None = None
    # method v2's responsiveness evidence (rpm_evidence.py): foreign probes the server answered in
    # each transfer phase and the RPM of their handshakes; -1 = a receipt from before method v2
    rpm_down_probes: int = -1
    rpm_down_server: float = -1.0
    rpm_up_probes: int = -1
    rpm_up_server: float = -1.0
    server_delay_p99_ms: float | None = None  # the probes' wait in this server, 99th percentile


def sign(secret: bytes, counters: Counters) -> str:
    body = base64.urlsafe_b64encode(json.dumps(asdict(counters), sort_keys=True).encode()).rstrip(b"=")
    sig = base64.urlsafe_b64encode(hmac.new(secret, b"receipt:" + body, hashlib.sha256).digest()).rstrip(b"=")
    return f"{body.decode()}.{sig.decode()}"


def verify(secret: bytes, receipt: str, test_id: str, now: float | None = None) -> Counters:
    # ASCII only: compare_digest raises TypeError on non-ASCII text (it answered 500)
    if not isinstance(receipt, str) or not receipt.isascii() or receipt.count(".") != 1:
        raise TokenError("receipt is malformed", 400)
    body, sig = receipt.split(".")
    expected = base64.urlsafe_b64encode(hmac.new(secret, b"receipt:" + body.encode("ascii"), hashlib.sha256).digest())
    if not hmac.compare_digest(sig.encode("ascii"), expected.rstrip(b"=")):
        raise TokenError("receipt signature is invalid")
    try:
        counters = Counters(**json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))
    except (ValueError, TypeError) as exc:
        raise TokenError("receipt payload is malformed", 400) from exc
    if counters.test_id != test_id:
        raise TokenError("the receipt belongs to another test")
    if (time.time() if now is None else now) - counters.signed_at > RECEIPT_TTL_S:
        raise TokenError("the receipt is older than 7 days: results must be submitted within a week", 410)
    return counters
