"""Live progress on a terminal: phase, elapsed time and current Mbps on one line."""

from __future__ import annotations

from typing import TextIO


class TerminalProgress:
    """Rewrites one line of `stream` (a TTY); silent otherwise."""

    def __init__(self, stream: TextIO, duration_s: float) -> None:
        self.stream = stream
        self.duration_s = duration_s
        self.enabled = stream.isatty()

    def __call__(self, phase: str, elapsed_s: float, mbps: float) -> None:
        if not self.enabled:
            return
        if phase == "latency":
            self.stream.write("\r\033[Klatency measured\n")
            return
        width = 20
        filled = min(width, int(width * elapsed_s / self.duration_s))
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r\033[K{phase:<8} [{bar}] {elapsed_s:5.1f} s {mbps:10.1f} Mbps")
        if elapsed_s >= self.duration_s - 0.05:
            self.stream.write("\n")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()
