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
from ispeed.server.loop_lag import LoopLag
from ispeed.server.metrics import Metrics
from ispeed.server.privacy import ip_network, keyed_hash
from ispeed.server.registry import Registry
from ispeed.server.sockets import listening_sockets

log = logging.getLogger("ispeed.server.udp")


class ProbeEndpoint(asyncio.DatagramProtocol):
    """One bound UDP socket's protocol; the registry and the metrics are the app's."""

    def __init__(self, registry: Registry, secret: bytes, metrics: Metrics, lag: LoopLag | None = None) -> None:
        self.registry = registry
        self.lag = lag  # the serving loop's lateness: how long a datagram waited before this callback
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
        waited_ns = int(self.lag.now_ms() * 1e6) if self.lag is not None else 0
        phase.answered(now_ns, time.monotonic_ns(), waited_ns)
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
    """Bound UDP sockets for `host` (the dual-stack rule of `sockets.listening_sockets`), one port
    number (0: a free one); ConfigError naming --udp-port when the kernel refuses."""
    try:
        socks = listening_sockets(host, port, socket.SOCK_DGRAM)
    except ConfigError as exc:
        raise ConfigError(
            "--udp-port", port, f"cannot listen on UDP there ({exc}); choose another port, or off"
        ) from exc
    for sock in socks:
        sock.setblocking(False)
    return socks


async def listen(
    host: str,
    port: int,
    registry: Registry,
    secret: bytes,
    metrics: Metrics,
    fallback_free: bool = False,
    lag: LoopLag | None = None,
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
        transport, _ = await loop.create_datagram_endpoint(
            lambda: ProbeEndpoint(registry, secret, metrics, lag), sock=sock
        )
        transports.append(transport)
    bound = int(socks[0].getsockname()[1])
    log.info("answering UDP probes on port %d", bound)
    return bound, transports
