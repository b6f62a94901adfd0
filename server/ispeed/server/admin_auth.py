"""Signed admin requests: an HMAC under the server secret over the whole request, valid briefly, used once.

Both ends of the local admin API (`admin_api` on the server, `admin_client` in `ispeed isp-key`)
share this module; it needs only the standard library. A request carries

    Authorization: ISPEED-HMAC-SHA256 ts=<unix seconds>,nonce=<32 hex>,sig=<64 hex>

    sig = HMAC-SHA256(K, "ispeed-admin-v1\\n" METHOD "\\n" TARGET "\\n" ts "\\n" nonce "\\n" hex(SHA-256(body)))
    K   = HMAC-SHA256(server secret, "ispeed admin api v1")

TARGET is the path and query exactly as sent. K is a key of its own, so an admin signature never
doubles as a test token or a device hash. The secret never travels: a log that keeps the header
keeps a signature bound to one request, accepted within MAX_SKEW_S of its time and only once.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Sequence

from ispeed.core.errors import ValidationError
from ispeed.core.store import parse_store_url

SCHEME = "ISPEED-HMAC-SHA256"
MAX_SKEW_S = 30.0
MAX_HEADER_CHARS = 200
_PARAM = re.compile(r"(ts|nonce|sig)=([0-9a-f]{1,64})")
_LENGTHS = {"nonce": 32, "sig": 64}


def signing_key(secret: bytes) -> bytes:
    return hmac.new(secret, b"ispeed admin api v1", hashlib.sha256).digest()


def signature(key: bytes, method: str, target: str, body: bytes, ts: int, nonce: str) -> str:
    text = f"ispeed-admin-v1\n{method.upper()}\n{target}\n{ts}\n{nonce}\n{hashlib.sha256(body).hexdigest()}"
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def authorization(
    secret: bytes, method: str, target: str, body: bytes = b"", now: float | None = None, nonce: str | None = None
) -> str:
    """The Authorization header value for one request."""
    ts = int(time.time() if now is None else now)
    nonce = nonce or secrets.token_hex(16)
    return f"{SCHEME} ts={ts},nonce={nonce},sig={signature(signing_key(secret), method, target, body, ts, nonce)}"


def store_label(url: str) -> str:
    """A store as both ends compare it: an embedded path made absolute and real, a server URL without password."""
    parsed = parse_store_url(url)
    if parsed.scheme == "chdb":
        return "chdb:" + os.path.realpath(parsed.path)
    return parsed.redacted


def _refuse(reason: str, status: int = 401) -> ValidationError:
    return ValidationError("authorization", reason, status)


def _params(values: Sequence[str]) -> tuple[int, str, str]:
    """(ts, nonce, sig) of the one Authorization header; refuses anything else without a 500."""
    if len(values) != 1:
        raise _refuse(f"send one `Authorization: {SCHEME} ts=…,nonce=…,sig=…` header (got {len(values)})")
    value = values[0].strip()
    scheme, _, rest = value.partition(" ")
    if len(value) > MAX_HEADER_CHARS or not value.isascii() or scheme.upper() != SCHEME:
        raise _refuse(
            f"the admin API takes `Authorization: {SCHEME} ts=…,nonce=…,sig=…` signed with the "
            "server secret (as `ispeed isp-key` sends it)"
        )
    found: dict[str, str] = {}
    for part in rest.split(","):
        m = _PARAM.fullmatch(part.strip())
        if m is None or m.group(1) in found:
            raise _refuse(f"malformed {SCHEME} parameters: want ts=<unix seconds>,nonce=<32 hex>,sig=<64 hex>")
        found[m.group(1)] = m.group(2)
    if (
        set(found) != {"ts", "nonce", "sig"}
        or any(len(found[k]) != n for k, n in _LENGTHS.items())
        or not found["ts"].isdigit()
        or len(found["ts"]) > 12
    ):
        raise _refuse(f"malformed {SCHEME} parameters: want ts=<unix seconds>,nonce=<32 hex>,sig=<64 hex>")
    return int(found["ts"]), found["nonce"], found["sig"]


class Verifier:
    """Checks signed requests: well-formed, fresh, signed with this secret, and not seen before."""

    def __init__(self, secret: bytes, max_skew_s: float = MAX_SKEW_S, max_nonces: int = 10_000) -> None:
        self._key = signing_key(secret) if secret else b""
        self.max_skew_s = max_skew_s
        self.max_nonces = max_nonces
        self._seen: dict[str, float] = {}  # nonce -> when it may be forgotten

    def check(self, values: Sequence[str], method: str, target: str, body: bytes, now: float | None = None) -> None:
        """Return when the request is authentic; raise ValidationError (401, or 429 when flooded) otherwise."""
        now = time.time() if now is None else now
        ts, nonce, sig = _params(values)
        if abs(now - ts) > self.max_skew_s:
            raise _refuse(
                f"the signature's time is {now - ts:+.0f} s away from the server's clock (at most "
                f"{self.max_skew_s:.0f} s): sign each request when sending it"
            )
        if not self._key or not hmac.compare_digest(sig, signature(self._key, method, target, body, ts, nonce)):
            raise _refuse(
                "the signature does not match: sign with the secret this server runs with "
                "(--secret or ISPEED_SECRET of `ispeed serve`)"
            )
        if nonce in self._seen:
            raise _refuse("this signed request was already used: sign every request afresh")
        if len(self._seen) >= self.max_nonces:
            self._seen = {n: t for n, t in self._seen.items() if t > now}
            if len(self._seen) >= self.max_nonces:
                raise _refuse("too many signed admin requests in the last minute; retry shortly", 429)
        self._seen[nonce] = ts + self.max_skew_s
