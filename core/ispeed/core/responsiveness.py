"""Responsiveness (round trips per minute) as draft-ietf-ippm-responsiveness-09 aggregates it.

Shared by the client (its figure, from the probes it timed) and the server (its check of that
figure against what its own kernel saw). spec/method-v2.md, "Responsiveness (RPM)".

- Probe times are aggregated with a single-sided trimmed mean that keeps the lowest 95 %
  (the draft's TMP): the largest floor(5 % × n) values are dropped.
- TCP only (plain HTTP): foreign = 60000 / ((TM(tcp_f) + TM(http_f)) / 2); with TLS the
  normalised handshake joins with equal weight: 60000 / ((TM(tcp_f) + TM(tls_f) + TM(http_f)) / 3).
- self (loaded) = 60000 / TM(http_l); RPM = (foreign + self) / 2.
- Classes (the draft's section "Round-Trips per Minute"): Poor at 300 RPM (200 ms) or less,
  Fair below 1000 (60 ms), Good below 6000 (10 ms), Excellent from 6000.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

DRAFT = "draft-ietf-ippm-responsiveness-09"
TRIM_KEEP = 0.95  # TMP: the trimmed mean keeps the lowest 95 % of the values
MIN_PROBES = 5  # of each kind (foreign, self) in a phase for an RPM of that phase
MS_PER_MINUTE = 60_000.0
EXCELLENT_FROM_RPM = 6000.0  # 10 ms
GOOD_FROM_RPM = 1000.0  # 60 ms
POOR_TO_RPM = 300.0  # 200 ms: "300 RPM or worse" is poor


def trimmed_mean(values: Sequence[float]) -> float | None:
    """Mean of the lowest 95 % (the largest floor(0.05 × n) dropped); None for no values."""
    if not values:
        return None
    kept = sorted(values)[: len(values) - math.floor(len(values) * (1 - TRIM_KEEP) + 1e-9)]
    return sum(kept) / len(kept)


def rpm_of(ms: float) -> float:
    """Round trips per minute of one round trip of `ms` milliseconds."""
    return MS_PER_MINUTE / max(ms, 1e-3)


@dataclass(frozen=True)
class Responsiveness:
    """One phase's responsiveness and what it rests on (trimmed means in ms, probe counts)."""

    rpm: float
    foreign_rpm: float
    self_rpm: float
    tcp_ms: float
    http_ms: float
    self_ms: float
    tls_ms: float | None
    foreign_probes: int
    self_probes: int

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "rpm": round(self.rpm, 1),
            "foreign_rpm": round(self.foreign_rpm, 1),
            "self_rpm": round(self.self_rpm, 1),
            "tcp_ms": round(self.tcp_ms, 3),
            "tls_ms": None if self.tls_ms is None else round(self.tls_ms, 3),
            "http_ms": round(self.http_ms, 3),
            "self_ms": round(self.self_ms, 3),
            "foreign_probes": self.foreign_probes,
            "self_probes": self.self_probes,
        }


def responsiveness(
    tcp_ms: Sequence[float],
    http_ms: Sequence[float],
    self_ms: Sequence[float],
    tls_ms: Sequence[float] | None = None,
    min_probes: int = MIN_PROBES,
) -> Responsiveness | None:
    """The draft's RPM of one phase from its foreign probes (TCP handshake, normalised TLS
    handshake when TLS was used, HTTP request: one value each per probe) and its self probes
    (round trips on a loaded connection); None with fewer than `min_probes` of either kind."""
    if min(len(tcp_ms), len(http_ms)) < min_probes or len(self_ms) < min_probes:
        return None
    tm_tcp, tm_http, tm_self = trimmed_mean(tcp_ms), trimmed_mean(http_ms), trimmed_mean(self_ms)
    assert tm_tcp is not None and tm_http is not None and tm_self is not None
    tm_tls = trimmed_mean(tls_ms) if tls_ms else None
    parts = [tm_tcp, tm_http] if tm_tls is None else [tm_tcp, tm_tls, tm_http]
    foreign = rpm_of(sum(parts) / len(parts))
    loaded = rpm_of(tm_self)
    return Responsiveness(
        rpm=(foreign + loaded) / 2,
        foreign_rpm=foreign,
        self_rpm=loaded,
        tcp_ms=tm_tcp,
        http_ms=tm_http,
        self_ms=tm_self,
        tls_ms=tm_tls,
        foreign_probes=min(len(tcp_ms), len(http_ms)),
        self_probes=len(self_ms),
    )


def label(rpm: float | None) -> str | None:
    """The draft's class of an RPM: Excellent, Good, Fair or Poor (None when not measured)."""
    if rpm is None:
        return None
    if rpm >= EXCELLENT_FROM_RPM:
        return "Excellent"
    if rpm >= GOOD_FROM_RPM:
        return "Good"
    return "Fair" if rpm > POOR_TO_RPM else "Poor"
