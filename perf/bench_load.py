"""64 concurrent clients against one `ispeed serve` on loopback: throughput, errors, probe delays.

    python -m perf.bench_load [--clients 64] [--procs 4] [--streams 1] [--duration 5] [--only thread|inline]

The clients are real `Engine` runs (latency, download, upload, result submission), spread over
--procs worker processes so one Python process is not the limit; all start together. All come
from 127.0.0.1, so the per-network limits are raised to --clients for the run. Reported:
aggregate download and upload (sum of the concurrent clients' figures), errors (target 0), the
results the server refused (422) or flagged, the
p50/p99 of every latency probe (idle and loaded) the clients sent, and the delay the server says
it added to the probes (each test's `server_delay_p99_ms`; target < 5 ms) with the lateness of
its loops. The server is pinned to one CPU and the clients to the other (`taskset`). Two servers
run in turn: probes on the main loop (`--probes-inline`, the reference, first) and on their own
thread (probe_runtime.py); the last line prints the ratios.

The clients' own round trips measure the clients too: 64 Python clients on one core wait for
their own loops (tens of ms to seconds), and some start a stream so late that it spans less
than half its phase (the server refuses such a result, 422) or read their own figures off by
more than the tolerance (`client_disagrees`). The server's figures are the ones that count here.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any


async def _clients(url: str, n: int, streams: int, duration_s: float, submit: bool, start_at: float) -> dict[str, Any]:
    from ispeed.client import engine
    from ispeed.client.config import TestConfig

    rtts: list[float] = []
    original = engine._Prober.probe

    async def probe(self: Any, timeout_s: float = 2.0) -> float | None:  # record every probe
        rtt = await original(self, timeout_s)
        if rtt is not None:
            rtts.append(rtt)
        return rtt

    engine._Prober.probe = probe  # type: ignore[method-assign]
    await asyncio.sleep(max(0.0, start_at - time.time()))

    async def one(i: int) -> dict[str, Any]:
        cfg = TestConfig(
            server_url=url,
            streams=streams,
            duration_s=duration_s,
            submit=submit,
            device_id=f"load-{os.getpid()}-{i}",
            client_kind="cli",
        )
        try:
            return await engine.Engine(cfg).run()
        except Exception as exc:  # noqa: BLE001 - counted and reported, not raised
            return {"error": f"{exc.__class__.__name__}: {exc}"}

    results = await asyncio.gather(*(one(i) for i in range(n)))
    return {"results": results, "rtts": rtts}


def worker(args: argparse.Namespace) -> int:
    out = asyncio.run(_clients(args.url, args.n, args.streams, args.duration, not args.no_submit, args.start_at))
    json.dump(out, sys.stdout)
    return 0


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(f"ispeed_{name} "):
            return float(line.split()[1])
    return float("nan")


def run(args: argparse.Namespace, inline: bool) -> dict[str, Any]:
    """One server (probes on their own thread, or `--probes-inline`), args.clients clients; the figures."""
    from tests.serve_process import ServeProcess

    with tempfile.TemporaryDirectory(prefix="ispeed-load-") as tmp:
        server = ServeProcess(
            f"chdb:{tmp}/store",
            extra=[
                "--rate-per-network",
                "10000",
                "--max-tests-per-network",
                str(args.clients),
                "--max-tests",
                str(max(64, args.clients)),
                *(["--probes-inline"] if inline else []),
            ],
        )
        server.args[:0] = _pin(args.server_cpus)  # every thread of the server, the probe thread too
        with server:
            start_at = time.time() + 3.0
            n, extra = divmod(args.clients, args.procs)
            shares = [n + (1 if i < extra else 0) for i in range(args.procs)]
            procs = [
                subprocess.Popen(
                    [
                        *_pin(args.client_cpus),
                        sys.executable,
                        "-m",
                        "perf.bench_load",
                        "--worker",
                        "--url",
                        server.url,
                        "--n",
                        str(n),
                        "--streams",
                        str(args.streams),
                        "--duration",
                        str(args.duration),
                        "--start-at",
                        str(start_at),
                        *(["--no-submit"] if args.no_submit else []),
                    ],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                for share in shares
                if share
            ]
            results: list[dict[str, Any]] = []
            rtts: list[float] = []
            for proc in procs:
                out, _ = proc.communicate(timeout=4 * args.duration + 300)
                data = json.loads(out)
                results += data["results"]
                rtts += data["rtts"]
            with urllib.request.urlopen(server.url + "/metrics", timeout=10) as r:
                metrics = r.read().decode()
    # the server's 422 for a phase it measured too little of: a client process starved of CPU
    # (16 Python clients share the clients' core) whose stream began too late to span half the phase
    refused = [r["error"] for r in results if "error" in r and "measured too little" in r["error"]]
    errors = [r["error"] for r in results if "error" in r and r["error"] not in refused]
    ok = [r for r in results if "error" not in r]
    delays = [float(r["server_delay_p99_ms"]) for r in ok if r.get("server_delay_p99_ms") is not None]
    return {
        "inline": inline,
        "errors": errors,
        "refused": refused,
        "ok": ok,
        "rtts": rtts,
        "delays": delays,
        "flagged": sum(1 for r in ok if "server_delayed" in (r.get("flags") or [])),
        "flags": collections.Counter(f for r in ok for f in (r.get("flags") or [])),
        "probe_lag_p99": _metric(metrics, "probe_loop_lag_p99_ms"),
        "main_lag_p99": _metric(metrics, "main_loop_lag_p99_ms"),
    }


def _pin(cpus: str) -> list[str]:
    return ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []


def report(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    ok, rtts, delays = figures["ok"], figures["rtts"], figures["delays"]
    down = sum(r["download_mbps"] for r in ok) / 1000
    up = sum(r["upload_mbps"] for r in ok) / 1000
    invalid = [r for r in ok if args.no_submit is False and r.get("valid") is not None and not r.get("valid")]
    print("probes inline, on the main loop (reference):" if figures["inline"] else "probes on their own thread:")
    print(
        f"  aggregate download {down:.2f} Gbit/s, upload {up:.2f} Gbit/s "
        f"(per client median {statistics.median([r['download_mbps'] for r in ok]) if ok else 0:.0f} / "
        f"{statistics.median([r['upload_mbps'] for r in ok]) if ok else 0:.0f} Mbit/s)"
    )
    print(
        f"  errors {len(figures['errors'])} (target 0); refused as too little measured: {len(figures['refused'])}; "
        f"results stored as invalid: {len(invalid)}; flags: {dict(figures['flags']) or 'none'}"
    )
    print(
        f"  latency probes {len(rtts)} (client's round trips): p50 {_percentile(rtts, 0.5):.2f} ms, "
        f"p99 {_percentile(rtts, 0.99):.2f} ms, max {max(rtts, default=0):.2f} ms"
    )
    print(
        f"  server-added delay, each test's p99 as the server measured it ({len(delays)} tests): "
        f"median {_percentile(delays, 0.5):.2f} ms, max {max(delays, default=float('nan')):.2f} ms (target < 5 ms); "
        f"tests flagged server_delayed: {figures['flagged']}"
    )
    print(
        f"  loop lateness p99: probe loop {figures['probe_lag_p99']:.2f} ms, main loop {figures['main_lag_p99']:.2f} ms"
    )
    for e in sorted(set(figures["errors"]))[:5]:
        print(f"  error: {e}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--procs", type=int, default=4, help="client worker processes")
    parser.add_argument("--streams", type=int, default=1, help="streams per client")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--no-submit", action="store_true", help="do not submit results")
    parser.add_argument("--server-cpus", default="0", help="taskset CPU list of the server ('' = not pinned)")
    parser.add_argument("--client-cpus", default="1", help="taskset CPU list of the clients ('' = not pinned)")
    parser.add_argument(
        "--only", choices=("thread", "inline"), help="run one design (default: both, the inline reference first)"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    print(f"load average before: {os.getloadavg()}; {os.cpu_count()} CPUs")
    print(
        f"{args.clients} clients × {args.streams} stream(s), {args.duration:g} s phases, {args.procs} client processes"
        f"; server on CPU {args.server_cpus or 'any'}, clients on CPU {args.client_cpus or 'any'}"
    )
    designs = [d for d in (True, False) if args.only in (None, "inline" if d else "thread")]
    runs = [run(args, inline) for inline in designs]
    for figures in runs:
        report(args, figures)
    if len(runs) == 2:
        ref, new = (_percentile(f["delays"], 0.5) for f in runs)
        ref_rtt, new_rtt = (_percentile(f["rtts"], 0.99) for f in runs)
        print(
            f"ratio own thread / inline: server-added delay (median of the tests' p99) {new / ref:.3f}, "
            f"client round-trip p99 {new_rtt / ref_rtt:.3f}"
        )
    print(f"load average after: {os.getloadavg()}")
    return 1 if any(f["errors"] for f in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
