"""ndt7 results: per-connection counters, pairing of download with upload, and storing.

An ndt7 run has no ispeed token: each WebSocket connection gets its own UUID. Clients run
the download subtest, then the upload subtest, on two fresh connections that share nothing
in the protocol, so this server pairs them itself:

- Pairing key: client IP + `client_name`, `client_version`, `client_library_name` and
  `client_library_version` from the query metadata.
- An upload that *starts* within `PAIR_GAP_S` seconds after a finished, unclaimed download of
  the same key claims it (the most recent one); when the upload ends, one `Measurement` is
  stored with the download's UUID as `test_id`.
- A download nobody claims within `PAIR_GAP_S` is stored alone; an upload with no download is
  stored alone. A lone subtest has the other figure left at 0 and is stored `valid=0` with
  reason `ndt7 incomplete: …`, so it is kept for audit but never enters the rankings
  (methodology v1 needs download and upload).
- Behind one NAT, two people running the same app at the same second could be cross-paired;
  each figure is still a genuine measurement of that network.

Figures (all from this server's own counters, like M-Lab's server-side rates):
download = 8 × TCPInfo.BytesAcked / TCPInfo.ElapsedTime (AppInfo bytes if TCP_INFO is missing),
upload = 8 × TCPInfo.BytesReceived / TCPInfo.ElapsedTime (the server's count is the truth),
latency = the smaller TCPInfo.MinRTT of the two connections, loaded latency (download) = the
median kernel smoothed RTT during the download. `method_version` is `ndt7`: one stream, the
whole subtest, no ramp-up excluded — not method v1.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import statistics
import time
from dataclasses import dataclass, field

from aiohttp import web

from ispeed.core.schema import Measurement
from ispeed.core.timeutil import local_date
from ispeed.server import ndt7_messages as m
from ispeed.server.keys import CONFIG, INGEST, METRICS, NDT7_RUNNING
from ispeed.server.labels import decide
from ispeed.server.privacy import ip_network, ip_version, keyed_hash

log = logging.getLogger("ispeed.server.ndt7")

PAIR_GAP_S = 15.0  # an upload must start this soon after its download ended
# A subtest too short or too small to measure is stored invalid with the reason (kept for audit,
# never published): it must run MIN_SUBTEST_FRACTION of the protocol's 10 s (an early exit after
# `early_exit` bytes is complete) and move MIN_SUBTEST_BYTES, as method v1 asks of a phase.
MIN_SUBTEST_FRACTION = 0.5
MIN_SUBTEST_BYTES = 64 << 10
STORE_TIMEOUT_S = 15.0
METHOD = "ndt7"
_KEY_FIELDS = ("client_name", "client_version", "client_library_name", "client_library_version")


@dataclass
class Subtest:
    """What this server saw of one ndt7 connection."""

    uuid: str
    kind: str  # download / upload
    ip: str
    network: str  # the client's /24 or /48, for the per-network limits
    metadata: dict[str, str]
    started_at: dt.datetime  # UTC, handshake complete
    started: float  # monotonic seconds, same instant
    early_exit_bytes: int | None = None
    client_addr: str = ""
    server_addr: str = ""
    app_bytes: int = 0
    elapsed_us: int = 0
    tcp: dict[str, int] | None = None  # last TCP_INFO reading
    min_rtt_us: int = 0
    rtt_samples_us: list[int] = field(default_factory=list)
    client_messages: int = 0
    early_exit: bool = False
    error: str = ""
    ended: float | None = None
    partner: Subtest | None = None  # an upload's claimed download

    def observe(self, elapsed_us: int, tcp: dict[str, int] | None) -> None:
        self.elapsed_us = max(self.elapsed_us, elapsed_us)
        if tcp is None:
            return
        self.tcp = tcp
        if tcp["MinRTT"]:
            self.min_rtt_us = min(self.min_rtt_us or tcp["MinRTT"], tcp["MinRTT"])
        if tcp["RTT"]:
            self.rtt_samples_us.append(tcp["RTT"])

    @property
    def key(self) -> tuple[str, ...]:
        return (self.ip, *(self.metadata.get(k, "") for k in _KEY_FIELDS))

    def counted_bytes(self) -> int:
        """What the server counts: acknowledged (download) or received (upload) bytes."""
        tcp = self.tcp
        counted = (tcp["BytesAcked"] if self.kind == "download" else tcp["BytesReceived"]) if tcp else 0
        return counted or self.app_bytes

    def mbps(self) -> float:
        """Server-side rate over the whole subtest (see the module docstring)."""
        tcp = self.tcp
        elapsed = (tcp["ElapsedTime"] if tcp else 0) or self.elapsed_us
        if elapsed <= 0:
            return 0.0
        return 8 * self.counted_bytes() / elapsed  # bytes/µs × 8 = Mbit/s


class Ndt7Results:
    """Running ndt7 subtests, downloads waiting for their upload, and the store calls."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.running = 0
        self._pending: dict[str, tuple[Subtest, asyncio.TimerHandle]] = {}  # download uuid ->
        self._tasks: set[asyncio.Task[None]] = set()

    def begin(self, sub: Subtest) -> None:
        self.running += 1
        self.app[NDT7_RUNNING].start(sub.network)

    def claim_download(self, upload: Subtest) -> None:
        """Attach the most recent unclaimed download of the same client that ended just before."""
        now = time.monotonic()
        best: Subtest | None = None
        for down, _ in self._pending.values():
            if down.key == upload.key and down.ended is not None and now - down.ended <= PAIR_GAP_S:
                if best is None or down.ended > (best.ended or 0):
                    best = down
        if best is not None:
            _, timer = self._pending.pop(best.uuid)
            timer.cancel()
            upload.partner = best

    def finish(self, sub: Subtest) -> None:
        """A subtest ended (normally or not): park a download, store an upload (with its pair)."""
        self.running -= 1
        self.app[NDT7_RUNNING].end(sub.network)
        sub.ended = time.monotonic()
        outcome = "error" if sub.error else ("early_exit" if sub.early_exit else "ok")
        self.app[METRICS].inc(f"ndt7_{sub.kind}_{outcome}_total")
        if sub.kind == "download":
            timer = asyncio.get_running_loop().call_later(PAIR_GAP_S, self._expire, sub.uuid)
            self._pending[sub.uuid] = (sub, timer)
        else:
            self._spawn(sub.partner, sub)

    def _expire(self, uuid: str) -> None:
        entry = self._pending.pop(uuid, None)
        if entry is not None:
            self._spawn(entry[0], None)

    def _spawn(self, down: Subtest | None, up: Subtest | None) -> None:
        task = asyncio.create_task(self._store(down, up))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """On shutdown: store the downloads still waiting, and wait for stores in progress."""
        for uuid in list(self._pending):
            entry = self._pending.pop(uuid)
            entry[1].cancel()
            self._spawn(entry[0], None)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _store(self, down: Subtest | None, up: Subtest | None) -> None:
        row = build_measurement(self.app, down, up)
        if not row.valid:
            self.app[METRICS].inc("ndt7_results_invalid_total")
        try:
            outcome = await asyncio.wait_for(self.app[INGEST].submit(row), STORE_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - counted and logged; the handler already answered
            self.app[METRICS].inc("ndt7_store_failed_total")
            log.warning("ndt7 result %s not stored: %s", row.test_id, exc)
            return
        self.app[METRICS].inc(f"ndt7_results_{outcome}_total")  # stored / duplicate / spooled


NDT7_RESULTS = web.AppKey("ndt7_results", Ndt7Results)


def unmeasurable(sub: Subtest) -> str:
    """'' when a subtest ran long enough and moved enough to measure, else the reason."""
    seconds = sub.elapsed_us / 1e6
    need_s = MIN_SUBTEST_FRACTION * m.SUBTEST_S
    moved = sub.counted_bytes()
    if moved < MIN_SUBTEST_BYTES or (seconds < need_s and not sub.early_exit):
        return (
            f"ndt7 {sub.kind} too short or too small to measure: {moved} bytes in {seconds:.1f} s "
            f"(at least {MIN_SUBTEST_BYTES} bytes over {need_s:g} s are needed)"
        )
    return ""


def build_measurement(app: web.Application, down: Subtest | None, up: Subtest | None) -> Measurement:
    """One stored row from a download and/or an upload subtest of the same client."""
    first = down or up
    assert first is not None
    cfg = app[CONFIG]
    labels = decide(
        app,
        first.ip,
        None,
        None,
        None,
        m.declared_network_type(first.metadata),
        None,
        first.metadata.get("device_id", ""),
    )
    place = labels.place
    rtts = [s.min_rtt_us for s in (down, up) if s is not None and s.min_rtt_us]
    missing = [kind for kind, s in (("download", down), ("upload", up)) if s is None]
    reason = f"ndt7 incomplete: no {missing[0]} subtest from this client" if missing else ""
    for s in (down, up):
        reason = reason or (unmeasurable(s) if s is not None else "")
    reason = reason or labels.invalid_reason
    return Measurement(
        test_id=first.uuid,
        started_at=first.started_at.replace(microsecond=0),
        local_date=local_date(first.started_at),
        network_type=labels.network_type,
        provider=place.provider,
        asn=place.asn,
        province_code=place.province_code,
        commune_code=place.commune_code,
        location_source=place.location_source,
        device_hash=labels.device_hash,
        ip_hash=keyed_hash(cfg.secret, "ip", first.ip),
        ip_network=ip_network(first.ip),
        download_mbps=round(down.mbps(), 3) if down else 0.0,
        upload_mbps=round(up.mbps(), 3) if up else 0.0,
        latency_ms=min(rtts) / 1000 if rtts else None,
        loaded_latency_down_ms=(
            statistics.median(down.rtt_samples_us) / 1000 if down and down.rtt_samples_us else None
        ),
        bytes_down=down.app_bytes if down else 0,
        bytes_up=up.app_bytes if up else 0,
        server_bytes_down=down.app_bytes if down else 0,
        server_bytes_up=(up.tcp["BytesReceived"] if up.tcp else up.app_bytes) if up else 0,
        streams=1,
        duration_s=round(sum(s.elapsed_us for s in (down, up) if s) / 1e6 / len([s for s in (down, up) if s]), 3),
        tcp_min_rtt_ms=min(rtts) / 1000 if rtts else None,
        tcp_retrans_ratio=(
            down.tcp["BytesRetrans"] / down.tcp["BytesSent"] if down and down.tcp and down.tcp["BytesSent"] else None
        ),
        server_id=cfg.server_id,
        client_kind="ndt7",
        client_version=m.client_label(first.metadata),
        method_version=METHOD,
        simulated=False,
        valid=not reason,
        invalid_reason=reason,
        client_download_mbps=None,  # ndt7 figures are the server's own; clients report none to it
        client_upload_mbps=None,
        network_type_source=labels.network_type_source,
        connection_type=place.connection_type,
        device_source=labels.device_source,
        flags=",".join(labels.flags),
        ip_version=ip_version(first.ip),
    )
