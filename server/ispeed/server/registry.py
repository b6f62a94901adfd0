"""Per-test server-side truth: bytes per direction and stream, both timelines, TCP_INFO, slots.

A test holds a capacity slot while it moves bytes, and for IDLE_RELEASE_S after it was issued
or last moved any: a token nobody uses gives its slot back within seconds.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from ispeed.core import method
from ispeed.core.tcpinfo import OooCounter, TcpInfo
from ispeed.server.privacy import ip_version
from ispeed.server.receipts import Counters
from ispeed.server.rpm_evidence import RpmEvidence, delay_p99
from ispeed.server.timeline import DownloadTimeline
from ispeed.server.tokens import TestClaims
from ispeed.server.udp_counts import UdpTest

IDLE_RELEASE_S = 5.0  # a test that moves nothing for this long gives its capacity slot back
PHASE_GRACE_S = 2.0  # a phase's streams are cut this long after the token's duration


@dataclass
class TestState:
    """What this server itself saw of one test."""

    __test__ = False  # not a pytest test class

    claims: TestClaims
    bytes_down: dict[int, int] = field(default_factory=dict)  # stream -> bytes written
    bytes_up: dict[int, int] = field(default_factory=dict)  # stream -> bytes received
    first_up: float | None = None  # monotonic seconds
    last_up: float | None = None
    up_timeline: list[tuple[float, int]] = field(default_factory=list)  # (s since first_up, total)
    up_ooo: list[int] = field(default_factory=list)  # out-of-order packets at each timeline sample
    up_total: int = 0
    up_sockets: OooCounter = field(default_factory=OooCounter)  # the upload streams' receive side
    tcp: list[TcpInfo] = field(default_factory=list)
    latency_probes: int = 0
    submitted: bool = False
    active_streams: int = 0
    created: float = field(default_factory=time.monotonic)
    transports: set[asyncio.BaseTransport] = field(default_factory=set)  # open streams, for the sweeper
    cut: bool = False  # streams were cut at the deadline
    net_key: str = ""  # client network, for per-network limits
    down: DownloadTimeline | None = None  # the server's download timeline
    up_started: float | None = None  # monotonic: the first upload request
    streams_down: set[int] = field(default_factory=set)  # stream numbers moving bytes now
    streams_up: set[int] = field(default_factory=set)
    last_activity: float = field(default_factory=time.monotonic)
    transfer_ip: str = ""  # the address that ran the transfers
    bytes_moved: int = 0  # both directions, for the per-test cap
    udp: UdpTest | None = None  # its UDP probes, per phase (method v2; udp_endpoint.py)
    rpm: RpmEvidence = field(default_factory=RpmEvidence)  # responsiveness probes (method v2)
    probe_delays_ms: list[float] = field(default_factory=list)  # how long each probe waited in this server

    @property
    def deadline(self) -> float:
        """Monotonic time after which streams are cut: latency, download, upload and slack."""
        return self.created + 2 * self.claims.duration_s + 20.0

    def is_open(self, now: float) -> bool:
        """Holds a capacity slot: not submitted, and moving bytes or active within IDLE_RELEASE_S."""
        return not self.submitted and (self.active_streams > 0 or now - self.last_activity < IDLE_RELEASE_S)

    def phase_end(self, direction: str) -> float | None:
        """Monotonic time a phase's streams are cut (token duration + grace), None before it began."""
        started = (
            self.down.started
            if direction == "download" and self.down
            else (self.up_started if direction == "upload" else None)
        )
        return None if started is None else started + self.claims.duration_s + PHASE_GRACE_S

    def probe_delays(self) -> list[float]:
        """How long each of the test's probes waited in this server, in ms: RPM probes (their
        request's wait, from TCP_INFO) and UDP probes (receive to answer)."""
        return self.probe_delays_ms + (self.udp.answer_delays_ms() if self.udp else [])

    def download_mbps(self) -> float:
        """Server-measured steady download (method v1 rule on this server's acknowledged bytes)."""
        return self.down.mbps() if self.down else 0.0

    @property
    def total_down(self) -> int:
        return sum(self.bytes_down.values())

    @property
    def total_bytes(self) -> int:
        return self.total_down + self.up_total

    def add_up(self, stream: int, n: int, now: float) -> None:
        """Count `n` received bytes; keep a ~100 ms timeline of the test's cumulative upload."""
        self.bytes_up[stream] = self.bytes_up.get(stream, 0) + n
        self.up_total += n
        self.bytes_moved += n
        if self.first_up is None:
            self.first_up = now
            self.up_timeline.append((0.0, 0))
            self.up_ooo.append(self.up_sockets.total())
        self.last_up = now
        t = now - self.first_up
        if t - self.up_timeline[-1][0] >= method.SAMPLE_INTERVAL_S:
            self.up_timeline.append((t, self.up_total))
            self.up_ooo.append(self.up_sockets.total())  # a few getsockopt calls per 100 ms

    def upload_mbps(self) -> float:
        """Server-measured steady upload (method v1 rule on this server's own timeline).

        The timeline ends one phase length after the first byte: bytes a client's socket
        buffers flush after it stopped (a tail at a falling rate) do not dilute the figure.
        """
        phase_s = self.claims.duration_s
        kept = [i for i, (t, _) in enumerate(self.up_timeline) if t <= phase_s]
        timeline = [self.up_timeline[i] for i in kept]
        ooo = [self.up_ooo[i] for i in kept] if self.up_sockets.known else None  # add_up keeps both in step
        if self.first_up is not None and self.last_up is not None:
            t_last = self.last_up - self.first_up
            if t_last <= phase_s and (not timeline or timeline[-1][0] < t_last):
                timeline.append((t_last, self.up_total))
                if ooo is not None:
                    ooo.append(self.up_sockets.total())
        return method.steady_mbps(timeline, self.min_rtt_ms(), ooo)

    def upload_span_s(self) -> float:
        """Seconds of the upload timeline that count (first to last byte, within the phase)."""
        if self.first_up is None or self.last_up is None:
            return 0.0
        return min(self.last_up - self.first_up, self.claims.duration_s)

    def min_rtt_ms(self) -> float | None:
        rtts = [t.min_rtt_us for t in self.tcp if t.min_rtt_us]
        return min(rtts) / 1000 if rtts else None

    def retrans_ratio(self) -> float | None:
        sent = sum(t.bytes_sent for t in self.tcp)
        return sum(t.bytes_retrans for t in self.tcp) / sent if sent else None

    def counters(self) -> Counters:
        return Counters(
            test_id=self.claims.test_id,
            issued_at=self.claims.issued_at,
            streams=self.claims.streams,
            duration_s=self.claims.duration_s,
            bytes_down=self.total_down,
            bytes_up=self.up_total,
            upload_mbps=self.upload_mbps(),
            tcp_min_rtt_ms=self.min_rtt_ms(),
            tcp_retrans_ratio=self.retrans_ratio(),
            signed_at=time.time(),
            download_mbps=self.download_mbps(),
            download_span_s=self.down.span_s() if self.down else 0.0,
            download_acked_bytes=self.down.acked_bytes() if self.down else 0,
            upload_span_s=self.upload_span_s(),
            transfer_ip=self.transfer_ip,
            udp=self.udp.summary() if self.udp else None,
            rpm_down_probes=self.rpm.count("download"),
            rpm_down_server=self.rpm.server_rpm("download") or -1.0,
            rpm_up_probes=self.rpm.count("upload"),
            rpm_up_server=self.rpm.server_rpm("upload") or -1.0,
            server_delay_p99_ms=delay_p99(self.probe_delays()),
        )

    def summary(self) -> dict[str, object]:
        return {
            "test_id": self.claims.test_id,
            "bytes_down": self.total_down,
            "bytes_up": self.up_total,
            "bytes_down_by_stream": {str(k): v for k, v in sorted(self.bytes_down.items())},
            "bytes_up_by_stream": {str(k): v for k, v in sorted(self.bytes_up.items())},
            "upload_mbps": round(self.upload_mbps(), 3),
            "upload_seconds": round((self.last_up or 0) - (self.first_up or 0), 3),
            "download_mbps": round(self.download_mbps(), 3),
            "download_seconds": round(self.down.span_s(), 3) if self.down else 0.0,
            "tcp_min_rtt_ms": self.min_rtt_ms(),
            "tcp_retrans_ratio": self.retrans_ratio(),
            "latency_probes": self.latency_probes,
            "udp": self.udp.summary() if self.udp else None,
            "ip_version": ip_version(self.transfer_ip),
            "rpm_server": self.rpm.summary(),
            "server_delay_p99_ms": delay_p99(self.probe_delays()),
        }


class Registry:
    """Tests issued by this server, kept until their token expires."""

    def __init__(self) -> None:
        self._tests: dict[str, TestState] = {}
        self.finished = 0
        self.abandoned = 0  # tests whose token expired with no result submitted

    def add(self, claims: TestClaims, net_key: str = "") -> TestState:
        self.expire()
        state = TestState(claims, net_key=net_key)
        self._tests[claims.test_id] = state
        return state

    def states(self) -> list[TestState]:
        return list(self._tests.values())

    def open_for_network(self, net_key: str) -> int:
        now = time.monotonic()
        return sum(1 for s in self._tests.values() if s.net_key == net_key and s.is_open(now))

    def get(self, test_id: str) -> TestState | None:
        return self._tests.get(test_id)

    def expire(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        for tid in [t for t, s in self._tests.items() if s.claims.expires_at < now]:
            if not self._tests.pop(tid).submitted:
                self.abandoned += 1

    def sample_downloads(self, now: float | None = None) -> None:
        """One sample of every download phase still running (called every SAMPLE_INTERVAL_S)."""
        now = time.monotonic() if now is None else now
        for state in self._tests.values():
            if state.down is not None and state.down.sampling(now):
                state.down.sample(now)

    def running(self) -> int:
        """Tests moving bytes right now."""
        return sum(1 for s in self._tests.values() if not s.submitted and s.active_streams > 0)

    def open_tests(self) -> int:
        """Tests issued recently and not yet submitted (capacity is counted on these)."""
        now = time.monotonic()
        return sum(1 for s in self._tests.values() if s.is_open(now))
