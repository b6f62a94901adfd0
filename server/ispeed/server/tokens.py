"""HMAC-signed test tokens: every stream, probe and result of a test carries one.

Format: base64url(JSON claims) "." base64url(HMAC-SHA256(secret, claims part)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import asdict, dataclass

from ispeed.core.errors import ValidationError


class TokenError(ValidationError):
    """A token is malformed, forged, or expired; `status` is the HTTP status to answer."""

    def __init__(self, reason: str, status: int = 403) -> None:
        super().__init__("token", reason, status)


@dataclass(frozen=True)
class TestClaims:
    """What a token says about its test (signed, so the server can trust it back)."""

    __test__ = False  # not a pytest test class

    test_id: str
    server_id: str
    issued_at: float  # UTC epoch seconds
    expires_at: float
    net_hash: str  # keyed hash of the client's network at issue time
    streams: int
    duration_s: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(
    secret: bytes,
    server_id: str,
    net_hash: str,
    streams: int,
    duration_s: float,
    ttl_s: float,
    now: float | None = None,
) -> tuple[TestClaims, str]:
    now = time.time() if now is None else now
    claims = TestClaims(str(uuid.uuid4()), server_id, now, now + ttl_s, net_hash, streams, duration_s)
    body = _b64(json.dumps(asdict(claims), separators=(",", ":"), sort_keys=True).encode())
    sig = _b64(hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest())
    return claims, f"{body}.{sig}"


def verify(
    secret: bytes, token: str, server_id: str, now: float | None = None, allow_expired: bool = False
) -> TestClaims:
    """The claims of a genuine, unexpired token issued by this server; TokenError otherwise."""
    # ASCII only: compare_digest raises TypeError on non-ASCII text (it answered 500)
    if not isinstance(token, str) or not token or len(token) > 1024 or token.count(".") != 1 or not token.isascii():
        raise TokenError("missing or malformed test token: start a test with POST /api/v1/tests", 400)
    body, sig = token.split(".")
    expected = _b64(hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest())
    if not hmac.compare_digest(sig.encode("ascii"), expected.encode("ascii")):
        raise TokenError("test token signature is invalid (forged, or issued by another server)")
    try:
        claims = TestClaims(**json.loads(_unb64(body)))
    except (ValueError, TypeError) as exc:
        raise TokenError("test token payload is malformed", 400) from exc
    if claims.server_id != server_id:
        raise TokenError(f"test token was issued for server {claims.server_id!r}, not this one")
    if not allow_expired and (time.time() if now is None else now) > claims.expires_at:
        raise TokenError("test token has expired: start a new test", 410)
    return claims
