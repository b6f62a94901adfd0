"""Signed evidence of a series of tests, for a complaint to an ISP: created from the page, checked at /verify/<id>.

The id carries everything, so no table is needed and any server sharing the secret verifies it:

    e1.<payload>.<mac>        payload = base64url(created_at u32 | flags u8 | n u8 | n × (test uuid 16 B | digest 8 B))
                              mac     = base64url(HMAC-SHA256(secret, EVIDENCE_MAC_PREFIX + "e1." + payload)[:16])

`digest` is the first 8 bytes of SHA-256 over the stored figures of that test (`DIGEST_COLUMNS`,
canonical JSON), taken when the evidence was created. `/verify/<id>` checks the MAC (genuine:
issued by this platform, the list and the digests unchanged), re-reads every test and compares
its digest (unaltered, altered, or missing from the store). flags bit 0: every test carried the
same server-issued device id. What it proves: these results were measured by this platform's
servers, at these times, with these figures; not who ran them. At most `MAX_TESTS` tests
(a 20-test id is ~650 characters: its QR code stays readable on paper).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import struct
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ispeed.core.errors import ValidationError

VERSION = "e1"
EVIDENCE_MAC_PREFIX = b"ispeed evidence v1\n"  # domain separation from tokens, device ids and hashes
MAC_BYTES = 16
DIGEST_BYTES = 8
MAX_TESTS = 20
FLAG_SAME_DEVICE = 1
_HEAD = struct.Struct(">IBB")
MAX_ID_CHARS = 700  # "e1." + 648 characters of a 20-test payload + "." + 22 of the MAC
DIGEST_COLUMNS: tuple[str, ...] = (
    "test_id",
    "started_at",
    "server_id",
    "network_type",
    "provider",
    "province_code",
    "commune_code",
    "download_mbps",
    "upload_mbps",
    "latency_ms",
    "jitter_ms",
    "loaded_latency_down_ms",
    "loaded_latency_up_ms",
    "loss_down_pct",
    "loss_up_pct",
    "rpm_down",
    "rpm_up",
    "valid",
    "flags",
)


@dataclass(frozen=True)
class Series:
    """What an evidence id says: when it was made, its tests and their digests, and its flags."""

    created_at: int  # UTC epoch seconds
    test_ids: tuple[str, ...]
    digests: tuple[bytes, ...]
    flags: int = 0

    @property
    def same_device(self) -> bool:
        return bool(self.flags & FLAG_SAME_DEVICE)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical_test_id(text: object) -> str:
    """The lower-case UUID form of a test id; ValidationError for anything else."""
    if not isinstance(text, str) or len(text) > 64:
        raise ValidationError("test_ids", "each test id must be a UUID string")
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise ValidationError("test_ids", f"{text[:40]!r} is not a test id (a UUID)") from None


def _canonical(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    return repr(float(value))


def digest(result: dict[str, Any]) -> bytes:
    """The digest of a stored result's figures (`DIGEST_COLUMNS`, started_at as epoch seconds)."""
    values = [_canonical(int(result[c]) if c == "started_at" else result.get(c)) for c in DIGEST_COLUMNS]
    text = json.dumps(values, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(b"ispeed result digest v1\n" + text.encode("ascii")).digest()[:DIGEST_BYTES]


def same_device(results: Sequence[dict[str, Any]]) -> bool:
    """Every result carries the same server-issued device id (its keyed hash)."""
    hashes = {r.get("device_hash") for r in results}
    return bool(results) and all(r.get("device_source") == "issued" for r in results) and len(hashes) == 1


def _mac(secret: bytes, payload: str) -> str:
    mac = hmac.new(secret, EVIDENCE_MAC_PREFIX + f"{VERSION}.{payload}".encode("ascii"), hashlib.sha256)
    return _b64(mac.digest()[:MAC_BYTES])


def sign(secret: bytes, series: Series) -> str:
    """The evidence id of a series."""
    if not 1 <= len(series.test_ids) <= MAX_TESTS or len(series.digests) != len(series.test_ids):
        raise ValueError(f"a series holds 1 to {MAX_TESTS} tests, each with its digest")
    raw = _HEAD.pack(series.created_at, series.flags, len(series.test_ids)) + b"".join(
        uuid.UUID(t).bytes + d for t, d in zip(series.test_ids, series.digests, strict=True)
    )
    payload = _b64(raw)
    return f"{VERSION}.{payload}.{_mac(secret, payload)}"


def parse(secret: bytes, evidence_id: str) -> Series | None:
    """The series of a genuine id signed under `secret`; None for a malformed or forged one (never raises)."""
    if not isinstance(evidence_id, str) or len(evidence_id) > MAX_ID_CHARS or not evidence_id.isascii():
        return None
    parts = evidence_id.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        return None
    _, payload, mac = parts
    try:
        if not hmac.compare_digest(mac.encode("ascii"), _mac(secret, payload).encode("ascii")):
            return None
        raw = _unb64(payload)
    except (ValueError, binascii.Error):
        return None
    if _b64(raw) != payload or len(raw) < _HEAD.size:  # one spelling per id
        return None
    created, flags, n = _HEAD.unpack_from(raw)
    body = raw[_HEAD.size :]
    step = 16 + DIGEST_BYTES
    if not 1 <= n <= MAX_TESTS or len(body) != n * step:
        return None
    chunks = [body[i * step : (i + 1) * step] for i in range(n)]
    return Series(created, tuple(str(uuid.UUID(bytes=c[:16])) for c in chunks), tuple(c[16:] for c in chunks), flags)


def create(secret: bytes, results: Sequence[dict[str, Any]], now: float | None = None) -> str:
    """Sign the series of these stored results (in the given order)."""
    flags = FLAG_SAME_DEVICE if same_device(results) else 0
    series = Series(
        int(time.time() if now is None else now),
        tuple(canonical_test_id(r["test_id"]) for r in results),
        tuple(digest(r) for r in results),
        flags,
    )
    return sign(secret, series)


def check(series: Series, stored: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """(test id, status) in the series' order: `ok` (as when signed), `altered`, or `missing`."""
    out = []
    for test_id, expected in zip(series.test_ids, series.digests, strict=True):
        result = stored.get(test_id)
        if result is None:
            out.append((test_id, "missing"))
        else:
            out.append((test_id, "ok" if hmac.compare_digest(digest(result), expected) else "altered"))
    return out
