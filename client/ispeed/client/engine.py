"""One speed test against an ispeed server: idle latency, download, upload (method v1).

Download: N streams each GET large responses and count bytes as they arrive; at the end of
the phase the streams are closed. They use `rawhttp` (reads counted and dropped: aiohttp's
copies and per-chunk wake-ups capped fast links), aiohttp only for base URLs or answers rawhttp
leaves to a full client. Upload: N streams POST a generator of 1 MiB random chunks (with
Content-Length, never chunked); the server's received-byte count is the upload truth.
Latency: WebSocket round trips, idle before the transfers and repeated during them (loaded).
Method v2: every connection goes to one address of one IP family (`family`); responsiveness
(RPM) combines foreign probes on new connections (`rpm`) with those loaded round trips.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

import aiohttp

from ispeed.client import family, rawhttp, rpm, udp
from ispeed.client.config import TestConfig
from ispeed.core import method
from ispeed.core.errors import MeasurementError, ServerRefused, ServerUnreachable
from ispeed.core.submission import body as submission_body
from ispeed.core.tcpinfo import OooCounter

CHUNK_BYTES = 1 << 20
REQUEST_BYTES = 1 << 30  # per download response / upload body; streams repeat requests
READ_BUFSIZE = 1 << 20
LOADED_PROBE_INTERVAL_S = 0.1

Progress = Callable[[str, float, float], None]  # phase, elapsed s, current Mbps


@dataclass
class PhaseResult:
    mbps: float
    bytes: int
    samples: list[tuple[float, int]] = field(default_factory=list)
    loaded_rtts_ms: list[float] = field(default_factory=list)
    ooo: list[int] | None = None  # the receiver's out-of-order packets at each sample, if read
    loaded_at_s: list[float] = field(default_factory=list)  # when each loaded round trip ended, s into the phase
    ramp_s: float = 0.0  # the phase's ramp-up: RPM counts the round trips after it


class _Prober:
    """Latency probes over one WebSocket: a text message echoed by the server, timed here."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seq = 0

    async def probe(self, timeout_s: float = 2.0) -> float | None:
        self.seq += 1
        t0 = time.perf_counter()
        await self.ws.send_str(str(self.seq))
        try:
            while True:
                msg = await asyncio.wait_for(self.ws.receive(), timeout_s)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    return None
                if msg.data == str(self.seq):
                    return (time.perf_counter() - t0) * 1000
        except TimeoutError:
            return None

    async def loaded(self, stop_at: float, out: list[float], at: list[float] | None = None) -> None:
        """Round trips every LOADED_PROBE_INTERVAL_S until `stop_at`; `at` gets when each ended."""
        loop = asyncio.get_running_loop()
        while loop.time() < stop_at:
            rtt = await self.probe()
            if rtt is not None:
                out.append(rtt)
                if at is not None:
                    at.append(loop.time())
            await asyncio.sleep(LOADED_PROBE_INTERVAL_S)


class Engine:
    """Runs one test; `run()` returns the result dictionary printed by `ispeed test --json`."""

    def __init__(self, config: TestConfig, progress: Progress | None = None) -> None:
        self.cfg = config
        self.base = config.server_url.rstrip("/")
        self.progress = progress or (lambda phase, t, mbps: None)
        self.origin = rawhttp.Origin.from_url(self.base)
        self.address = ""  # the server address every connection of the test goes to (`family.choose`)
        self.foreign: rpm.ForeignProber | None = None
        data = os.urandom(8 << 20)  # incompressible; one chunk repeated so slices wrap
        self._payload = memoryview(data + data[:CHUNK_BYTES])

    # -- HTTP helpers ---------------------------------------------------------------------
    async def _json(self, session: aiohttp.ClientSession, method_: str, path: str, **kw: Any) -> Any:
        try:
            async with session.request(method_, self.base + path, **kw) as resp:
                body = await resp.json(content_type=None)
                if resp.status >= 400:
                    reason = body.get("error") if isinstance(body, dict) else body
                    raise ServerRefused(f"{method_} {path} answered {resp.status}: {reason}", resp.status)
                return body
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            raise ServerUnreachable(
                f"cannot reach the test server at {self.base} ({exc.__class__.__name__}: {exc}); "
                "check the --server URL and that `ispeed serve` is running"
            ) from exc
        except aiohttp.ContentTypeError as exc:
            raise MeasurementError(f"{self.base}{path} did not answer JSON: is this an ispeed server?") from exc

    # -- phases -----------------------------------------------------------------------------
    async def _phase(
        self,
        name: str,
        stream_fn: Callable[[int, list[int], float], Any],
        prober: _Prober | None,
        rtt_ms: float | None = None,
        ooo: OooCounter | None = None,
    ) -> PhaseResult:
        """Run the streams for the phase's duration, sampling their total every 100 ms; `ooo`
        (download: this end receives) adds the out-of-order count at each sample (method v1 §5).
        Foreign RPM probes run from the end of the ramp-up (working conditions) to the end."""
        loop = asyncio.get_running_loop()
        counters = [0] * self.cfg.streams
        start = loop.time()
        stop_at = start + self.cfg.duration_s
        ramp_s = method.ramp_seconds(self.cfg.duration_s, rtt_ms)
        tasks = [asyncio.create_task(stream_fn(i, counters, stop_at)) for i in range(self.cfg.streams)]
        rtts: list[float] = []
        rtts_at: list[float] = []
        probe_task = asyncio.create_task(prober.loaded(stop_at, rtts, rtts_at)) if prober else None
        if self.foreign is not None:
            tasks.append(asyncio.create_task(self.foreign.loaded(name, start + ramp_s, stop_at)))
        samples = [(0.0, 0)]
        ooo_samples = [0]
        try:
            while True:
                now = loop.time()
                if now >= stop_at:
                    break
                if all(task.done() for task in tasks[: self.cfg.streams]):
                    for task in tasks[: self.cfg.streams]:  # the RPM probes may still run
                        exc = task.exception()
                        if exc:
                            raise exc
                    break
                await asyncio.sleep(min(method.SAMPLE_INTERVAL_S, stop_at - now))
                t, total = loop.time() - start, sum(counters)
                prev_t, prev_b = samples[-1]
                samples.append((t, total))
                if ooo is not None:
                    ooo_samples.append(ooo.total())
                self.progress(name, t, (total - prev_b) * 8 / max(t - prev_t, 1e-6) / 1e6)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if probe_task:
                probe_task.cancel()
                await asyncio.gather(probe_task, return_exceptions=True)
        total = sum(counters)
        if total == 0:
            raise MeasurementError(f"{name}: no data moved in {self.cfg.duration_s:g} s")
        seen = ooo_samples if ooo is not None and ooo.known else None  # one reading per sample
        at_s = [t - start for t in rtts_at]
        return PhaseResult(method.steady_mbps(samples, rtt_ms, seen), total, samples, rtts, seen, at_s, ramp_s)

    def _download_stream(self, session: aiohttp.ClientSession, token: str, ooo: OooCounter) -> Callable[..., Any]:
        origin = self.origin and replace(self.origin, address=self.address)
        buffer = rawhttp.read_buffer()  # one for all streams: they share this event loop

        async def stream(i: int, counters: list[int], stop_at: float) -> None:
            loop = asyncio.get_running_loop()
            params = {"token": token, "stream": str(i), "bytes": str(REQUEST_BYTES)}
            if origin is not None:
                target = f"{origin.path_prefix}/api/v1/download?{urlencode(params)}"
                try:
                    await rawhttp.count_downloads(
                        origin,
                        target,
                        counters,
                        i,
                        stop_at,
                        self.cfg.connect_timeout_s,
                        f"download stream {i}",
                        buffer,
                        ooo,
                    )
                    return
                except rawhttp.Unsupported:
                    pass  # e.g. a chunked answer from a proxy: aiohttp counts it for the rest of the phase
            while loop.time() < stop_at:
                async with session.get(self.base + "/api/v1/download", params=params) as resp:
                    if resp.status != 200:
                        raise MeasurementError(f"download stream {i}: HTTP {resp.status} {await resp.text()}")
                    async for chunk in resp.content.iter_any():
                        counters[i] += len(chunk)

        return stream

    def _upload_stream(self, session: aiohttp.ClientSession, token: str) -> Callable[..., Any]:
        payload = self._payload
        size = 8 << 20

        async def body(i: int, counters: list[int]) -> AsyncIterator[memoryview]:
            offset = 0
            for _ in range(REQUEST_BYTES // CHUNK_BYTES):
                yield payload[offset : offset + CHUNK_BYTES]
                counters[i] += CHUNK_BYTES
                offset = (offset + CHUNK_BYTES) % size

        async def stream(i: int, counters: list[int], stop_at: float) -> None:
            loop = asyncio.get_running_loop()
            params = {"token": token, "stream": str(i)}
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(REQUEST_BYTES)}
            while loop.time() < stop_at:
                async with session.post(
                    self.base + "/api/v1/upload", params=params, data=body(i, counters), headers=headers
                ) as resp:
                    if resp.status != 200:
                        raise MeasurementError(f"upload stream {i}: HTTP {resp.status} {await resp.text()}")
                    await resp.read()

        return stream

    # -- the whole test -----------------------------------------------------------------------
    def _session(self, reset_on_close: bool = False) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.cfg.connect_timeout_s)
        pinned = family.PinnedResolver(self.origin.host, self.address) if self.origin and self.address else None
        connector = aiohttp.TCPConnector(
            limit=0, socket_factory=_reset_on_close_socket if reset_on_close else None, resolver=pinned
        )
        return aiohttp.ClientSession(
            timeout=timeout, connector=connector, read_bufsize=READ_BUFSIZE, auto_decompress=False
        )

    async def run(self) -> dict[str, Any]:
        """Measure, then submit unless the config says not to; the `ispeed test --json` object."""
        result, submission = await self.measure()
        if self.cfg.submit:
            answer = await self.submit(submission)
            result.update(
                submitted=True,
                valid=answer.get("valid"),
                provider=answer.get("provider", ""),
                province_code=answer.get("province_code", ""),
                commune_code=answer.get("commune_code", ""),
            )
            for key in (
                "invalid_reason",
                "ip_version",
                "rpm_down",
                "rpm_up",
                "network_type",
                "network_type_source",
                "location_source",
                "device_source",
                "flags",
                "udp_status",
            ):
                if key in answer:  # what the server stored, and the evidence behind it
                    result[key] = answer[key]
        return result

    async def _device_network(self) -> str:
        """What this computer's OS reports the connection to the server to be ('' when it cannot tell)."""
        from ispeed.client.netinfo import device_network

        if not self.address:
            return ""
        reported = await asyncio.to_thread(device_network, self.address)
        return reported.network_type or ""

    async def submit(self, submission: dict[str, Any]) -> dict[str, Any]:
        """POST a submission body (from `measure`) to the server; its JSON answer."""
        async with self._session() as session:
            answer: dict[str, Any] = await self._json(session, "POST", "/api/v1/results", json=submission)
            return answer

    async def measure(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run the phases; returns the result and the body to submit (token and receipt included)."""
        cfg = self.cfg
        if self.origin is not None:  # one address, one family for every connection of the test
            wait_s = min(cfg.connect_timeout_s, family.TRY_TIMEOUT_S)
            self.address = await family.choose(self.origin.host, self.origin.port, cfg.ip_version, wait_s)
        device_type = await self._device_network()
        # the latency WebSocket opens a connection of its own (probe_session): one that carried
        # the test's start would reach a server's main loop, not the loop that answers probes
        async with self._session() as session, self._session() as probe_session:
            ticket = await self._json(
                session, "POST", "/api/v1/tests", json={"streams": cfg.streams, "duration_s": cfg.duration_s}
            )
            token = ticket["token"]
            self.foreign = rpm.prober(ticket.get("paths"), token, self.origin, self.address)
            ws_url = self.base.replace("http", "ws", 1) + "/api/v1/latency"
            # method v2: UDP loss and delay probes beside the WebSocket ones, in every phase (client/udp.py)
            async with (
                udp.probing(
                    self.base, ticket.get("udp"), ticket["test_id"], cfg.udp_probes > 0, self.address
                ) as probes,
                probe_session.ws_connect(ws_url, params={"token": token}, autoping=True) as ws,
            ):
                prober = _Prober(ws)
                if probes:
                    probes.start_idle(cfg.udp_probes, cfg.udp_rate_per_s)
                idle = []
                idle_foreign = asyncio.create_task(self.foreign.idle()) if self.foreign else None
                for _ in range(max(cfg.latency_probes, method.MIN_LATENCY_PROBES)):
                    rtt = await prober.probe()
                    if rtt is not None:
                        idle.append(rtt)
                    await asyncio.sleep(0.02)
                if probes:
                    await probes.idle_done()
                if idle_foreign is not None:
                    await idle_foreign
                self.progress("latency", 0.0, 0.0)
                idle_rtt_ms = min(idle) if idle else None
                ooo = OooCounter()
                if probes:
                    probes.start("download")
                down = await self._phase(
                    "download", self._download_stream(session, token, ooo), prober, idle_rtt_ms, ooo
                )
                # upload streams reset their connections at the deadline: what still sits in the
                # socket buffers is dropped, not flushed into the server's count after the phase
                async with self._session(reset_on_close=True) as upload_session:
                    if probes:
                        await probes.stop()
                        probes.start("upload")
                    up = await self._phase("upload", self._upload_stream(upload_session, token), prober, idle_rtt_ms)
                if probes:
                    await probes.stop()
                    await probes.drain()
            await asyncio.sleep(0.2)  # let the server take in what was in flight
            counters = await self._json(session, "GET", f"/api/v1/tests/{ticket['test_id']}", params={"token": token})
        udp_fields, udp_submission = udp.report(probes, counters.get("udp"))
        latency_ms, jitter_ms = method.latency_summary(idle)
        loaded_down, _ = method.latency_summary(down.loaded_rtts_ms)
        loaded_up, _ = method.latency_summary(up.loaded_rtts_ms)
        figures = {
            "idle": rpm.phase(self.foreign, "idle", idle),
            "download": rpm.phase(self.foreign, "download", down.loaded_rtts_ms, down.loaded_at_s, down.ramp_s),
            "upload": rpm.phase(self.foreign, "upload", up.loaded_rtts_ms, up.loaded_at_s, up.ramp_s),
        }
        # the server's own figures are the result (method v1 §4); an older server without a
        # download figure leaves the client's
        server_up = float(counters.get("upload_mbps") or 0.0)
        server_down = float(counters.get("download_mbps") or 0.0)
        result: dict[str, Any] = {
            "test_id": ticket["test_id"],
            "server": self.base,
            "server_id": ticket.get("server_id", ""),
            "download_mbps": round(server_down if server_down > 0 else down.mbps, 3),
            "upload_mbps": round(server_up if server_up > 0 else up.mbps, 3),
            "download_mbps_client": round(down.mbps, 3),
            "upload_mbps_client": round(up.mbps, 3),
            "latency_ms": _r(latency_ms),
            "jitter_ms": _r(jitter_ms),
            "loaded_latency_down_ms": _r(loaded_down),
            "loaded_latency_up_ms": _r(loaded_up),
            "bytes_down": down.bytes,
            "bytes_up": int(counters.get("bytes_up") or 0),
            "streams": cfg.streams,
            "duration_s": cfg.duration_s,
            "network_type": cfg.network_type or device_type or "fixed",  # the server's answer replaces it
            "network_type_device": device_type or None,
            "tcp_min_rtt_ms": counters.get("tcp_min_rtt_ms"),
            "method_version": method.METHOD_VERSION if probes else "1",
            **udp_fields,
            "submitted": False,
            # method v2: responsiveness (the draft's RPM) per phase, and the IP version the server saw
            **rpm.fields(figures),
            "rpm_server": counters.get("rpm_server"),  # the server's own evidence (its handshake round trips)
            "server_delay_p99_ms": counters.get("server_delay_p99_ms"),
            "ip_version": counters.get("ip_version"),  # the server's: the family its transfers arrived over
            "server_address": self.address or None,
        }
        if self.foreign is not None and self.foreign.stopped:
            result["rpm_error"] = self.foreign.stopped
        # the body's names are the core table's (core.submission): a misspelt one fails here
        optional: dict[str, Any] = {}
        if cfg.network_type:
            optional["network_type"] = cfg.network_type
        if device_type:
            optional["network_type_device"] = device_type
        if cfg.device_id:
            optional["device_id"] = cfg.device_id
        for key in ("rpm_down", "rpm_up"):  # only when measured: a server before method v2 knows no such field
            if result[key] is not None:
                optional[key] = result[key]
        if cfg.lat is not None:
            optional.update(lat=cfg.lat, lon=cfg.lon)
            if cfg.accuracy_m is not None:
                optional["accuracy_m"] = cfg.accuracy_m
        submission = submission_body(
            test_id=result["test_id"],
            latency_ms=result["latency_ms"],
            jitter_ms=result["jitter_ms"],
            loaded_latency_down_ms=result["loaded_latency_down_ms"],
            loaded_latency_up_ms=result["loaded_latency_up_ms"],
            bytes_down=result["bytes_down"],
            bytes_up=result["bytes_up"],
            streams=result["streams"],
            duration_s=result["duration_s"],
            method_version=result["method_version"],
            # the client's own figures: the server checks them against its own and keeps them for audit
            download_mbps=result["download_mbps_client"],
            upload_mbps=result["upload_mbps_client"],
            token=token,
            receipt=counters.get("receipt"),
            client_kind=cfg.client_kind,
            client_version=_version(),
            **udp_submission,
            **optional,
        )
        return result, submission


def _reset_on_close_socket(addr_info: Any) -> socket.socket:
    """A TCP socket whose close() sends RST (SO_LINGER 0) instead of flushing its send buffer."""
    family, type_, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=type_, proto=proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return sock


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _version() -> str:
    try:
        from importlib.metadata import version

        return "ispeed/" + version("ispeed")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        return "ispeed/dev"
