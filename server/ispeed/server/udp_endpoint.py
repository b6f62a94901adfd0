"""The UDP probe endpoint (method v2): count each test's probes, answer the genuine ones, nothing else.

A datagram is answered only when all of these hold, checked cheapest first: its size is within
[MIN_PROBE_BYTES, MAX_PROBE_BYTES] and its header is a probe's (not an echo); its test is known,
not submitted and within its deadline; its tag is the test's key's; it comes from the network
(/24, /48) that took the token; its sequence number is new and within the phase's bounds; the
test's answer budget (ANSWER_RATE_PER_S, bursts of ANSWER_BURST) has room. The answer has the
probe's length, so the port can never send more bytes than it receives, and a stranger without
a token gets nothing. Each refusal is counted in /metrics (`udp_refused_<why>_total`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from typing import Any, cast

from ispeed.core import udp_probe
from ispeed.core.errors import ConfigError
from ispeed.server.metrics import Metrics
from ispeed.server.privacy import ip_network, keyed_hash
from ispeed.server.registry import Registry

log = logging.getLogger("ispeed.server.udp")


class ProbeEndpoint(asyncio.DatagramProtocol):
    """One bound UDP socket's protocol; the registry and the metrics are the app's."""

    def __init__(self, registry: Registry, secret: bytes, metrics: Metrics) -> None:
        self.registry = registry
        self.secret = secret
        self.counters = metrics.counters
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # not a subclass in every Python

    def error_received(self, exc: Exception) -> None:  # an ICMP error for an earlier answer
        self.counters["udp_send_errors_total"] += 1

    def datagram_received(self, data: bytes, addr: Any) -> None:
        now_ns = time.monotonic_ns()
        counters = self.counters
        counters["udp_datagrams_total"] += 1
        counters["udp_bytes_in_total"] += len(data)
        probe = udp_probe.parse(data)
        if probe is None or probe.is_echo:
            counters["udp_refused_malformed_total"] += 1
            return
        state = self.registry.get(udp_probe.id_text(probe.test_id))
        if state is None or state.udp is None:
            counters["udp_refused_unknown_test_total"] += 1
            return
        if state.submitted or now_ns / 1e9 > state.deadline:
            counters["udp_refused_expired_total"] += 1
            return
        test = state.udp
        if not udp_probe.tag_ok(test.key, data):
            counters["udp_refused_tag_total"] += 1
            return
        if addr != test.peer:
            if keyed_hash(self.secret, "net", ip_network(_unmapped(addr[0]))) != state.claims.net_hash:
                counters["udp_refused_network_total"] += 1
                return
            test.peer = addr
        phase = test.phases[probe.phase]
        arrival = phase.arrive(probe.seq, now_ns)
        if arrival < 0:
            counters["udp_refused_duplicate_total" if arrival == -1 else "udp_refused_sequence_total"] += 1
            return
        counters["udp_probes_total"] += 1
        if not test.may_answer(now_ns):
            phase.refused += 1
            counters["udp_refused_rate_total"] += 1
            return
        answer = udp_probe.echo(test.key, data, arrival)
        assert self.transport is not None and len(answer) == len(data)
        self.transport.sendto(answer, addr)
        phase.answered(now_ns, time.monotonic_ns())
        counters["udp_echoes_total"] += 1
        counters["udp_bytes_out_total"] += len(answer)


def _unmapped(host: str) -> str:
    """An IPv4-mapped IPv6 peer (a dual-stack socket's IPv4 client) as its IPv4 address."""
    if host.startswith("::ffff:"):
        mapped = ipaddress.IPv6Address(host.split("%", 1)[0]).ipv4_mapped
        if mapped is not None:
            return str(mapped)
    return host


def udp_sockets(host: str, port: int) -> list[socket.socket]:
    """Bound UDP sockets for every address of `host`, one port number (0: a free one); ConfigError
    naming --udp-port when the kernel refuses.

    One small function so the server's shared socket helper (dual-stack listening) can replace it.
    """
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError("--host", host, f"cannot resolve it ({exc.strerror})") from exc
    socks: list[socket.socket] = []
    try:
        infos.sort(key=lambda info: info[0] != socket.AF_INET6)  # a dual-stack `::` before 0.0.0.0
        for family, kind, proto, _, address in dict.fromkeys((i[0], i[1], i[2], "", i[4]) for i in infos):
            if address[0] == "0.0.0.0" and any(s.getsockname()[0] == "::" for s in socks):
                continue  # the dual-stack wildcard takes IPv4 already
            sock = socket.socket(family, kind, proto)
            socks.append(sock)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 peers too (mapped)
            bound_port = socks[0].getsockname()[1] if len(socks) > 1 else port  # the first one's number
            sock.bind((address[0], bound_port, *address[2:]))
            sock.setblocking(False)
    except OSError as exc:
        for sock in socks:
            sock.close()
        raise ConfigError(
            "--udp-port", port, f"cannot listen on UDP there ({exc.strerror or exc}); choose another port, or off"
        ) from exc
    return socks


async def listen(
    host: str, port: int, registry: Registry, secret: bytes, metrics: Metrics, fallback_free: bool = False
) -> tuple[int, list[asyncio.DatagramTransport]]:
    """Start answering probes on `host`:`port`; (the port bound, the transports to close).

    `fallback_free`: when that port is taken, take a free one (the TCP port was itself chosen free).
    """
    try:
        socks = udp_sockets(host, port)
    except ConfigError:
        if not fallback_free:
            raise
        socks = udp_sockets(host, 0)
    loop = asyncio.get_running_loop()
    transports = []
    for sock in socks:
        transport, _ = await loop.create_datagram_endpoint(lambda: ProbeEndpoint(registry, secret, metrics), sock=sock)
        transports.append(transport)
    bound = int(socks[0].getsockname()[1])
    log.info("answering UDP probes on port %d", bound)
    return bound, transports
