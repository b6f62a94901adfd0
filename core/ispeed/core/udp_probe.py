"""The UDP probe of method v2 (spec/method-v2.md, UDP loss and delay): wire format, tags and rates.

A probe is one datagram of PROBE_BYTES (default) whose first HEADER_BYTES are, big-endian:

    offset size  field
     0      1    version (1)
     1      1    kind: the phase (0 idle, 1 download, 2 upload), | ECHO_FLAG in the server's answer
     2     16    test id (the UUID's 16 bytes)
    18      4    sequence number within the phase, from 0
    22      8    the client's send time, ns of its own monotonic clock (the server echoes it unchanged)
    30      8    tag: HMAC-SHA256(key, every byte of the datagram but these 8)[:8]
    38      4    probe: zero; echo: the server's arrival number of this probe within its phase
    42      …    zeros up to the datagram's size

`key` is the per-test key of `POST /api/v1/tests` (`udp.key`, base64url). The server answers a
valid probe with an echo of exactly its length (kind | ECHO_FLAG, its arrival number, tagged
again with the same key), never a larger one, and nothing to anything else.
"""

from __future__ import annotations

import base64
import hmac
import struct
import uuid
from dataclasses import dataclass

VERSION = 1
PHASES: tuple[str, ...] = ("idle", "download", "upload")  # the kind byte is the index
ECHO_FLAG = 0x80
HEADER_BYTES = 38
TAG_OFFSET = 30
TAG_BYTES = 8
ARRIVAL_OFFSET = 38  # the echo's server arrival number (uint32)
MIN_PROBE_BYTES = 42  # the header and the arrival number
MAX_PROBE_BYTES = 512  # larger datagrams get no answer
PROBE_BYTES = 100  # UDP payload of the client's probes (142 bytes per Ethernet frame over IPv4)

# Rates and counts (spec/method-v2.md gives the reasons).
IDLE_PROBES = 300  # 1 % loss shows as 3 ± 1.7 lost probes; 0 lost of 300 rules out 1 % at 95 %
IDLE_RATE_PER_S = 100.0  # 3 s, run beside the WebSocket idle probes
LOADED_RATE_PER_S = 50.0  # during download and upload: 40 kbit/s, nothing next to the transfer
MAX_CLIENT_RATE_PER_S = 200.0  # `ispeed test --udp-rate` accepts at most this
ANSWER_RATE_PER_S = 250.0  # the server answers at most this many probes per test and second ...
ANSWER_BURST = 50  # ... with bursts of this many
BLOCKED_AFTER_S = 1.0  # no echo this long after the first probe: `udp: blocked`
MAX_IDLE_PROBES = 20_000  # the server counts idle sequence numbers below this
SEQ_SLACK = 100  # a probe's sequence number may lead the answer rate by this many

_HEAD = struct.Struct(">BB16sIQ")  # version, kind, test id, seq, send time: bytes 0..29


@dataclass(frozen=True)
class Probe:
    """The header fields of a probe or an echo (not yet authenticated: see `tag_ok`)."""

    kind: int
    test_id: bytes  # 16 bytes
    seq: int
    sent_ns: int
    arrival: int  # an echo's server arrival number; 0 in a probe

    @property
    def phase(self) -> int:
        return self.kind & ~ECHO_FLAG

    @property
    def is_echo(self) -> bool:
        return bool(self.kind & ECHO_FLAG)


def decode_key(text: str) -> bytes:
    """The key bytes of the `udp.key` text of POST /api/v1/tests (base64url, unpadded)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii")


def id_bytes(test_id: str) -> bytes:
    """The 16 bytes of a test id (a UUID); ValueError for anything else."""
    return uuid.UUID(test_id).bytes


def id_text(test_id: bytes) -> str:
    """The test id (UUID text) of 16 header bytes."""
    return str(uuid.UUID(bytes=test_id))


def _tag(key: bytes, data: bytes | bytearray | memoryview) -> bytes:
    return hmac.digest(key, bytes(data[:TAG_OFFSET]) + bytes(data[HEADER_BYTES:]), "sha256")[:TAG_BYTES]


def pack(key: bytes, test_id: bytes, phase: int, seq: int, sent_ns: int, size: int = PROBE_BYTES) -> bytes:
    """A tagged probe of `size` bytes."""
    if not MIN_PROBE_BYTES <= size <= MAX_PROBE_BYTES:
        raise ValueError(f"a probe is {MIN_PROBE_BYTES} to {MAX_PROBE_BYTES} bytes, not {size}")
    data = bytearray(size)
    _HEAD.pack_into(data, 0, VERSION, phase, test_id, seq, sent_ns)
    data[TAG_OFFSET:HEADER_BYTES] = _tag(key, data)
    return bytes(data)


def parse(data: bytes) -> Probe | None:
    """The header of a datagram of a plausible size and version, else None (nothing is verified)."""
    if not MIN_PROBE_BYTES <= len(data) <= MAX_PROBE_BYTES or data[0] != VERSION:
        return None
    _, kind, test_id, seq, sent_ns = _HEAD.unpack_from(data, 0)
    if kind & ~ECHO_FLAG >= len(PHASES):
        return None
    (arrival,) = struct.unpack_from(">I", data, ARRIVAL_OFFSET)
    return Probe(kind, test_id, seq, sent_ns, arrival)


def tag_ok(key: bytes, data: bytes) -> bool:
    """Whether the datagram's tag is the one `key` gives (constant-time comparison)."""
    return hmac.compare_digest(data[TAG_OFFSET:HEADER_BYTES], _tag(key, data))


def echo(key: bytes, data: bytes, arrival: int) -> bytes:
    """The server's answer to the probe `data`: the same length, kind | ECHO_FLAG, its arrival number, tagged."""
    out = bytearray(data)
    out[1] |= ECHO_FLAG
    struct.pack_into(">I", out, ARRIVAL_OFFSET, arrival & 0xFFFFFFFF)
    out[TAG_OFFSET:HEADER_BYTES] = _tag(key, out)
    return bytes(out)
