"""The server's own download timeline: what a test's client acknowledged, sampled every 100 ms.

Method v1 (spec/method-v1.md §4): the download figure is this server's measurement. For every
download connection of a test, the kernel's `tcpi_bytes_acked` (bytes the client's TCP has
acknowledged) is read every SAMPLE_INTERVAL_S and summed over the test's connections, each from
a baseline taken when the connection carried its first download request of the test (bytes a
reused keep-alive connection moved before do not count). That cumulative timeline goes through
the same ramp-up rule as the client's (`method.steady_mbps`).

- The phase starts when the test's first download request arrives (the server's clock) and
  lasts the token's duration; nothing the client submits moves either end.
- Its window ends at the last sample taken before a download connection of the test closed
  (the client ends its streams together when its phase is over; acknowledgements stop then, and
  a sample taken after a close would read the closed connection's counter from before it), or at
  the phase's end, whichever comes first.
- Receive holes hold acknowledgements back just as they hold back the client's reads. The
  sender sees them: segments selectively acknowledged above a hole (`tcpi_sacked`), segments
  marked lost, and retransmissions. Each sample adds to a running count the connections with a
  hole open at that instant plus the retransmissions since the previous sample; the ramp rule's
  window edges step off samples where that count moves, as they do on the client with the
  receiver's out-of-order count.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from ispeed.core import method, tcpinfo


@dataclass
class _Conn:
    """One download connection of the test: its socket and counters at the last reading."""

    sock: socket.socket | None
    base_acked: int
    acked: int
    retrans: int
    busy: bool = True  # a download response is being written on it
    closed: bool = False


@dataclass
class DownloadTimeline:
    """One test's download phase as this server saw it."""

    started: float  # monotonic seconds: the first download request
    duration_s: float  # the token's phase length
    samples: list[tuple[float, int]] = field(default_factory=lambda: [(0.0, 0)])
    holes: list[int] = field(default_factory=lambda: [0])
    ended_at: float | None = None  # monotonic: the first close of a download connection
    min_rtt_us: int = 0
    _conns: dict[object, _Conn] = field(default_factory=dict)
    _hole_count: int = 0

    @property
    def ends(self) -> float:
        """Monotonic time the phase ends on the server's clock."""
        return self.started + self.duration_s

    def sampling(self, now: float) -> bool:
        """Whether samples are still due (the phase runs and no connection closed yet)."""
        return self.ended_at is None and now <= self.ends + method.SAMPLE_INTERVAL_S

    def watch(self, key: object, sock: socket.socket | None) -> None:
        """A download request on connection `key`: count what its client acknowledges from now."""
        if key in self._conns:
            self._conns[key].busy = True
            return
        progress = tcpinfo.sender_progress(sock)
        acked = progress.bytes_acked if progress else 0
        retrans = progress.total_retrans if progress else 0
        self._conns[key] = _Conn(sock, acked, acked, retrans)

    def done(self, key: object) -> None:
        """A response on connection `key` was written in full; the connection may carry another.

        Its counter is read once more now: if the client closes the connection before the next
        sample, what it acknowledged until now still counts (later acknowledgements of that
        response's tail do not: a closed socket cannot be read, and nothing else proves them).
        """
        conn = self._conns.get(key)
        if conn is not None:
            conn.busy = False
            self._read(conn)

    def closed(self, key: object, now: float) -> None:
        """The client closed connection `key` mid-response: the window ends before this moment."""
        conn = self._conns.get(key)
        if conn is not None:
            conn.closed = True
            conn.busy = False
        if self.ended_at is None and now < self.ends:
            self.ended_at = now

    def sample(self, now: float) -> None:
        """Read every open connection of the test and add one sample at `now`."""
        total = 0
        for key, conn in self._conns.items():
            if not self._read(conn) and conn.busy:
                # closed mid-response, and the handler has not run yet to say so: the reading
                # is from before the close, so this sample cannot count
                self.closed(key, now)
                return
            total += max(0, conn.acked - conn.base_acked)
        self.samples.append((now - self.started, total))
        self.holes.append(self._hole_count)

    def _read(self, conn: _Conn) -> bool:
        """Update `conn` from the kernel; False when its socket can no longer be read."""
        progress = None if conn.closed else tcpinfo.sender_progress(conn.sock)
        if progress is None:
            return False
        conn.acked = progress.bytes_acked
        if progress.sacked or progress.lost:
            self._hole_count += 1
        if progress.total_retrans > conn.retrans:
            self._hole_count += progress.total_retrans - conn.retrans
            conn.retrans = progress.total_retrans
        if progress.min_rtt_us and (not self.min_rtt_us or progress.min_rtt_us < self.min_rtt_us):
            self.min_rtt_us = progress.min_rtt_us
        return True

    def window(self) -> tuple[list[tuple[float, int]], list[int]]:
        """The samples that count: inside the phase, and before the first connection closed."""
        limit = self.duration_s
        if self.ended_at is not None:
            limit = min(limit, self.ended_at - self.started)
        kept = [i for i, (t, _) in enumerate(self.samples) if t <= limit]
        return [self.samples[i] for i in kept], [self.holes[i] for i in kept]

    def mbps(self) -> float:
        """The server-measured steady download (method v1's ramp rule on this timeline)."""
        samples, holes = self.window()
        rtt_ms = self.min_rtt_us / 1000 if self.min_rtt_us else None
        return method.steady_mbps(samples, rtt_ms, holes)

    def span_s(self) -> float:
        """Seconds between the first and the last sample that count."""
        samples, _ = self.window()
        return samples[-1][0] - samples[0][0] if samples else 0.0

    def acked_bytes(self) -> int:
        """Bytes acknowledged inside the window."""
        samples, _ = self.window()
        return samples[-1][1] if samples else 0
