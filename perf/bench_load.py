"""64 concurrent clients against one `ispeed serve` on loopback: throughput, errors, probe p99.

    python -m perf.bench_load [--clients 64] [--procs 4] [--streams 1] [--duration 5]

The clients are real `Engine` runs (latency, download, upload, result submission), spread over
--procs worker processes so one Python process is not the limit; all start together. All come
from 127.0.0.1, so the per-network limits are raised to --clients for the run. Reported:
aggregate download and upload (sum of the concurrent clients' figures), errors (target 0), and
the p50/p99 of every latency probe (idle and loaded) the clients sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--procs", type=int, default=4, help="client worker processes")
    parser.add_argument("--streams", type=int, default=1, help="streams per client")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--no-submit", action="store_true", help="do not submit results")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    from tests.serve_process import ServeProcess

    print(f"load average before: {os.getloadavg()}; {os.cpu_count()} CPUs")
    with (
        tempfile.TemporaryDirectory(prefix="ispeed-load-") as tmp,
        ServeProcess(
            f"chdb:{tmp}/store",
            extra=[
                "--rate-per-network",
                "10000",
                "--max-tests-per-network",
                str(args.clients),
                "--max-tests",
                str(max(64, args.clients)),
            ],
        ) as server,
    ):
        start_at = time.time() + 3.0
        shares = [args.clients // args.procs + (1 if i < args.clients % args.procs else 0) for i in range(args.procs)]
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
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
            for n in shares
            if n
        ]
        results: list[dict[str, Any]] = []
        rtts: list[float] = []
        for proc in procs:
            out, _ = proc.communicate(timeout=4 * args.duration + 300)
            data = json.loads(out)
            results += data["results"]
            rtts += data["rtts"]
    errors = [r["error"] for r in results if "error" in r]
    ok = [r for r in results if "error" not in r]
    rtts.sort()
    p = lambda q: rtts[min(len(rtts) - 1, int(q * len(rtts)))] if rtts else float("nan")  # noqa: E731
    down = sum(r["download_mbps"] for r in ok) / 1000
    up = sum(r["upload_mbps"] for r in ok) / 1000
    invalid = [r for r in ok if args.no_submit is False and r.get("valid") is not None and not r.get("valid")]
    print(f"load average after: {os.getloadavg()}")
    print(
        f"{args.clients} clients × {args.streams} stream(s), {args.duration:g} s phases, {len(procs)} client processes"
    )
    print(
        f"  aggregate download {down:.2f} Gbit/s, upload {up:.2f} Gbit/s "
        f"(per client median {statistics.median([r['download_mbps'] for r in ok]) if ok else 0:.0f} / "
        f"{statistics.median([r['upload_mbps'] for r in ok]) if ok else 0:.0f} Mbit/s)"
    )
    print(f"  errors {len(errors)} (target 0); results stored as invalid: {len(invalid)}")
    print(
        f"  latency probes {len(rtts)}: p50 {p(0.5):.2f} ms, p99 {p(0.99):.2f} ms, max {rtts[-1] if rtts else 0:.2f} ms"
    )
    for e in sorted(set(errors))[:5]:
        print(f"  error: {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
