"""`ispeed demo`: the whole platform in one process on an embedded demo store.

One process may hold an embedded (chDB) store, so everything runs around one in-process test
server: it opens the demo store through its ingest, real loopback tests run against it with the
Python client (attributed through a demo IP database: Viettel, Hà Nội), and the simulation,
aggregation and publishing run on the server's store thread. The server then keeps serving the
test page at `/` and the published site at `/site/` until Ctrl-C (or exits with `--no-serve`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ispeed.core.errors import ConfigError, StoreLocked
from ispeed.core.timeutil import VN_TZ, utcnow


@dataclass(frozen=True)
class DemoOptions:
    out_dir: Path = Path("var/demo/site")
    workdir: Path = Path("var/demo")
    host: str = "127.0.0.1"
    port: int = 8080
    serve: bool = True
    tests: int = 400_000  # simulated tests in the last complete month
    loopback_tests: int = 3
    history_months: int = 5  # earlier months (a fifth of the tests each) for the trend charts
    min_samples: int = 300
    test_duration_s: float = 2.0
    today: dt.date | None = None


class _Say:
    """Progress lines on stderr, with the time since the demo started."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, text: str) -> None:
        sys.stderr.write(f"ispeed demo [{time.monotonic() - self.t0:5.1f} s] {text}\n")
        sys.stderr.flush()


def _months_back(today: dt.date, n: int) -> tuple[int, int]:
    year, month = today.year, today.month - n
    while month < 1:
        year, month = year - 1, month + 12
    return year, month


def _simulated_rows(store: Any, year: int, month: int) -> int:
    from ispeed.core.timeutil import month_bounds

    start, end = month_bounds(year, month)
    rows = store.query(
        "SELECT count() FROM {db}.measurements WHERE simulated = 1 AND local_date >= {start} AND local_date < {end}",
        {"start": start, "end": end},
    )
    return int(rows[0][0])


def _simulate_and_aggregate(store: Any, options: DemoOptions, today: dt.date, say: _Say) -> None:
    """Simulated history (oldest first) aggregated into monthly_stats; the last complete month is left
    to `publish`. Months already simulated in this demo store are kept (a re-run is quicker)."""
    from ispeed.aggregator.aggregate import aggregate_month
    from ispeed.aggregator.methodology import Methodology
    from ispeed.aggregator.simulate import SimulationConfig, simulate

    method = Methodology(min_samples=options.min_samples, include_simulated=True)
    for back in range(options.history_months + 1, 0, -1):
        year, month = _months_back(today, back)
        tests = options.tests if back == 1 else max(options.tests // 5, 1000)
        label = f"{year:04d}-{month:02d}"
        if _simulated_rows(store, year, month) >= tests:
            say(f"{label}: {tests:,} simulated tests already in the demo store")
        else:
            report = simulate(store, SimulationConfig(year=year, month=month, tests=tests, seed=100 + back))
            say(f"{label}: simulated {report.rows:,} national tests in {report.seconds:.1f} s")
        if back > 1:
            aggregate_month(store, year, month, method, None)
            say(f"{label}: aggregated (for the 12-month trend)")


async def _loopback_tests(url: str, options: DemoOptions, say: _Say) -> list[dict[str, Any]]:
    from ispeed.client.config import TestConfig
    from ispeed.client.engine import Engine
    from ispeed.client.identity import DeviceIdentity

    # one device with a server-issued id; no declared network type: the demo's connection-type
    # database says the loopback is a fixed line (Cable/DSL), so the evidence decides `fixed`
    device_id = await DeviceIdentity(options.workdir / "client-state").for_server(url)
    results = []
    for i in range(options.loopback_tests):
        cfg = TestConfig(url, streams=2, duration_s=options.test_duration_s, device_id=device_id)
        result = await Engine(cfg).run()
        results.append(result)
        say(
            f"loopback test {i + 1}/{options.loopback_tests}: ↓ {result['download_mbps']:.0f} "
            f"↑ {result['upload_mbps']:.0f} Mbit/s (server-measured), latency {result['latency_ms']} ms; stored as "
            f"{result.get('provider') or '?'} / province {result.get('province_code') or '?'}, "
            f"{result.get('network_type')} (from {result.get('network_type_source')}), "
            f"device {result.get('device_source')}"
            f"{'' if result.get('valid') else ' (flagged invalid: ' + str(result.get('invalid_reason')) + ')'}"
        )
    return results


async def _main(options: DemoOptions, say: _Say) -> int:
    from ispeed.admin_geo import build_demo_connection_mmdb, build_demo_mmdb
    from ispeed.aggregator.methodology import Methodology
    from ispeed.publisher.publish import PublishOptions, publish
    from ispeed.server.app import drain, running
    from ispeed.server.config import ServerConfig
    from ispeed.server.keys import INGEST

    workdir = options.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    mmdb = build_demo_mmdb(workdir / "geo-demo.mmdb")
    connection_mmdb = build_demo_connection_mmdb(workdir / "geo-connection-demo.mmdb")
    store_url = f"chdb:{workdir / 'store-demo'}"
    today = options.today or utcnow().astimezone(VN_TZ).date()
    config = ServerConfig(
        host=options.host,
        port=options.port if options.serve else 0,
        store_url=store_url,
        server_id="demo-1",
        province_code="01",
        secret=secrets.token_hex(32).encode(),
        asn_db=str(mmdb),
        city_db=str(mmdb),
        connection_db=str(connection_mmdb),
        spool_dir="",
        site_dir=str(options.out_dir),
    )
    say(f"starting a test server on the demo store {store_url} (demo IP databases {mmdb}, {connection_mmdb})")
    try:
        context = running(config)
        url, app = await context.__aenter__()
    except OSError as exc:
        raise ConfigError("--port", options.port, f"cannot listen there ({exc.strerror}); try --port 0") from exc
    try:
        say(f"test server listening on {url}")
        await _loopback_tests(url, options, say)
        ingest = app[INGEST]
        await ingest.run_in_store(lambda store: _simulate_and_aggregate(store, options, today, say))
        method = Methodology(min_samples=options.min_samples, include_simulated=True)
        publish_options = PublishOptions(
            options.out_dir, method, today=today, force=True, test_url="/" if options.serve else ""
        )
        say("publishing the site (the last complete month and the month to date)")
        report: Any = await ingest.run_in_store(
            lambda store: publish(store, publish_options, progress=lambda text: None)
        )
        say(
            f"published {', '.join(report.built)}: {report.pages} pages in {report.seconds:.1f} s "
            f"into {options.out_dir}"
        )
        if not options.serve:
            sys.stderr.write(f"ispeed demo: site written to {options.out_dir / 'index.html'}\n")
            return 0
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        sys.stderr.write(
            f"ispeed demo: the published site is at {url}/site/\n"
            f"ispeed demo: run a test in the browser at {url}/ or `ispeed test --server {url}`\n"
            "ispeed demo: Ctrl-C to stop\n"
        )
        sys.stderr.flush()
        await stop.wait()
        await drain(app, 5.0)
        return 0
    finally:
        await context.__aexit__(None, None, None)


def run_demo(options: DemoOptions) -> int:
    """Run the demo; the exit code."""
    import uvloop

    say = _Say()
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(_main(options, say))
    except StoreLocked as exc:
        raise StoreLocked(f"{exc}; is another `ispeed demo` running? stop it first") from exc
