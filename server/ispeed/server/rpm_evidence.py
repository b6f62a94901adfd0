"""What this server's kernel saw of a test's responsiveness probes, per phase (spec/method-v2.md).

For each foreign probe (`GET /api/v1/rpm` on a new connection) the connection's TCP_INFO gives
the handshake's round trip as the server measured it (SYN-ACK out to the client's ACK in: it
crosses both directions' queues, as the client's own connect time does, and a client cannot
make it shorter than the path) and how long the request's bytes waited in this server before it
answered (`tcpi_last_data_recv`). The transfer connections add their smoothed round trip
(`tcpi_rtt` of download connections, the receiver's `tcpi_rcv_rtt` of upload ones): the
draft's stand-in for self probes where requests cannot be multiplexed on loaded connections.

The client's RPM of a phase is checked against `server_rpm` (60000 / trimmed mean of the
handshakes): a client figure above it by more than RPM_TOLERANCE, or a figure for a phase in
which the server saw fewer than MIN_PROBES foreign probes, is stored flagged `rpm_disagrees`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ispeed.core import responsiveness

PHASES = ("idle", "download", "upload")
RPM_TOLERANCE = 0.25  # honest clients read at or below the server's handshake RPM (see the spec)
MAX_PROBES_PER_TEST = 200  # the client sends at most 10 idle + 60 per transfer phase
# a test whose probes waited here longer than this (99th percentile) is `server_delayed`: ten
# times what 64 loopback clients saw with the probe thread (p99 1.9-2.8 ms), 3-4 times it without
# real-time scheduling (5.5-6 ms with 16), and below what probes answered on the main loop
# (--probes-inline) waited under load (spec/method-v2.md, "Server-added delay")
SERVER_DELAY_BOUND_MS = 20.0


@dataclass
class RpmEvidence:
    """One test's foreign probes and loaded round trips, as this server measured them."""

    handshakes_ms: dict[str, list[float]] = field(default_factory=dict)  # phase -> handshake RTTs
    loaded_rtt_ms: dict[str, list[float]] = field(default_factory=dict)  # phase -> transfer connections' RTT
    probes: int = 0  # every probe answered, whatever its phase
    proxied: bool = False  # probes came through a reverse proxy: its handshakes are not the client's

    def add_probe(self, phase: str, handshake_ms: float | None, proxied: bool = False) -> None:
        self.probes += 1
        self.proxied = self.proxied or proxied
        if handshake_ms is not None and phase in PHASES and not proxied:
            self.handshakes_ms.setdefault(phase, []).append(handshake_ms)

    def add_loaded(self, phase: str, rtt_ms: float) -> None:
        if rtt_ms > 0:
            self.loaded_rtt_ms.setdefault(phase, []).append(rtt_ms)

    def count(self, phase: str) -> int:
        """Foreign probes with handshake evidence in `phase`; -1: no evidence can be had (proxied)."""
        return -1 if self.proxied else len(self.handshakes_ms.get(phase, ()))

    def server_rpm(self, phase: str) -> float | None:
        """60000 / trimmed mean of the phase's handshake round trips; None under MIN_PROBES."""
        values = self.handshakes_ms.get(phase, [])
        mean = responsiveness.trimmed_mean(values) if len(values) >= responsiveness.MIN_PROBES else None
        return None if mean is None else responsiveness.rpm_of(mean)

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        """Per phase: probes, trimmed-mean handshake and loaded round trips (ms), the server's RPM."""
        out: dict[str, dict[str, float | int | None]] = {}
        for phase in PHASES:
            handshake = responsiveness.trimmed_mean(self.handshakes_ms.get(phase, []))
            loaded = responsiveness.trimmed_mean(self.loaded_rtt_ms.get(phase, []))
            rpm = self.server_rpm(phase)
            out[phase] = {
                "probes": self.count(phase),
                "handshake_ms": None if handshake is None else round(handshake, 3),
                "loaded_rtt_ms": None if loaded is None else round(loaded, 3),
                "rpm": None if rpm is None else round(rpm, 1),
            }
        return out


def disagreement(phase: str, claimed: float | None, probes: int, server_rpm: float | None) -> str:
    """'' when a client's RPM of `phase` agrees with the server's evidence, else why not.

    `probes` < 0: there is no evidence to check against (a receipt from a server before method v2,
    or probes through a trusted reverse proxy, whose connections are the proxy's): no check.
    """
    if claimed is None or probes < 0:
        return ""
    if probes < responsiveness.MIN_PROBES or server_rpm is None:
        return (
            f"rpm_disagrees: an RPM of {claimed:.0f} for the {phase} phase, in which this server "
            f"answered {probes} responsiveness probes (at least {responsiveness.MIN_PROBES} are needed)"
        )
    if claimed > server_rpm * (1 + RPM_TOLERANCE):
        return (
            f"rpm_disagrees: {phase} RPM {claimed:.0f} is more than {RPM_TOLERANCE:.0%} above the "
            f"{server_rpm:.0f} of the handshakes this server timed"
        )
    return ""


def delay_p99(delays_ms: Sequence[float]) -> float | None:
    """99th percentile (nearest rank) of the time the test's probes waited in this server, ms."""
    if not delays_ms:
        return None
    ordered = sorted(delays_ms)
    return round(ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)], 3)
