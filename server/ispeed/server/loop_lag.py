"""How late an event loop runs its callbacks: the delay a probe waiting on it would see.

A timer every LAG_TICK_S records how much later than asked it fired. A ready socket waits about
as long for its callback (the loop runs one iteration's callbacks before it polls again), and on
a thread that shares the interpreter the lateness includes the wait for the GIL. uvloop's timers
count whole milliseconds, so an idle loop reads 0-1 ms (the clock read here is the monotonic one).
"""

from __future__ import annotations

import asyncio
import collections
import time

LAG_TICK_S = 0.005
LAG_WINDOW = 2  # a probe's lateness: the largest of the last LAG_WINDOW samples (~10 ms around it)
LAG_HISTORY = 12_000  # samples kept for /metrics (one minute)


class LoopLag:
    """How late the running loop's timers fire, sampled every LAG_TICK_S (ms)."""

    def __init__(self) -> None:
        self.due = 0.0  # monotonic time the running tick should fire
        self.recent: collections.deque[float] = collections.deque(maxlen=LAG_WINDOW)
        self.history: collections.deque[float] = collections.deque(maxlen=LAG_HISTORY)

    def now_ms(self) -> float:
        """The lateness around now: what a probe that arrived now waited before its callback ran.

        The last samples', or, when the running tick is overdue (the loop is just back from a
        stall it has not sampled yet), how overdue it is: an upper bound for a probe that arrived
        during the stall."""
        overdue_ms = (time.monotonic() - self.due) * 1000 if self.due else 0.0
        return max(max(self.recent, default=0.0), overdue_ms)

    def p99_ms(self) -> float:
        values = sorted(self.history)
        return values[min(len(values) - 1, int(0.99 * len(values)))] if values else 0.0

    async def run(self) -> None:
        while True:
            before = time.monotonic()
            self.due = before + LAG_TICK_S
            await asyncio.sleep(LAG_TICK_S)
            late_ms = max(0.0, (time.monotonic() - before - LAG_TICK_S) * 1000)
            self.recent.append(late_ms)
            self.history.append(late_ms)
