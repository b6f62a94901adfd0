"""Measurement method v1: the throughput rule shared by client (download) and server (upload).

A phase is sampled as cumulative application bytes every ~100 ms. TCP ramp-up (slow start /
BBR startup, and the recovery of the losses they cause) is excluded by a fixed rule:

    ramp_s = min(max(RAMP_FRACTION × T, RAMP_MIN_S, RAMP_RTTS × rtt), RAMP_MAX_FRACTION × T)

where T is the phase length (first to last sample) and rtt the idle round-trip time. The RTT
term matters on long paths: startup overshoot drops packets, and until the retransmissions
fill those holes the receiver holds data back from the application; a window opened too early
then counts that backlog as if it arrived inside the window (measured: +1 to +3 % at
20 Mbit/s × 80 ms with 5 s phases, exact once the window opens after 25 RTTs). Throughput is the bytes between the
first sample at or after ramp_s and the last sample, over that interval. See spec/method-v1.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

METHOD_VERSION = "1"
SAMPLE_INTERVAL_S = 0.1
RAMP_FRACTION = 0.25
RAMP_MIN_S = 0.5
RAMP_MAX_FRACTION = 0.5
RAMP_RTTS = 25
MIN_LATENCY_PROBES = 10


def ramp_seconds(phase_s: float, rtt_ms: float | None = None) -> float:
    rtt_s = (rtt_ms or 0.0) / 1000
    return min(max(RAMP_FRACTION * phase_s, RAMP_MIN_S, RAMP_RTTS * rtt_s), RAMP_MAX_FRACTION * phase_s)


def steady_mbps(samples: Sequence[tuple[float, int]], rtt_ms: float | None = None) -> float:
    """Steady-state Mbit/s from (seconds since phase start, cumulative bytes) samples."""
    if len(samples) < 2:
        return 0.0
    t_end, b_end = samples[-1]
    t_ramp = ramp_seconds(t_end - samples[0][0], rtt_ms) + samples[0][0]
    for t, b in samples:
        if t >= t_ramp:
            t0, b0 = t, b
            break
    if t_end - t0 <= 0:
        t0, b0 = samples[0]
        if t_end - t0 <= 0:
            return 0.0
    return (b_end - b0) * 8 / (t_end - t0) / 1e6


def latency_summary(rtts_ms: Sequence[float]) -> tuple[float | None, float | None]:
    """(latency, jitter): median RTT, and mean absolute difference of consecutive RTTs."""
    if not rtts_ms:
        return None, None
    latency = statistics.median(rtts_ms)
    if len(rtts_ms) < 2:
        return latency, None
    jitter = sum(abs(b - a) for a, b in zip(rtts_ms, rtts_ms[1:])) / (len(rtts_ms) - 1)
    return latency, jitter
