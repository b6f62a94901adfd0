"""Abuse limits: token-bucket rates per client network, and a sweeper for overdue streams."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """`rate_per_min` events per key and minute, bursts up to `burst`; keys are client networks."""

    def __init__(self, rate_per_min: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate_per_s = rate_per_min / 60.0
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def check(self, key: str, now: float | None = None) -> float:
        """0 when allowed (and counted); otherwise the seconds to wait."""
        now = time.monotonic() if now is None else now
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= self.max_keys:
                self._prune(now)
            b = self._buckets[key] = _Bucket(self.burst, now)
        b.tokens = min(self.burst, b.tokens + (now - b.stamp) * self.rate_per_s)
        b.stamp = now
        if b.tokens >= 1:
            b.tokens -= 1
            return 0.0
        return (1 - b.tokens) / self.rate_per_s if self.rate_per_s > 0 else 3600.0

    def _prune(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.stamp) * self.rate_per_s >= self.burst]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self.max_keys:  # still full: forget the oldest half
            for k in sorted(self._buckets, key=lambda k: self._buckets[k].stamp)[: self.max_keys // 2]:
                del self._buckets[k]


class RunningCount:
    """Things running now per client network (ndt7 subtests), counted in the shared capacity."""

    def __init__(self) -> None:
        self.total = 0
        self._by_network: Counter[str] = Counter()

    def start(self, network: str) -> None:
        self.total += 1
        self._by_network[network] += 1

    def end(self, network: str) -> None:
        self.total -= 1
        self._by_network[network] -= 1
        if self._by_network[network] <= 0:
            del self._by_network[network]

    def for_network(self, network: str) -> int:
        return self._by_network.get(network, 0)


async def sample_downloads(registry: object) -> None:
    """Sample every running download phase's acknowledged bytes (method v1: every 100 ms)."""
    from ispeed.core.method import SAMPLE_INTERVAL_S
    from ispeed.server.registry import Registry

    assert isinstance(registry, Registry)
    while True:
        await asyncio.sleep(SAMPLE_INTERVAL_S)
        registry.sample_downloads()


async def sweep_overdue(registry: object, interval_s: float = 1.0) -> None:
    """Close the connections of tests past their deadline (stalled uploads, unread downloads)."""
    from ispeed.server.registry import Registry

    assert isinstance(registry, Registry)
    while True:
        await asyncio.sleep(interval_s)
        now = time.monotonic()
        for state in registry.states():
            if state.transports and now > state.deadline:
                for transport in list(state.transports):
                    transport.close()
                state.transports.clear()
                state.cut = True
