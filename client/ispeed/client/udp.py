"""UDP loss and delay probes of one test (method v2): paced probes per phase, their echoes counted and timed.

The idle phase sends `count` probes at `rate_per_s` (default 300 at 100/s) beside the WebSocket
idle probes; the transfer phases send LOADED_RATE_PER_S while their streams run. Echoes are
matched by phase and sequence number whenever they arrive, so a late echo still counts for its
own phase; after the last phase `drain()` waits for the ones still on their way. No echo within
BLOCKED_AFTER_S of the first probe (or an ICMP unreachable before any echo) means UDP is
blocked on this path: probing stops and the test goes on without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from ispeed.core import quality, udp_probe
from ispeed.core.udp_probe import BLOCKED_AFTER_S, LOADED_RATE_PER_S, PHASES, PROBE_BYTES

log = logging.getLogger("ispeed.client.udp")
SO_TIMESTAMPNS = 35  # Linux (asm-generic/socket.h): each datagram's kernel receive time, struct timespec
_CMSG_BYTES = socket.CMSG_SPACE(16) if hasattr(socket, "CMSG_SPACE") else 0
DRAIN_MIN_S = 0.5  # after the last probe, wait at least this for echoes still on their way ...
DRAIN_MAX_S = 3.0  # ... and at most this (or 3 × the slowest round trip seen, if longer than the minimum)


class _Phase:
    """One phase's probes as the client sent them and their echoes as they came back."""

    def __init__(self) -> None:
        self.sent = 0
        self.rtt_by_seq: dict[int, float] = {}
        self.duplicates = 0
        self.reordered = 0
        self.max_arrival = -1

    def echo(self, seq: int, arrival: int, rtt_ms: float) -> None:
        if seq >= self.sent:
            return  # never sent by this client: not an echo of ours
        if seq in self.rtt_by_seq:
            self.duplicates += 1
            return
        if arrival < self.max_arrival:
            self.reordered += 1  # the server sent it before an echo that came earlier
        self.max_arrival = max(self.max_arrival, arrival)
        self.rtt_by_seq[seq] = rtt_ms

    def counts(self) -> dict[str, Any]:
        """The client's counts and round trips (core.quality.PHASE_FIELDS)."""
        rtts = [self.rtt_by_seq[s] for s in sorted(self.rtt_by_seq)]  # in sending order, for the jitter
        median, p90, jitter = quality.rtt_summary(rtts)
        return {
            "probes": self.sent,
            "echoes": len(self.rtt_by_seq),
            "duplicates": self.duplicates,
            "reordered": self.reordered,
            "rtt_ms": None if median is None else round(median, 3),
            "rtt_p90_ms": None if p90 is None else round(p90, 3),
            "jitter_ms": None if jitter is None else round(jitter, 3),
        }


class UdpProber:
    """Sends one test's probes on a connected UDP socket and takes its echoes.

    An echo's round trip ends at the kernel's receive time of the datagram (`SO_TIMESTAMPNS`, on
    Linux), not when this process got round to reading it: a busy client machine does not
    lengthen the path's round trip. Elsewhere the reading time stands in (`kernel_stamps` False).
    """

    def __init__(self, key: bytes, test_id: str, size: int = PROBE_BYTES) -> None:
        self.key = key
        self.test_id = udp_probe.id_bytes(test_id)
        self.size = size
        self.phases = [_Phase() for _ in PHASES]
        self.sock: socket.socket | None = None
        self.kernel_stamps = False
        self.unreachable = False  # an ICMP error came back (port unreachable, ...)
        self.echoes = 0
        self.foreign = 0  # datagrams that were not genuine echoes of this test
        self.unsent = 0  # probes the socket's buffer had no room for
        self.blocked = False
        self._sender: asyncio.Task[None] | None = None

    # -- the socket ----------------------------------------------------------------------------
    def attach(self, sock: socket.socket) -> None:
        """Read echoes from `sock` (connected, non-blocking) as they arrive."""
        self.sock = sock
        if sys.platform == "linux":
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                self.kernel_stamps = True
            except OSError:
                pass
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        assert self.sock is not None
        for _ in range(64):  # bounded per wake-up: the sender gets its turn
            try:
                data, ancillary, _, _ = self.sock.recvmsg(udp_probe.MAX_PROBE_BYTES + 1, _CMSG_BYTES)
            except BlockingIOError:
                return
            except OSError as exc:  # an ICMP error on the connected socket: unreachable, refused
                self.unreachable = True
                log.debug("UDP probe error: %s", exc)
                return
            self._echo(data, _arrival_ns(ancillary))

    def _echo(self, data: bytes, arrived_ns: int) -> None:
        probe = udp_probe.parse(data)
        if probe is None or not probe.is_echo or probe.test_id != self.test_id or not udp_probe.tag_ok(self.key, data):
            self.foreign += 1
            return
        self.echoes += 1
        self.phases[probe.phase].echo(probe.seq, probe.arrival, (arrived_ns - probe.sent_ns) / 1e6)

    # -- sending -----------------------------------------------------------------------------
    def _send(self, phase: int) -> None:
        p = self.phases[phase]
        data = udp_probe.pack(self.key, self.test_id, phase, p.sent, time.monotonic_ns(), self.size)
        p.sent += 1
        assert self.sock is not None
        try:
            self.sock.send(data)
        except BlockingIOError:
            self.unsent += 1  # counted as sent: the server sees the gap as upstream loss, which it is, locally
        except OSError as exc:
            self.unreachable = True
            log.debug("UDP probe error: %s", exc)

    async def paced(self, phase: int, rate_per_s: float, count: int | None = None) -> None:
        """Send probes of `phase` every 1/rate s (`count` of them, or until cancelled). A late wake-up
        does not send a burst to catch up: the pace restarts from then."""
        loop = asyncio.get_running_loop()
        interval = 1.0 / rate_per_s
        started = next_at = loop.time()
        while not self.blocked and (count is None or self.phases[phase].sent < count):
            self._send(phase)
            if not self.echoes and (self.unreachable or loop.time() - started >= BLOCKED_AFTER_S):
                self.blocked = True  # nothing came back: UDP does not pass on this path
                break
            next_at += interval
            now = loop.time()
            if next_at < now - interval:
                next_at = now
            await asyncio.sleep(max(0.0, next_at - now))

    def start_idle(self, count: int, rate_per_s: float) -> None:
        """Start the idle phase: `count` probes at `rate_per_s` (`idle_done()` waits for it)."""
        self._sender = asyncio.create_task(self._idle(count, rate_per_s))

    async def idle_done(self) -> None:
        if self._sender is not None:
            await self._sender
            self._sender = None

    async def _idle(self, count: int, rate_per_s: float) -> None:
        """The idle probes; then, if none came back yet, up to BLOCKED_AFTER_S for the first echo."""
        await self.paced(0, rate_per_s, count)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BLOCKED_AFTER_S
        while not self.blocked and not self.echoes:
            if self.unreachable or loop.time() >= deadline:
                self.blocked = True
                break
            await asyncio.sleep(0.01)

    def start(self, phase_name: str, rate_per_s: float = LOADED_RATE_PER_S) -> None:
        """Probe a transfer phase until `stop()`."""
        if not self.blocked:
            self._sender = asyncio.create_task(self.paced(PHASES.index(phase_name), rate_per_s))

    async def stop(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
            self._sender = None

    async def drain(self) -> None:
        """Wait for echoes still on their way: until every probe is answered, or DRAIN_MIN_S (longer
        when round trips were slow: 3 × the slowest, at most DRAIN_MAX_S)."""
        if self.blocked:
            return
        slowest_s = max((max(p.rtt_by_seq.values(), default=0.0) for p in self.phases), default=0.0) / 1000
        wait_s = min(max(DRAIN_MIN_S, 3 * slowest_s), DRAIN_MAX_S)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while loop.time() < deadline and any(len(p.rtt_by_seq) < p.sent for p in self.phases):
            await asyncio.sleep(0.02)

    def close(self) -> None:
        """Stop sending (a test that failed midway) and close the socket."""
        if self._sender is not None:
            self._sender.cancel()
            self._sender = None
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None

    # -- results -------------------------------------------------------------------------------
    @property
    def status(self) -> str:
        return quality.UDP_BLOCKED if self.blocked else quality.UDP_OK

    def counts(self) -> dict[str, dict[str, Any]]:
        return {name: phase.counts() for name, phase in zip(PHASES, self.phases, strict=True) if phase.sent}


async def open_prober(base_url: str, offer: Any, test_id: str, server_address: str = "") -> UdpProber | None:
    """A prober toward the UDP port the server offered (`udp` of POST /api/v1/tests), None when it
    offered none; a path where no UDP socket can even be opened counts as blocked. `server_address`: the
    server address the test's TCP connections are pinned to (the same IP family: the server
    answers probes only from the network that took the token)."""
    if not isinstance(offer, dict) or not isinstance(offer.get("port"), int) or not isinstance(offer.get("key"), str):
        return None
    try:
        prober = UdpProber(udp_probe.decode_key(offer["key"]), test_id)
    except ValueError:
        log.info("the server's UDP key %r is not base64url: no UDP probes", offer["key"][:20])
        return None
    host = server_address or urlsplit(base_url).hostname or ""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, offer["port"], type=socket.SOCK_DGRAM)
        family, _, proto, _, address = sorted(infos, key=lambda info: info[0] != socket.AF_INET)[0]  # IPv4 first
        sock = socket.socket(family, socket.SOCK_DGRAM, proto)
        try:
            sock.setblocking(False)
            sock.connect(address)  # UDP: no packet; ICMP errors now reach this socket
        except OSError:
            sock.close()
            raise
        prober.attach(sock)
    except OSError as exc:
        log.info("no UDP socket toward %s:%s (%s): UDP counts as blocked", host, offer["port"], exc)
        prober.blocked = True
    return prober


def _arrival_ns(ancillary: list[tuple[int, int, bytes]]) -> int:
    """The datagram's arrival on the monotonic clock: the kernel's receive time (realtime,
    converted) when it came along, else now."""
    now = time.monotonic_ns()
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
            seconds, nanoseconds = struct.unpack("@qq", value[:16])
            stamp_ns = int(seconds) * 1_000_000_000 + int(nanoseconds)
            return min(now, stamp_ns - (time.time_ns() - now))
    return now


def report(prober: UdpProber | None, server_udp: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the `ispeed test --json` fields, the submission's fields) of the UDP probes.

    Figures follow core.quality.phase_figures on the server's counts (GET /api/v1/tests/{id}) and
    this client's, so they are the ones the server stores.
    """
    out: dict[str, Any] = {
        "udp": None,
        "udp_probes": None,
        "loss_down_pct": None,
        "loss_up_pct": None,
        "udp_rtt_ms": None,
        "udp_rtt_p90_ms": None,
        "phases": None,
    }
    if prober is None:
        return out, {}
    out["udp"] = prober.status
    server = server_udp if isinstance(server_udp, dict) else {}
    if prober.blocked:
        out["udp_probes"] = int((server.get("idle") or {}).get("probes") or 0)
        return out, {"udp_status": prober.status}
    mine = prober.counts()
    phases = {name: quality.phase_figures(server.get(name), mine.get(name)) for name in PHASES if name in mine}
    idle = phases.get("idle", {})
    out.update(
        udp_probes=idle.get("probes"),
        loss_down_pct=idle.get("loss_down_pct"),
        loss_up_pct=idle.get("loss_up_pct"),
        udp_rtt_ms=idle.get("rtt_ms"),
        udp_rtt_p90_ms=idle.get("rtt_p90_ms"),
        phases=phases,
    )
    return out, {"udp_status": prober.status, "quality_phases": json.dumps(mine, separators=(",", ":"))}


@contextlib.asynccontextmanager
async def probing(base_url: str, offer: Any, test_id: str, enabled: bool = True, server_address: str = "") -> Any:
    """`open_prober` as a context: the socket is closed however the test ends."""
    prober = await open_prober(base_url, offer, test_id, server_address) if enabled else None
    try:
        yield prober
    finally:
        if prober is not None:
            prober.close()
