"""A three-namespace network lab: server | delay line + rate limit | client, torn down on exit.

    server ns            middle ns (delayline.c, tbf on both egresses)          client ns
    s0 10.77.0.1 ──veth── ms ⇄ [delay RTT/2, loss p each way] ⇄ mc ──veth── c0 10.77.0.2

The bottleneck is a `tbf` on the middle namespace's egress toward each end (`mc`: download,
`ms`: upload), with a queue of one bandwidth-delay product (at least 150 kB) that fills under
load. Delay and loss come from `perf/delayline.c`, compiled with gcc on first use (kernels
here lack sch_netem). Offloads are off on every veth so frames are at most 1514 bytes: TCP
goodput is then rate × 1448/1514 (`GOODPUT_FACTOR`). The congestion control is pinned by the
namespaced sysctl in the server and client namespaces; the root namespace's allowed list is
widened for that and restored on close. Needs root; `unavailable()` says why it cannot run.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PERF_DIR = Path(__file__).resolve().parent
DELAYLINE_SRC = PERF_DIR / "delayline.c"
GOODPUT_FACTOR = 1448 / 1514  # TCP payload per 1514-byte frame (timestamps on)
SERVER_ADDR = "10.77.0.1"
CLIENT_ADDR = "10.77.0.2"
MIN_QUEUE_BYTES = 150_000
QUEUE_BDPS = 2
ALLOWED_CC_KEY = "net.ipv4.tcp_allowed_congestion_control"


@dataclass(frozen=True)
class LinkSpec:
    """One emulated path: bottleneck rate each way, added round-trip time, loss per direction.

    `loss` drops frames both ways; `loss_down` (server → client) and `loss_up` (client → server),
    when given, replace it for their direction: loss on one direction only.
    """

    rate_mbit: float
    rtt_ms: float
    loss: float = 0.0
    loss_down: float | None = None
    loss_up: float | None = None

    @property
    def down_loss(self) -> float:
        return self.loss if self.loss_down is None else self.loss_down

    @property
    def up_loss(self) -> float:
        return self.loss if self.loss_up is None else self.loss_up

    @property
    def truth_mbps(self) -> float:
        return self.rate_mbit * GOODPUT_FACTOR

    @property
    def queue_bytes(self) -> int:
        """Bottleneck queue: 2 × BDP (BBRv1 keeps up to 2 × BDP in flight; with 1 × BDP its own
        retransmissions cost 1-5 % of goodput and "truth" would depend on TCP), ≥ 150 kB."""
        return max(int(QUEUE_BDPS * self.rate_mbit * 1e6 / 8 * self.rtt_ms / 1000), MIN_QUEUE_BYTES)

    def label(self) -> str:
        if self.down_loss == self.up_loss:
            loss = f" loss {self.down_loss * 100:g}%" if self.down_loss else ""
        else:
            loss = "".join(
                f" loss {p * 100:g}% {way}" for p, way in ((self.down_loss, "down"), (self.up_loss, "up")) if p
            )
        return f"{self.rate_mbit:g} Mbit/s × {self.rtt_ms:g} ms{loss}"


def sh(*args: str, check: bool = True, timeout: float = 30) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(args)}` failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def unavailable() -> str | None:
    """Why the lab cannot run here, or None if it can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, tc, raw sockets)"
    for tool in ("ip", "tc", "ethtool", "gcc"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (Debian packages: iproute2, ethtool, gcc)"
    probe = f"isp-probe-{os.getpid()}"
    try:
        sh("ip", "netns", "add", probe)
    except (RuntimeError, OSError) as exc:
        return f"`ip netns add` is not permitted here: {exc}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def build_delayline(out_dir: Path | None = None) -> Path:
    """Compile delayline.c (cached by source modification time)."""
    out_dir = out_dir or Path(tempfile.gettempdir())
    binary = out_dir / f"ispeed-delayline-{int(DELAYLINE_SRC.stat().st_mtime)}"
    if not binary.exists():
        tmp = binary.with_suffix(f".{os.getpid()}")
        sh("gcc", "-O2", "-Wall", "-Wextra", "-pthread", "-o", str(tmp), str(DELAYLINE_SRC))
        tmp.replace(binary)
    return binary


def _realtime() -> list[str]:
    """The delay line stands in for hardware: run it SCHED_FIFO so a busy machine delays it less."""
    return ["chrt", "-f", "20"] if shutil.which("chrt") else []


class NetLab:
    """The lab for one LinkSpec and one congestion control; use as a context manager."""

    def __init__(self, link: LinkSpec, cc: str = "", seed: int = 1) -> None:
        tag = f"isp-{os.getpid()}-{int(time.monotonic() * 1000) % 100000}"
        self.ns_server, self.ns_down, self.ns_mid, self.ns_up, self.ns_client = (
            f"{tag}-s",
            f"{tag}-d",
            f"{tag}-m",
            f"{tag}-u",
            f"{tag}-c",
        )
        self.link, self.cc, self.seed = link, cc, seed
        self._delayline: subprocess.Popen[str] | None = None
        self._allowed_before: str | None = None
        self._created: list[str] = []
        self.delayline_stats = ""

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> NetLab:
        atexit.register(self.close)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(self) -> None:
        for ns in (self.ns_server, self.ns_down, self.ns_mid, self.ns_up, self.ns_client):
            sh("ip", "netns", "add", ns)
            self._created.append(ns)
            self.ns_sh(ns, "ip", "link", "set", "lo", "up")
            self.ns_sh(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            self.ns_sh(ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
        # s0 ─ rs [bridge: tbf on rm] rm ─ mr [delay line] mq ─ qm [bridge: tbf on qm] qc ─ c0
        veths = (
            (self.ns_server, "s0", self.ns_down, "rs"),
            (self.ns_down, "rm", self.ns_mid, "mr"),
            (self.ns_mid, "mq", self.ns_up, "qm"),
            (self.ns_up, "qc", self.ns_client, "c0"),
        )
        for ns_a, a, ns_b, b in veths:
            sh("ip", "-n", ns_a, "link", "add", a, "type", "veth", "peer", "name", b, "netns", ns_b)
        for ns in (self.ns_down, self.ns_up):
            self.ns_sh(ns, "ip", "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
        for ns_a, a, ns_b, b in veths:
            for ns, dev in ((ns_a, a), (ns_b, b)):
                self.ns_sh(
                    ns,
                    "ethtool",
                    "-K",
                    dev,
                    "tx",
                    "off",
                    "sg",
                    "off",
                    "tso",
                    "off",
                    "gso",
                    "off",
                    "gro",
                    "off",
                    check=False,
                )
                if ns in (self.ns_down, self.ns_up):
                    self.ns_sh(ns, "ip", "link", "set", dev, "master", "br0")
                self.ns_sh(ns, "ip", "link", "set", dev, "up")
        for ns in (self.ns_down, self.ns_up):
            self.ns_sh(ns, "ip", "link", "set", "br0", "up")
        for dev in ("mr", "mq"):
            self.ns_sh(self.ns_mid, "ip", "link", "set", dev, "promisc", "on")
        self.ns_sh(self.ns_server, "ip", "addr", "add", f"{SERVER_ADDR}/24", "dev", "s0")
        self.ns_sh(self.ns_client, "ip", "addr", "add", f"{CLIENT_ADDR}/24", "dev", "c0")
        if self.cc:
            self._pin_cc(self.cc)
        for ns in (self.ns_server, self.ns_client):  # room for 500 Mbit/s × 160 ms on 4 streams
            self.ns_sh(ns, "sysctl", "-qw", "net.ipv4.tcp_rmem=4096 131072 33554432")
            self.ns_sh(ns, "sysctl", "-qw", "net.ipv4.tcp_wmem=4096 16384 16777216")
        self.set_link(self.link)

    def set_link(self, link: LinkSpec, seed: int | None = None) -> None:
        """(Re)shape the path: both tbf queues, and a fresh delay line with the new delay/loss.

        `seed` (default: the lab's) starts the delay line's loss generator afresh: runs that
        should see the same loss process get the same seed, independent repetitions different ones.
        """
        self._stop_delayline()
        self.link = link
        if seed is not None:
            self.seed = seed
        for ns, dev in ((self.ns_down, "rm"), (self.ns_up, "qm")):
            self.ns_sh(ns, "tc", "qdisc", "del", "dev", dev, "root", check=False)
        if link.rate_mbit > 0:  # the bottleneck queues sit before the delay line, each way
            for ns, dev in ((self.ns_down, "rm"), (self.ns_up, "qm")):
                self.ns_sh(
                    ns,
                    "tc",
                    "qdisc",
                    "replace",
                    "dev",
                    dev,
                    "root",
                    "tbf",
                    "rate",
                    f"{link.rate_mbit}mbit",
                    "burst",
                    str(self._burst_bytes()),
                    "limit",
                    str(link.queue_bytes),
                )
        binary = build_delayline()
        delay_us = link.rtt_ms * 1000 / 2
        self._delayline = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.ns_mid,
                *_realtime(),
                str(binary),
                "mr",
                "mq",
                f"{delay_us:.1f}",
                f"{link.down_loss},{link.up_loss}",  # A = mr (server side) -> B = mq: downstream first
                "3600",
                str(self.seed),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._delayline.stderr is not None
        line = self._delayline.stderr.readline()
        if "ready" not in line:
            raise RuntimeError(f"delayline did not start: {line.strip()}")
        self._wait_reachable()

    def _burst_bytes(self) -> int:
        # ≥ 1 ms at the rate and ≥ 10 frames. Smaller buckets lose tokens whenever the qdisc
        # watchdog fires late, and the link then carries less than its nominal rate (tried: with
        # 2 frames cubic read 1-6 % under truth at 20 Mbit/s × 80 ms).
        return max(int(self.link.rate_mbit * 1e6 / 8 / 1000), 10 * 1514)

    def _pin_cc(self, cc: str) -> None:
        allowed = sh("sysctl", "-n", ALLOWED_CC_KEY).split()
        if cc not in allowed:
            self._allowed_before = " ".join(allowed)
            sh("sysctl", "-qw", f"{ALLOWED_CC_KEY}={' '.join(allowed + [cc])}")
        for ns in (self.ns_server, self.ns_client):
            self.ns_sh(ns, "sysctl", "-qw", f"net.ipv4.tcp_congestion_control={cc}")
            got = self.ns_sh(ns, "sysctl", "-n", "net.ipv4.tcp_congestion_control").strip()
            if got != cc:
                raise RuntimeError(f"namespace {ns} runs {got!r}, not the requested {cc!r}")

    def _wait_reachable(self, timeout_s: float = 10.0) -> None:
        """Until the client can open TCP to the server address (ARP through the delay line)."""
        code = (
            "import socket,sys\ns=socket.socket();s.settimeout(0.5)\n"
            f"r=s.connect_ex(('{SERVER_ADDR}',9));sys.exit(0 if r in (0,111) else 1)"
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if (
                subprocess.run(
                    ["ip", "netns", "exec", self.ns_client, "python3", "-c", code], capture_output=True, timeout=10
                ).returncode
                == 0
            ):
                return
            time.sleep(0.2)
        raise RuntimeError("client namespace cannot reach the server namespace through the delay line")

    def _stop_delayline(self) -> None:
        if self._delayline is not None:
            if self._delayline.poll() is None:
                self._delayline.send_signal(signal.SIGTERM)
            try:
                _, err = self._delayline.communicate(timeout=10)
                self.delayline_stats = (err or "").strip()
            except subprocess.TimeoutExpired:
                self._delayline.kill()
                self._delayline.communicate(timeout=5)
            self._delayline = None

    def close(self) -> None:
        self._stop_delayline()
        while self._created:
            subprocess.run(["ip", "netns", "del", self._created.pop()], capture_output=True)
        if self._allowed_before is not None:
            subprocess.run(["sysctl", "-qw", f"{ALLOWED_CC_KEY}={self._allowed_before}"], capture_output=True)
            self._allowed_before = None

    # -- running things inside ----------------------------------------------------------------
    @staticmethod
    def ns_sh(ns: str, *args: str, check: bool = True, timeout: float = 30) -> str:
        return sh("ip", "netns", "exec", ns, *args, check=check, timeout=timeout)

    def in_server(self, args: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns_server, *args]

    def in_client(self, args: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns_client, *args]

    def qdisc_stats(self) -> str:
        return self.ns_sh(self.ns_down, "tc", "-s", "qdisc", "show", "dev", "rm") + self.ns_sh(
            self.ns_up, "tc", "-s", "qdisc", "show", "dev", "qm"
        )
