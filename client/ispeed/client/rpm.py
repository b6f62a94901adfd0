"""The client's responsiveness probes (method v2; draft-ietf-ippm-responsiveness-09).

Foreign probes: `GET /api/v1/rpm?token=` on a new TCP connection each, to the test's pinned
address; the client times the TCP handshake (`tcp_f`: the kernel's own timing of it where the OS
gives TCP_INFO, else the event loop's clock), the TLS handshake normalised to its round trips
(`tls_f`, https only: one for TLS 1.3, two before) and the request to the end of the one-byte
answer (`http_f`). During a transfer phase they start once its ramp-up is over (the
load is then at working conditions), one every FOREIGN_INTERVAL_S, at most FOREIGN_MAX_PER_PHASE
and FOREIGN_MAX_OUTSTANDING at once; probes still running when the phase ends are dropped.
Self probes are the WebSocket round trips the engine makes on its loaded latency connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from ispeed.client.rawhttp import Origin
from ispeed.core import responsiveness, tcpinfo
from ispeed.core.responsiveness import Responsiveness

FOREIGN_INTERVAL_S = 0.2  # 5 probes/s: ~4 kbit/s of probe traffic, far under the draft's 5 % of capacity
FOREIGN_MAX_PER_PHASE = 60
FOREIGN_MAX_OUTSTANDING = 4
IDLE_FOREIGN_PROBES = 10
IDLE_MAX_FAILED = 2  # the idle probes go one after another: a path that drops them must not hold the test
PROBE_TIMEOUT_S = 5.0
MAX_ANSWER_BYTES = 16 << 10


@dataclass(frozen=True)
class Target:
    """Where foreign probes go: the pinned address, the URL's host for Host and TLS, the path."""

    address: str
    port: int
    host_header: str
    target: str  # path and query, e.g. /api/v1/rpm?token=...
    tls: ssl.SSLContext | None = None
    server_hostname: str | None = None

    @classmethod
    def of(
        cls, address: str, port: int, host_header: str, path: str, token: str, tls: ssl.SSLContext | None, hostname: str
    ) -> Target:
        """The probe target of a test: `path` is the base URL's path prefix and the server's RPM path."""
        return cls(address, port, host_header, f"{path}?{urlencode({'token': token})}", tls, hostname if tls else None)


@dataclass
class ForeignSamples:
    """One phase's foreign probes: times in ms, and the probes that did not complete."""

    tcp_ms: list[float] = field(default_factory=list)
    tls_ms: list[float] = field(default_factory=list)
    http_ms: list[float] = field(default_factory=list)
    failed: int = 0
    refused: str = ""  # the server's answer when it refused a probe (e.g. a server without RPM)


class _Answer(asyncio.Protocol):
    """Collects one HTTP answer: the status, and the end of its body (Content-Length or close)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._length: int | None = None
        self._body_at = -1
        self.status = 0

    def data_received(self, data: bytes) -> None:
        self.data += data
        if self._body_at < 0:
            end = self.data.find(b"\r\n\r\n")
            if end < 0:
                if len(self.data) > MAX_ANSWER_BYTES:
                    self._finish()
                return
            head = bytes(self.data[:end]).decode("latin-1").split("\r\n")
            try:
                self.status = int(head[0].split(" ", 2)[1])
            except (IndexError, ValueError):
                self._finish()
                return
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length" and value.strip().isdigit():
                    self._length = int(value.strip())
            self._body_at = end + 4
        if self._length is not None and len(self.data) - self._body_at >= self._length:
            self._finish()
        elif len(self.data) > MAX_ANSWER_BYTES:
            self._finish()

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(self.status)

    def body(self) -> str:
        return bytes(self.data[self._body_at :]).decode("utf-8", "replace") if self._body_at >= 0 else ""


async def foreign_probe(target: Target) -> tuple[float, float | None, float, int, str]:
    """One probe on a new connection: (tcp_ms, tls_ms, http_ms, HTTP status, answer body)."""
    loop = asyncio.get_running_loop()
    answer = _Answer()
    t0 = time.perf_counter()
    transport, _ = await loop.create_connection(lambda: answer, target.address, target.port)
    t1 = time.perf_counter()
    # the handshake as this machine's kernel timed it (SYN out to SYN-ACK in: the connection's
    # first RTT sample), free of this event loop's wake-up delays; the loop's clock elsewhere
    info = tcpinfo.read_fields(transport.get_extra_info("socket"))
    tcp_ms = info["RTT"] / 1000 if info and info["RTT"] else (t1 - t0) * 1000
    try:
        tls_ms = None
        if target.tls is not None:
            tls_transport = await loop.start_tls(transport, answer, target.tls, server_hostname=target.server_hostname)
            assert tls_transport is not None
            transport = tls_transport
            version = getattr(transport.get_extra_info("ssl_object"), "version", lambda: "")()
            tls_ms = (time.perf_counter() - t1) * 1000 / (1 if version == "TLSv1.3" else 2)
        request = (
            f"GET {target.target} HTTP/1.1\r\nHost: {target.host_header}\r\nConnection: close\r\n"
            "Accept-Encoding: identity\r\nUser-Agent: ispeed\r\n\r\n"
        )
        t2 = time.perf_counter()
        transport.write(request.encode("latin-1"))
        status = await answer.done
        t3 = time.perf_counter()
    finally:
        transport.abort()  # nothing to flush; the server closes its side too
    return tcp_ms, tls_ms, (t3 - t2) * 1000, status, answer.body()


class ForeignProber:
    """Sends a test's foreign probes and keeps their times per phase."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.phases: dict[str, ForeignSamples] = {}
        self.stopped = ""  # why probing stopped for the rest of the test ('' = it did not)

    async def _one(self, samples: ForeignSamples) -> None:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                tcp_ms, tls_ms, http_ms, status, body = await foreign_probe(self.target)
        except (OSError, TimeoutError):
            samples.failed += 1
            return
        if status != 200:
            samples.failed += 1
            samples.refused = f"HTTP {status}: {body[:200]}"
            if status in (400, 403, 404, 405, 409, 410, 429):  # not a passing fault: stop asking
                self.stopped = samples.refused
            return
        samples.tcp_ms.append(tcp_ms)
        samples.http_ms.append(http_ms)
        if tls_ms is not None:
            samples.tls_ms.append(tls_ms)

    async def idle(self, count: int = IDLE_FOREIGN_PROBES) -> None:
        """`count` probes one after another on the idle link (no more after IDLE_MAX_FAILED failures)."""
        samples = self.phases.setdefault("idle", ForeignSamples())
        for _ in range(count):
            if self.stopped or samples.failed >= IDLE_MAX_FAILED:
                return
            await self._one(samples)
            await asyncio.sleep(0.02)

    async def loaded(self, phase: str, start_at: float, stop_at: float) -> None:
        """Probes from `start_at` to `stop_at` (event-loop clock), FOREIGN_INTERVAL_S apart."""
        loop = asyncio.get_running_loop()
        samples = self.phases.setdefault(phase, ForeignSamples())
        slots = asyncio.Semaphore(FOREIGN_MAX_OUTSTANDING)
        tasks: set[asyncio.Task[None]] = set()

        async def one() -> None:
            try:
                await self._one(samples)
            finally:
                slots.release()

        try:
            await asyncio.sleep(max(0.0, start_at - loop.time()))
            sent = 0
            while sent < FOREIGN_MAX_PER_PHASE and not self.stopped and loop.time() < stop_at:
                await slots.acquire()
                if loop.time() >= stop_at:
                    slots.release()
                    break
                task = asyncio.create_task(one())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
                await asyncio.sleep(FOREIGN_INTERVAL_S)
            await asyncio.sleep(max(0.0, stop_at - loop.time()))
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*tasks, return_exceptions=True)

    def result(self, phase: str, self_ms: list[float]) -> Responsiveness | None:
        """The phase's RPM from its foreign probes and the self probes given (None: too few)."""
        samples = self.phases.get(phase, ForeignSamples())
        return responsiveness.responsiveness(samples.tcp_ms, samples.http_ms, self_ms, samples.tls_ms or None)


def prober(paths: Any, token: str, origin: Origin | None, address: str) -> ForeignProber | None:
    """The test's foreign prober, when the server offers the probe (its `paths` name it: method v2)
    and the base URL is one this client connects to by itself (`origin`, pinned to `address`)."""
    path = paths.get("rpm") if isinstance(paths, dict) else None
    if not isinstance(path, str) or origin is None or not address:
        return None
    o = origin
    return ForeignProber(Target.of(address, o.port, o.host_header, o.path_prefix + path, token, o.ssl, o.host))


def phase(
    foreign: ForeignProber | None,
    name: str,
    rtts_ms: Sequence[float],
    at_s: Sequence[float] | None = None,
    ramp_s: float = 0.0,
) -> Responsiveness | None:
    """A phase's RPM: its foreign probes with its self probes (`rtts_ms`; in a transfer phase
    those that ended `at_s` after its ramp-up, as the foreign probes started after it)."""
    if foreign is None:
        return None
    kept = list(rtts_ms) if at_s is None else [r for r, t in zip(rtts_ms, at_s, strict=True) if t >= ramp_s]
    return foreign.result(name, kept)


def fields(figures: dict[str, Responsiveness | None]) -> dict[str, Any]:
    """The `ispeed test --json` fields of the RPM figures per phase (idle, download, upload).

    `rpm_label` is the draft's class of the worse (lower) of the two directions measured.
    """

    def rounded(r: Responsiveness | None) -> float | None:
        return None if r is None else round(r.rpm, 1)

    directions = [r.rpm for r in (figures.get("download"), figures.get("upload")) if r is not None]
    return {
        "rpm_down": rounded(figures.get("download")),
        "rpm_up": rounded(figures.get("upload")),
        "rpm_idle": rounded(figures.get("idle")),
        "rpm_label": responsiveness.label(min(directions) if directions else None),
        "rpm_phases": {name: r.as_dict() if r else None for name, r in figures.items()},
    }
