"""ndt7 wire details: constants, query metadata, message-size scaling and measurement messages.

Everything here follows M-Lab's ndt7 specification (m-lab/ndt-server `spec/ndt7-protocol.md`,
v0.9+); our working notes are in `spec/ndt7-notes.md`. The kernel's `struct tcp_info` is read
in full (linux/tcp.h, `getsockopt(IPPROTO_TCP, TCP_INFO)`) and sent under the Go field names
of the reference server (`TCPInfo.MinRTT`, `BytesReceived`, …), all times in microseconds.
"""

from __future__ import annotations

import datetime as dt
import random
import socket
import struct
from collections.abc import Mapping
from typing import Any

from ispeed.core import tcpinfo
from ispeed.core.schema import NETWORK_TYPES

SUBPROTOCOL = "net.measurementlab.ndt.v7"  # Sec-WebSocket-Protocol (spec §"Protocol")
DOWNLOAD_PATH = "/ndt/v7/download"
UPLOAD_PATH = "/ndt/v7/upload"
INITIAL_MESSAGE_BYTES = 1 << 13  # spec: binary messages start at 8 KiB
MAX_SENT_MESSAGE_BYTES = 1 << 20  # reference server's cap (spec allows 2^24)
MAX_RECEIVED_MESSAGE_BYTES = 1 << 24  # receivers MUST accept at least 2^24 bytes
SCALING_FRACTION = 16  # double while size <= total / 16
MAX_QUERY_BYTES = 4096  # spec: query string at most 4 KiB
SUBTEST_S = 10.0  # spec: a subtest lasts ~10 s
HARD_LIMIT_S = 14.0  # spec: 13–15 s hard limit either side
MEASUREMENT_MEAN_S = 0.25  # random intervals, mean 250 ms
MEASUREMENT_MIN_S, MEASUREMENT_MAX_S = 0.025, 0.625  # clamped like the reference server
EARLY_EXIT_MB = {"250": 250_000_000}  # the only accepted early_exit value

_TCP_CONGESTION = getattr(socket, "TCP_CONGESTION", 13)
_TCP_CC_INFO = 26

_BBR_INFO = struct.Struct("=5I")  # struct tcp_bbr_info: bw_lo, bw_hi, min_rtt, pacing_gain, cwnd_gain


class QueryError(ValueError):
    """A query string that the spec says must be answered with 400 before the upgrade."""


def next_message_size(size: int, total_sent: int, cap: int = MAX_SENT_MESSAGE_BYTES) -> int:
    """Spec rule: after each send, double the size while size < cap and size <= total/16."""
    while size < cap and size <= total_sent // SCALING_FRACTION:
        size *= 2
    return min(size, cap)


def next_measurement_delay(rng: random.Random) -> float:
    """Seconds to the next measurement message: exponential, mean 250 ms, clamped 25–625 ms."""
    return min(max(rng.expovariate(1 / MEASUREMENT_MEAN_S), MEASUREMENT_MIN_S), MEASUREMENT_MAX_S)


def parse_query(query_string: str, query: Mapping[str, str], subtest: str) -> tuple[dict[str, str], int | None]:
    """(client metadata, early-exit byte limit) from the query; QueryError if it must be refused.

    Keys starting with `server_` are dropped (the spec reserves them); `early_exit` applies to
    the download only — ndt7-js sends the same metadata to both subtests, so upload ignores it.
    """
    if len(query_string.encode()) > MAX_QUERY_BYTES:
        raise QueryError(f"the query string is over {MAX_QUERY_BYTES} bytes")
    metadata: dict[str, str] = {}
    for key in query:
        if not key.startswith("server_") and key not in metadata:
            metadata[key[:64]] = query[key][:256]
    early_exit: int | None = None
    raw = query.get("early_exit")
    if raw is not None and subtest == "download":
        if raw not in EARLY_EXIT_MB:
            raise QueryError(f"early_exit must be one of {sorted(EARLY_EXIT_MB)}, got {raw[:20]!r}")
        early_exit = EARLY_EXIT_MB[raw]
    return metadata, early_exit


def client_label(metadata: Mapping[str, str], limit: int = 64) -> str:
    """`client_name/client_version (library/version)` for the result's client_version column."""
    name = metadata.get("client_name", "") or "unknown"
    label = f"{name}/{metadata.get('client_version', '')}".rstrip("/")
    lib = metadata.get("client_library_name", "")
    if lib:
        label += f" ({lib}/{metadata.get('client_library_version', '')})".replace("/)", ")")
    return label[:limit]


def declared_network_type(metadata: Mapping[str, str]) -> str | None:
    """Our extension: a `network_type` key (fixed / mobile / 5g) in the query; None when absent or
    not one of them (the server then decides from the other evidence, spec/evidence.md)."""
    value = metadata.get("network_type", "").lower()
    return value if value in NETWORK_TYPES else None


def addr(peer: Any) -> str:
    """`ip:port` or `[v6]:port` of a socket address tuple, as ConnectionInfo wants it."""
    if not isinstance(peer, (tuple, list)) or len(peer) < 2:
        return ""
    host, port = peer[0], peer[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def read_tcp_info(sock: socket.socket | None, elapsed_us: int) -> dict[str, int] | None:
    """The kernel's tcp_info as the ndt7 `TCPInfo` object, or None when the socket is gone."""
    info = tcpinfo.read_fields(sock)
    if info is not None:
        info["ElapsedTime"] = elapsed_us
    return info


def read_bbr_info(sock: socket.socket | None, elapsed_us: int) -> dict[str, int] | None:
    """`BBRInfo` (BW in bytes/s, MinRTT in µs, gains) when the socket uses BBR, else None."""
    if sock is None:
        return None
    try:
        cc = sock.getsockopt(socket.IPPROTO_TCP, _TCP_CONGESTION, 16).split(b"\0", 1)[0]
        if cc != b"bbr":
            return None
        raw = sock.getsockopt(socket.IPPROTO_TCP, _TCP_CC_INFO, _BBR_INFO.size)
    except (OSError, ValueError):
        return None
    if len(raw) < _BBR_INFO.size:
        return None
    bw_lo, bw_hi, min_rtt, pacing_gain, cwnd_gain = _BBR_INFO.unpack(raw)
    return {
        "BW": (bw_hi << 32) | bw_lo,
        "MinRTT": min_rtt,
        "PacingGain": pacing_gain,
        "CwndGain": cwnd_gain,
        "ElapsedTime": elapsed_us,
    }


def connection_info(client: str, server: str, uuid: str, started: dt.datetime) -> dict[str, str]:
    return {
        "Client": client,
        "Server": server,
        "UUID": uuid,
        "StartTime": started.isoformat(timespec="microseconds").replace("+00:00", "Z"),
    }


def measurement(
    subtest: str,
    elapsed_us: int,
    num_bytes: int,
    tcp: dict[str, int] | None,
    bbr: dict[str, int] | None = None,
    conn: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One server measurement message (spec §"Measurement message")."""
    msg: dict[str, Any] = {
        "AppInfo": {"ElapsedTime": elapsed_us, "NumBytes": num_bytes},
        "Origin": "server",
        "Test": subtest,
    }
    if conn is not None:
        msg["ConnectionInfo"] = conn
    if tcp is not None:
        msg["TCPInfo"] = tcp
    if bbr is not None:
        msg["BBRInfo"] = bbr
    return msg
