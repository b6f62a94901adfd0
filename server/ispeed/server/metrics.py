"""Server counters, exposed at GET /metrics in the Prometheus text format."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable


class Metrics:
    """Monotonic counters plus gauges computed on demand."""

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.gauges: dict[str, Callable[[], float]] = {}

    def inc(self, name: str, value: float = 1) -> None:
        self.counters[name] += value  # type: ignore[assignment]

    def render(self) -> str:
        lines = []
        for name in sorted(self.counters):
            metric = f"ispeed_{name}"
            lines += [f"# TYPE {metric} counter", f"{metric} {self.counters[name]}"]
        for name in sorted(self.gauges):
            metric = f"ispeed_{name}"
            lines += [f"# TYPE {metric} gauge", f"{metric} {self.gauges[name]()}"]
        return "\n".join(lines) + "\n"
