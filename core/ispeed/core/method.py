"""Measurement method v1: the throughput rule shared by client (download) and server (upload).

A phase is sampled as cumulative application bytes every ~100 ms. TCP ramp-up (slow start /
BBR startup, and the recovery of the losses they cause) is excluded by a fixed rule:

    ramp_s = min(max(RAMP_FRACTION × T, RAMP_MIN_S, RAMP_RTTS × rtt), RAMP_MAX_FRACTION × T)

where T is the phase length (first to last sample) and rtt the idle round-trip time. The RTT
term matters on long paths: startup overshoot drops packets, and until the retransmissions
fill those holes the receiver holds data back from the application; a window opened too early
then counts that backlog as if it arrived inside the window (measured: +1 to +3 % at
20 Mbit/s × 80 ms with 5 s phases, exact once the window opens after 25 RTTs). Throughput is the bytes between the
first sample at or after ramp_s and the last sample, over that interval.

A loss later in the phase (cubic's first queue overflow at 20 Mbit/s × 80 ms came 2.2-2.8 s in,
just after the 2 s ramp) opens the same kind of receive hole: a window edge inside it over-reports
(start) or under-reports (end) by the data held back, up to 9 % in 5 s phases. When the samples
carry the receiver's out-of-order packet count (TCP_INFO `tcpi_rcv_ooopack`, summed over the
streams), each edge moves to the nearest sample with no out-of-order arrival in the intervals
on either side of it: the start by at most EDGE_SHIFT_FRACTION × T later, the end by at most as
much earlier, else it stays where the rule above puts it (under steady random loss no sample is
clear). See spec/method-v1.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

METHOD_VERSION = "2"  # method v2 (spec/method-v2.md) adds UDP loss and delay; results without them keep "1"
SPEED_ONLY_VERSION = "1"  # a result measured without method v2's quality probes (method v1)
SAMPLE_INTERVAL_S = 0.1
RAMP_FRACTION = 0.25
RAMP_MIN_S = 0.5
RAMP_MAX_FRACTION = 0.5
RAMP_RTTS = 25
EDGE_SHIFT_FRACTION = 0.2
MIN_LATENCY_PROBES = 10


def ramp_seconds(phase_s: float, rtt_ms: float | None = None) -> float:
    rtt_s = (rtt_ms or 0.0) / 1000
    return min(max(RAMP_FRACTION * phase_s, RAMP_MIN_S, RAMP_RTTS * rtt_s), RAMP_MAX_FRACTION * phase_s)


def steady_mbps(
    samples: Sequence[tuple[float, int]], rtt_ms: float | None = None, ooo: Sequence[int] | None = None
) -> float:
    """Steady-state Mbit/s from (seconds since phase start, cumulative bytes) samples.

    `ooo`, when given, holds the receiver's cumulative out-of-order packet count at each sample:
    the window's edges then avoid samples taken while a receive hole held data back.
    """
    if len(samples) < 2:
        return 0.0
    t_first, t_end = samples[0][0], samples[-1][0]
    phase_s = t_end - t_first
    t_ramp = ramp_seconds(phase_s, rtt_ms) + t_first
    last = len(samples) - 1
    ramp = next((i for i, (t, _) in enumerate(samples) if t >= t_ramp), last)
    start, end = ramp, last
    if ooo is not None and len(ooo) == len(samples):
        shift = EDGE_SHIFT_FRACTION * phase_s
        start = next(
            (i for i in range(ramp, last) if samples[i][0] <= samples[ramp][0] + shift and _clear(ooo, i)), ramp
        )
        end = next((i for i in range(last, start, -1) if samples[i][0] >= t_end - shift and _clear(ooo, i)), last)
    if samples[end][0] <= samples[start][0]:
        start, end = 0, last  # no time after the ramp: the whole phase
    return _rate(samples, start, end)


def _clear(ooo: Sequence[int], i: int) -> bool:
    """No out-of-order arrival in the sample intervals before and after sample i."""
    return ooo[max(i - 1, 0)] == ooo[i] == ooo[min(i + 1, len(ooo) - 1)]


def _rate(samples: Sequence[tuple[float, int]], start: int, end: int) -> float:
    (t0, b0), (t1, b1) = samples[start], samples[end]
    return (b1 - b0) * 8 / (t1 - t0) / 1e6 if t1 > t0 else 0.0


def latency_summary(rtts_ms: Sequence[float]) -> tuple[float | None, float | None]:
    """(latency, jitter): median RTT, and mean absolute difference of consecutive RTTs."""
    if not rtts_ms:
        return None, None
    latency = statistics.median(rtts_ms)
    if len(rtts_ms) < 2:
        return latency, None
    jitter = sum(abs(b - a) for a, b in zip(rtts_ms, rtts_ms[1:], strict=False)) / (len(rtts_ms) - 1)
    return latency, jitter
