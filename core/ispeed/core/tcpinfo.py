"""Read the kernel's TCP_INFO for a connected socket (Linux `struct tcp_info`, linux/tcp.h).

One parser for server and client: `read_fields` gives every field under the names M-Lab's ndt7
uses (the kernel's names in CamelCase); `read` condenses the ones our counters keep.
"""

from __future__ import annotations

import socket
import struct
import sys
from dataclasses import dataclass
from typing import NamedTuple

_TCP_INFO = getattr(socket, "TCP_INFO", 11)
_TCP_INFO_SIZE = 232
READ_INTERVAL_S = 0.25  # streams re-read TCP_INFO this often; the last good reading counts

# After the 8 leading u8 fields (state … app_limited), in kernel order.
LAYOUT = (
    ("RTO", "I"),
    ("ATO", "I"),
    ("SndMSS", "I"),
    ("RcvMSS", "I"),
    ("Unacked", "I"),
    ("Sacked", "I"),
    ("Lost", "I"),
    ("Retrans", "I"),
    ("Fackets", "I"),
    ("LastDataSent", "I"),
    ("LastAckSent", "I"),
    ("LastDataRecv", "I"),
    ("LastAckRecv", "I"),
    ("PMTU", "I"),
    ("RcvSsThresh", "I"),
    ("RTT", "I"),
    ("RTTVar", "I"),
    ("SndSsThresh", "I"),
    ("SndCwnd", "I"),
    ("AdvMSS", "I"),
    ("Reordering", "I"),
    ("RcvRTT", "I"),
    ("RcvSpace", "I"),
    ("TotalRetrans", "I"),
    ("PacingRate", "Q"),
    ("MaxPacingRate", "Q"),
    ("BytesAcked", "Q"),
    ("BytesReceived", "Q"),
    ("SegsOut", "I"),
    ("SegsIn", "I"),
    ("NotsentBytes", "I"),
    ("MinRTT", "I"),
    ("DataSegsIn", "I"),
    ("DataSegsOut", "I"),
    ("DeliveryRate", "Q"),
    ("BusyTime", "Q"),
    ("RWndLimited", "Q"),
    ("SndBufLimited", "Q"),
    ("Delivered", "I"),
    ("DeliveredCE", "I"),
    ("BytesSent", "Q"),
    ("BytesRetrans", "Q"),
    ("DSackDups", "I"),
    ("ReordSeen", "I"),
    ("RcvOooPack", "I"),
    ("SndWnd", "I"),
)
_STRUCT = struct.Struct("=8B" + "".join(fmt for _, fmt in LAYOUT))


def read_fields(sock: socket.socket | None) -> dict[str, int] | None:
    """Every tcp_info field by name, or None when the socket is gone (closed by the peer) or not TCP."""
    if sock is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCP_INFO_SIZE)
    except (OSError, ValueError):  # uvloop's pseudo-socket raises ValueError once the fd is closed
        return None
    values = _STRUCT.unpack_from(raw.ljust(_STRUCT.size, b"\0"))  # older kernels: a shorter struct
    state, ca_state, retransmits, probes, backoff, options, wscale, app_limited = values[:8]
    info = {
        "State": state,
        "CAState": ca_state,
        "Retransmits": retransmits,
        "Probes": probes,
        "Backoff": backoff,
        "Options": options,
        "WScale": wscale,
        "AppLimited": app_limited & 1,
    }
    info.update(zip((name for name, _ in LAYOUT), values[8:], strict=True))
    return info


@dataclass(frozen=True)
class TcpInfo:
    """What the per-test counters keep of one connection's tcp_info."""

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
    rcv_rtt_us: int = 0  # the receiver's round-trip estimate (`tcpi_rcv_rtt`): an upload's working latency


_KEEP = {
    "retransmits": "Retransmits",
    "rtt_us": "RTT",
    "rttvar_us": "RTTVar",
    "snd_cwnd": "SndCwnd",
    "total_retrans": "TotalRetrans",
    "bytes_acked": "BytesAcked",
    "bytes_received": "BytesReceived",
    "segs_out": "SegsOut",
    "min_rtt_us": "MinRTT",
    "delivery_rate_Bps": "DeliveryRate",
    "busy_time_us": "BusyTime",
    "rwnd_limited_us": "RWndLimited",
    "sndbuf_limited_us": "SndBufLimited",
    "bytes_sent": "BytesSent",
    "bytes_retrans": "BytesRetrans",
    "rcv_rtt_us": "RcvRTT",
}


def read(sock: socket.socket | None) -> TcpInfo | None:
    """The condensed TCP_INFO of `sock`, or None when the socket is gone."""
    fields = read_fields(sock)
    return None if fields is None else TcpInfo(**{k: fields[v] for k, v in _KEEP.items()})


_OOO_FIELD = [name for name, _ in LAYOUT].index("RcvOooPack")
_OOO_OFFSET = struct.calcsize("=8B" + "".join(fmt for _, fmt in LAYOUT[:_OOO_FIELD]))  # 224
_OOO_END = _OOO_OFFSET + 4


def ooo_packets(sock: socket.socket | None) -> int | None:
    """The receiver's count of packets that arrived out of order (`tcpi_rcv_ooopack`, Linux 5.4+):
    None when the socket is gone or the kernel's tcp_info is too short to hold it."""
    if sock is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _OOO_END)
    except (OSError, ValueError):
        return None
    return int.from_bytes(raw[_OOO_OFFSET:_OOO_END], sys.byteorder) if len(raw) >= _OOO_END else None


class SenderProgress(NamedTuple):
    """A sending socket's progress: what its peer acknowledged, and whether a hole is open."""

    bytes_acked: int  # `tcpi_bytes_acked`: cumulatively acknowledged by the peer
    sacked: int  # segments selectively acknowledged above a hole (0: no hole now)
    lost: int  # segments the sender counts as lost and not yet repaired
    total_retrans: int  # retransmitted segments over the connection's life
    min_rtt_us: int


_NAMES = [name for name, _ in LAYOUT]
_SENDER_FIELDS = tuple(8 + _NAMES.index(n) for n in ("BytesAcked", "Sacked", "Lost", "TotalRetrans", "MinRTT"))


def sender_progress(sock: socket.socket | None) -> SenderProgress | None:
    """The sending side's progress of `sock` (one getsockopt), or None when the socket is gone."""
    if sock is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCP_INFO_SIZE)
    except (OSError, ValueError):
        return None
    values = _STRUCT.unpack_from(raw.ljust(_STRUCT.size, b"\0"))
    return SenderProgress(*(values[i] for i in _SENDER_FIELDS))


class OooCounter:
    """Out-of-order packets received over a set of sockets that come and go (streams reconnect).

    `total()` reads each watched socket and adds what it gained since its last reading, so a
    connection that closes keeps what it counted. `known` is False when no socket could be read
    (no sockets, or a kernel without the field): the count then says nothing.
    """

    def __init__(self) -> None:
        self._last: dict[socket.socket, int] = {}
        self._total = 0
        self.known = False

    def watch(self, sock: socket.socket | None) -> None:
        if sock is not None and sock not in self._last:
            n = ooo_packets(sock)
            if n is not None:
                self._last[sock] = n  # a reused connection's earlier count is not this phase's
                self.known = True

    def unwatch(self, sock: socket.socket | None) -> None:
        if sock in self._last:
            self._read(sock)
            del self._last[sock]

    def total(self) -> int:
        for sock in list(self._last):
            self._read(sock)
        return self._total

    def _read(self, sock: socket.socket) -> None:
        n = ooo_packets(sock)
        if n is not None and n > self._last[sock]:
            self._total += n - self._last[sock]
            self._last[sock] = n
