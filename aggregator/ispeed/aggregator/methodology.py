"""Methodology v1: its version and thresholds, in one frozen configuration (the columns it writes
are the stats.csv contract in `ispeed.core.stats`).

Definitions (recomputable from the open-data export):
- valid test: `valid = 1`, download and upload > 0, `simulated = 0` unless simulated tests are
  included, local date inside the month (Vietnam local calendar month); copies of one stored
  row (a replayed insert: same test_id, started_at and place) count once;
- device: `device_hash`, or `ip_hash` when `device_hash` is empty;
- sample: one (device, local_date) pair within a cell; its value is the median of that device's
  valid tests that day in that cell (latency and jitter over the tests that have them);
- median of n values: the middle value, or (a + b) / 2 of the two middle values when n is even;
- 95% CI of the download median, samples sorted ascending: k = binom.ppf(0.025, n, 0.5);
  low = k-th smallest, high = (n − k + 1)-th smallest (1-based); no interval when k = 0;
- published: samples ≥ min_samples; suppressed cells keep their counts, not their figures;
- rank: see `ispeed.aggregator.rank`.

Added with method v2 (issues #21, #22; stats.csv's QUALITY_COLUMNS and DISTRIBUTION_COLUMNS),
over the same device-day samples, for published cells only:
- loss, UDP round-trip p90 and RPM medians: a sample's value is the median of its tests that
  have the figure (method v1 results have none), a cell's the median of its samples that have
  one; empty when none. A test flagged `server_delayed` counts for none of these, nor for
  latency and jitter (its speeds count);
- ipv6_share: among the samples with a known IP version (some test with ip_version 4 or 6), the
  share whose every such test ran over IPv6 (a sample rests on its weakest test, as for the
  evidence shares: one IPv4 test makes it an IPv4 sample); empty when none is known;
- peak hours: a test's Vietnam-local hour (started_at + 7 h) within `peak_hours` (inclusive;
  `22-1` wraps past midnight); a peak sample is the median download of a device-day's peak
  tests in the cell; peak_samples counts them, and their median is published when
  peak_samples ≥ min_samples;
- means: each sample's download (upload) in whole bit/s, b = floor(x · 10^6 + 0.5), summed as an
  integer; mean = Σb / (n · 10^6), the exact quotient rounded once to a double (so the store
  and any recomputation agree to the bit);
- p10, p90: numpy's default (linear) percentile of the n sorted samples x_0 … x_{n-1}: h = (n − 1) ·
  p, j = floor(h), g = h − j, a = x_j, b = x_min(j+1, n−1); a + (b − a) · g when g < 0.5, else
  b − (b − a) · (1 − g) (numpy's `_lerp`);
- share_ge_100_mbps, share_ge_1000_mbps: the share of samples whose download is ≥ 100 Mbit/s,
  ≥ gigabit_threshold_mbps (900: a 1 Gbit/s Ethernet line carries at most ~941 Mbit/s of TCP
  goodput, ~936 over PPPoE, the usual FTTH access in Vietnam; 900 still counts a gigabit line
  that loses a few percent more to VLAN tags or a test's ramp, and counts no line whose rate is
  below 900 Mbit/s).
"""

from __future__ import annotations

from dataclasses import dataclass

from ispeed.core.errors import UsageError
from ispeed.core.schema import NETWORK_TYPES
from ispeed.core.stats import GIGABIT_THRESHOLD_MBPS, METHODOLOGY_VERSION, PEAK_HOURS


@dataclass(frozen=True)
class Methodology:
    """Thresholds of one aggregation run; written into every output next to the version."""

    min_samples: int = 300
    ci_level: float = 0.95
    include_simulated: bool = False
    version: str = METHODOLOGY_VERSION
    network_types: tuple[str, ...] = NETWORK_TYPES
    peak_hours: tuple[int, int] = PEAK_HOURS  # Vietnam local hours, first and last inclusive
    gigabit_threshold_mbps: float = GIGABIT_THRESHOLD_MBPS

    def __post_init__(self) -> None:
        if self.min_samples < 1:
            raise UsageError(f"--min-samples {self.min_samples} must be at least 1")
        if not 0.5 <= self.ci_level < 1:
            raise UsageError(f"ci_level {self.ci_level} must be in [0.5, 1)")
        if len(self.peak_hours) != 2 or not all(0 <= h <= 23 for h in self.peak_hours):
            raise UsageError(f"--peak-hours {self.peak_hours} must be two hours 0-23, e.g. 19-22")
        if not 0 < self.gigabit_threshold_mbps <= 1000:
            raise UsageError(f"gigabit_threshold_mbps {self.gigabit_threshold_mbps} must be in (0, 1000]")

    @property
    def peak_hours_text(self) -> str:
        """`19-22`: the peak hours as stats.csv writes them."""
        return f"{self.peak_hours[0]}-{self.peak_hours[1]}"

    @property
    def peak_mask(self) -> int:
        """Bit h set for every local hour h of the peak (wrapping past midnight when first > last)."""
        first, last = self.peak_hours
        hours = range(first, last + 1) if first <= last else [*range(first, 24), *range(0, last + 1)]
        return sum(1 << h for h in hours)

    @property
    def ci_tail(self) -> float:
        """Binomial tail probability for the interval: 0.025 for a 95% interval."""
        return round((1.0 - self.ci_level) / 2.0, 12)

    def method_values(self) -> dict[str, object]:
        return {
            "methodology_version": self.version,
            "min_samples": self.min_samples,
            "ci_level": self.ci_level,
            "include_simulated": self.include_simulated,
            "peak_hours": self.peak_hours_text,
            "gigabit_threshold_mbps": self.gigabit_threshold_mbps,
        }
