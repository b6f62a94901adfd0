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
"""

from __future__ import annotations

from dataclasses import dataclass

from ispeed.core.errors import UsageError
from ispeed.core.schema import NETWORK_TYPES
from ispeed.core.stats import METHODOLOGY_VERSION


@dataclass(frozen=True)
class Methodology:
    """Thresholds of one aggregation run; written into every output next to the version."""

    min_samples: int = 300
    ci_level: float = 0.95
    include_simulated: bool = False
    version: str = METHODOLOGY_VERSION
    network_types: tuple[str, ...] = NETWORK_TYPES

    def __post_init__(self) -> None:
        if self.min_samples < 1:
            raise UsageError(f"--min-samples {self.min_samples} must be at least 1")
        if not 0.5 <= self.ci_level < 1:
            raise UsageError(f"ci_level {self.ci_level} must be in [0.5, 1)")

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
        }
