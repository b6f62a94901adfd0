"""Load: 200 concurrent clients running short tests plus a stream of 500 result submissions/s.

One command (as root or not; loopback only, bounded in time):

    python -m perf.bench_ingest_load [--seconds 60] [--clients 200] [--rate 500] [--store URL]

Starts a throw-away ClickHouse server (unless --store is given) and `ispeed serve` with limits
raised for the run, then from two client processes (one Python process tops out well below
what the server takes):
- `--clients` concurrent clients loop over short tests: start, 256 KiB down, 256 KiB up, submit;
- a paced stream of `--rate` submissions per second, each a real tiny test (64 KiB each way).
Reports results accepted, errors by kind (target 0), submission latency p50/p99 (a result is
answered only once it is in the store or the fsynced spool, so this includes ingest), the
server's largest ingest queue, and at the end compares the store with what was accepted:
lost (target 0) and duplicated (target 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


async def _one(http, url: str, size: int) -> tuple[str, int, float, str]:  # type: ignore[no-untyped-def]
    """(test_id, status of the submission, submission seconds, error kind)."""
    import aiohttp

    try:
        async with http.post(url + "/api/v1/tests", json={"streams": 1, "duration_s": 1}) as r:
            ticket = await r.json()
            if r.status != 201:
                return "", r.status, 0.0, f"start {r.status}"
        token = ticket["token"]
        async with http.get(url + "/api/v1/download", params={"token": token, "bytes": str(size)}) as r:
            await r.read()
        async with http.post(url + "/api/v1/upload", params={"token": token}, data=b"u" * size) as r:
            await r.read()
        body = {"token": token, "download_mbps": 0.5, "upload_mbps": 0.5, "latency_ms": 1.0, "jitter_ms": 0.1}
        t0 = time.perf_counter()
        async with http.post(url + "/api/v1/results", json=body) as r:
            await r.read()
            return (
                ticket["test_id"],
                r.status,
                time.perf_counter() - t0,
                "" if r.status == 201 else f"submit {r.status}",
            )
    except (TimeoutError, aiohttp.ClientError) as exc:
        return "", -1, 0.0, type(exc).__name__


async def _worker_main(url: str, seconds: float, clients: int, rate: float) -> dict[str, object]:
    import aiohttp

    accepted: list[str] = []
    latencies: list[float] = []
    errors: dict[str, int] = {}
    stop_at = time.monotonic() + seconds

    def record(res: tuple[str, int, float, str]) -> None:
        test_id, status, secs, err = res
        if err:
            errors[err] = errors.get(err, 0) + 1
        else:
            accepted.append(test_id)
            latencies.append(secs)

    async def client_loop(http: aiohttp.ClientSession) -> None:
        while time.monotonic() < stop_at:
            record(await _one(http, url, 256 << 10))

    async def paced(http: aiohttp.ClientSession) -> None:
        interval = 1.0 / rate if rate > 0 else 0
        pending: set[asyncio.Task[None]] = set()
        next_at = time.monotonic()
        while rate > 0 and time.monotonic() < stop_at:
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(_paced_one(http))
            pending.add(task)
            task.add_done_callback(pending.discard)
            if len(pending) > 2000:  # bounded: a stalled server must not grow this forever
                break
        await asyncio.gather(*pending)

    async def _paced_one(http: aiohttp.ClientSession) -> None:
        record(await _one(http, url, 64 << 10))

    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=60)) as http:
        await asyncio.gather(paced(http), *(client_loop(http) for _ in range(clients)))
    return {"accepted": accepted, "latencies": latencies, "errors": errors}


def _worker(url: str, seconds: float, clients: int, rate: float, out: mp.Queue[str]) -> None:
    import uvloop

    out.put(json.dumps(uvloop.run(_worker_main(url, seconds, clients, rate))))


async def _poll_queue(url: str, stop: asyncio.Event, peak: list[float]) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            try:
                async with http.get(url + "/metrics") as r:
                    for line in (await r.text()).splitlines():
                        if line.startswith("ispeed_ingest_queue_length "):
                            peak[0] = max(peak[0], float(line.split()[1]))
            except aiohttp.ClientError:
                pass
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--rate", type=float, default=500.0, help="paced submissions per second (all processes)")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--store", default="", help="store URL (default: a throw-away ClickHouse server)")
    args = ap.parse_args()

    from tests.clickhouse_server import ClickHouseServer
    from tests.serve_process import ServeProcess

    from ispeed.core.store import open_store

    ch = None
    store = args.store
    if not store:
        ch = ClickHouseServer().start()
        store = f"{ch.url}/load"
    limits = ["--rate-per-network", "1000000", "--max-tests-per-network", "100000", "--max-tests", "100000"]
    try:
        with ServeProcess(store, limits) as server:
            print(
                f"server {server.url}, store {store}; {args.clients} clients + {args.rate:g} submissions/s "
                f"for {args.seconds:g} s from {args.processes} processes",
                file=sys.stderr,
            )
            out: mp.Queue[str] = mp.Queue()
            procs = [
                mp.Process(
                    target=_worker,
                    args=(server.url, args.seconds, args.clients // args.processes, args.rate / args.processes, out),
                )
                for _ in range(args.processes)
            ]
            peak = [0.0]

            async def watch() -> None:
                stop = asyncio.Event()
                poller = asyncio.create_task(_poll_queue(server.url, stop, peak))
                while any(p.is_alive() for p in procs):
                    await asyncio.sleep(0.5)
                stop.set()
                await poller

            t0 = time.monotonic()
            for p in procs:
                p.start()
            results = [json.loads(out.get(timeout=args.seconds + 300)) for _ in procs]
            asyncio.run(watch())
            for p in procs:
                p.join(30)
            wall = time.monotonic() - t0
        accepted = [t for r in results for t in r["accepted"]]
        latencies = sorted(x for r in results for x in r["latencies"])
        errors: dict[str, int] = {}
        for r in results:
            for k, v in r["errors"].items():
                errors[k] = errors.get(k, 0) + v
        with open_store(store) as s:
            counts = dict(s.query("SELECT test_id, count() FROM {db}.measurements GROUP BY test_id"))
        lost = len(set(accepted) - set(counts))
        duplicated = sum(1 for n in counts.values() if n > 1)
        q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
        print(
            json.dumps(
                {
                    "seconds": round(wall, 1),
                    "accepted": len(accepted),
                    "accepted_per_s": round(len(accepted) / wall, 1),
                    "errors": errors,
                    "submit_latency_ms": {"p50": round(q[49] * 1000, 2), "p99": round(q[98] * 1000, 2)},
                    "peak_ingest_queue": peak[0],
                    "stored": len(counts),
                    "lost": lost,
                    "duplicated": duplicated,
                },
                indent=1,
            )
        )
        return 0 if not errors and lost == 0 and duplicated == 0 else 1
    finally:
        if ch is not None:
            ch.remove()


if __name__ == "__main__":
    sys.exit(main())
