"""Read the kernel's TCP_INFO for a connected socket (Linux `struct tcp_info`)."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

_TCP_INFO = getattr(socket, "TCP_INFO", 11)
_SIZE = 232

# (name, offset, struct format) of the fields we use; offsets from linux/tcp.h.
_FIELDS = (
    ("retransmits", 2, "B"),
    ("rtt_us", 68, "I"),
    ("rttvar_us", 72, "I"),
    ("snd_cwnd", 80, "I"),
    ("total_retrans", 100, "I"),
    ("bytes_acked", 120, "Q"),
    ("bytes_received", 128, "Q"),
    ("segs_out", 136, "I"),
    ("min_rtt_us", 148, "I"),
    ("delivery_rate_Bps", 160, "Q"),
    ("busy_time_us", 168, "Q"),
    ("rwnd_limited_us", 176, "Q"),
    ("sndbuf_limited_us", 184, "Q"),
    ("bytes_sent", 200, "Q"),
    ("bytes_retrans", 208, "Q"),
)


@dataclass(frozen=True)
class TcpInfo:
    retransmits: int = 0
    rtt_us: int = 0
    rttvar_us: int = 0
    snd_cwnd: int = 0
    total_retrans: int = 0
    bytes_acked: int = 0
    bytes_received: int = 0
    segs_out: int = 0
    min_rtt_us: int = 0
    delivery_rate_Bps: int = 0
    busy_time_us: int = 0
    rwnd_limited_us: int = 0
    sndbuf_limited_us: int = 0
    bytes_sent: int = 0
    bytes_retrans: int = 0


READ_INTERVAL_S = 0.25   # streams re-read TCP_INFO this often; the last good reading counts


def read(sock: socket.socket | None) -> TcpInfo | None:
    """TCP_INFO of `sock`, or None when the socket is gone (closed by the peer) or not TCP."""
    if sock is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _SIZE)
    except (OSError, ValueError):  # uvloop's pseudo-socket raises ValueError once the fd is closed
        return None
    values = {}
    for name, offset, fmt in _FIELDS:
        end = offset + struct.calcsize(fmt)
        values[name] = struct.unpack_from("=" + fmt, raw, offset)[0] if len(raw) >= end else 0
    return TcpInfo(**values)
