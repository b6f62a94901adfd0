"""The aiohttp application of a test server: routes, state, and resource lifetimes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from ispeed.core import redact
from ispeed.core.store import Store, open_store
from ispeed.server import (
    admin_api,
    devices,
    fleet,
    isp_portal,
    measure,
    ndt7,
    results,
    rpm,
    site_serving,
    sockets,
    tests_api,
    udp_endpoint,
    webpage,
)
from ispeed.server.attribution import Attribution, GeoAttribution
from ispeed.server.config import ServerConfig
from ispeed.server.errors import error_middleware
from ispeed.server.ingest import Ingestor
from ispeed.server.keys import (
    ATTRIBUTION,
    CONFIG,
    INGEST,
    LOOP_LAG,
    METRICS,
    NDT7_RUNNING,
    PAYLOAD,
    REGISTRY,
    RESULT_RATE,
    STATUS,
    TEST_RATE,
    UDP,
    ServerStatus,
    UdpListening,
)
from ispeed.server.limits import RateLimiter, RunningCount, sample_downloads, sweep_overdue
from ispeed.server.loop_lag import LoopLag
from ispeed.server.metrics import Metrics
from ispeed.server.probe_runtime import LATENCY_PATH, PROBE_RUNTIME, ProbeRuntime
from ispeed.server.quarantine import Quarantine
from ispeed.server.registry import Registry
from ispeed.server.spool import Spool

log = logging.getLogger("ispeed.server")

READ_BUFSIZE = 1 << 20  # 64 KiB default limits several streams in one process (docs/architecture.md)


async def servers(request: web.Request) -> web.Response:
    """This server, and the fleet clients choose from (`servers`: the --fleet file, else it and its peers)."""
    cfg = request.app[CONFIG]
    registry = request.app[REGISTRY]
    url = f"{request.scheme}://{request.host}"
    return web.json_response(
        {
            "server_id": cfg.server_id,
            "province_code": cfg.province_code,
            "url": url,
            "servers": fleet.listed(cfg.fleet, fleet.FleetServer(cfg.server_id, url, cfg.province_code))
            + [{"url": p} for p in cfg.peers],
            "capacity": {
                "max_running_tests": cfg.max_running_tests,
                "max_streams": cfg.max_streams,
                "max_duration_s": cfg.max_duration_s,
            },
            "running_tests": registry.running(),
            "peers": list(cfg.peers),
        }
    )


async def metrics(request: web.Request) -> web.Response:
    return web.Response(text=request.app[METRICS].render(), content_type="text/plain")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "server_id": request.app[CONFIG].server_id})


def make_app(
    config: ServerConfig,
    store_opener: Callable[[], Store] | None = None,
    attribution: Attribution | None = None,
    publish_job: site_serving.PublishJob | None = None,
) -> web.Application:
    """Build the application; the store opens (on the store thread) when the app starts."""
    app = web.Application(middlewares=[error_middleware], client_max_size=1 << 20)
    app[CONFIG] = config
    app[REGISTRY] = Registry()
    app[STATUS] = ServerStatus()
    app[UDP] = UdpListening()  # the port is bound in running()
    app[NDT7_RUNNING] = RunningCount()
    app[TEST_RATE] = RateLimiter(config.tests_per_min_per_network, max(1.0, config.tests_per_min_per_network / 2))
    app[RESULT_RATE] = RateLimiter(config.results_per_min_per_network, max(1.0, config.results_per_min_per_network / 2))
    app[METRICS] = m = Metrics()
    app[PAYLOAD] = measure.make_payload()
    app[LOOP_LAG] = main_lag = LoopLag()
    m.gauges["main_loop_lag_p99_ms"] = lambda: round(main_lag.p99_ms(), 3)
    app[ATTRIBUTION] = attr = attribution or GeoAttribution(
        config.asn_db, config.city_db, config.connection_db, config.network_prefixes
    )
    opener = store_opener or (lambda: open_store(config.store_url))
    spool = Spool(config.spool_dir, config.spool_max_bytes) if config.spool_dir else None
    quarantine = Quarantine(config.quarantine_dir) if config.quarantine_dir else None  # else next to the spool
    app[INGEST] = ingest = Ingestor(
        opener, m, spool, config.ingest_batch_rows, config.ingest_batch_wait_s, quarantine=quarantine
    )
    m.gauges["tests_running"] = lambda: app[REGISTRY].running()
    m.gauges["tests_finished"] = lambda: app[REGISTRY].finished
    m.gauges["tests_abandoned"] = lambda: app[REGISTRY].abandoned

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        warm_up = getattr(attr, "warm_up", None)
        if warm_up:
            await asyncio.get_running_loop().run_in_executor(None, warm_up)
        await ingest.start()
        background = [
            asyncio.create_task(sweep_overdue(app[REGISTRY]), name="ispeed-sweeper"),
            asyncio.create_task(sample_downloads(app[REGISTRY]), name="ispeed-download-sampler"),
            asyncio.create_task(main_lag.run(), name="ispeed-loop-lag"),
        ]
        yield
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await ingest.close()
        close = getattr(attr, "close", None)
        if close:
            close()

    app.cleanup_ctx.append(store_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/servers", servers)
    app.router.add_post("/api/v1/tests", tests_api.start_test)
    app.router.add_get("/api/v1/tests/{test_id}", tests_api.test_counters)
    app.router.add_get("/api/v1/download", measure.download)
    app.router.add_post("/api/v1/upload", measure.upload)
    _add_probe_routes(app)
    app.router.add_post("/api/v1/results", results.submit_result)
    devices.add_routes(app, is_cellular=attr.is_cellular)  # POST /api/v1/devices (spec/identity.md)
    ndt7.add_routes(app)
    webpage.add_routes(app)
    isp_portal.add_routes(app)
    admin_api.add_routes(app)  # local, signed ISP-key management (`ispeed isp-key` on a held store)
    if config.site_dir:
        site_serving.add_routes(app, config, publish_job)  # the published site under /site/, nightly publish job
    return app


def _add_probe_routes(app: web.Application) -> None:
    app.router.add_get(LATENCY_PATH, measure.latency)
    app.router.add_get(rpm.PATH, rpm.probe)  # responsiveness: one foreign probe per new connection


def make_probe_app(app: web.Application) -> web.Application:
    """The probe thread's application (probe_runtime.py): the probe routes only, on `app`'s state."""
    probe_app = web.Application(middlewares=[error_middleware])
    probe_app[CONFIG] = app[CONFIG]
    probe_app[REGISTRY] = app[REGISTRY]
    probe_app[METRICS] = app[METRICS]
    probe_app[STATUS] = app[STATUS]
    _add_probe_routes(probe_app)
    probe_app.on_response_prepare.append(_one_request_per_connection)
    return probe_app


async def _one_request_per_connection(request: web.Request, response: web.StreamResponse) -> None:
    """A probe connection's answer (a refusal too) ends it: whatever the client asks next must
    come on a new connection, which the probe thread routes (this app holds the probe routes only)."""
    if not isinstance(response, web.WebSocketResponse):
        response.force_close()


@contextlib.asynccontextmanager
async def running(
    config: ServerConfig, app: web.Application | None = None
) -> AsyncIterator[tuple[str, web.Application]]:
    """Start the app on config.host:config.port (0 = a free port); yields (base URL, app)."""
    app = app or make_app(config)
    redact.install_on_peer_loggers()  # aiohttp logs the peer's address on request errors
    runner = web.AppRunner(
        app,
        read_bufsize=READ_BUFSIZE,
        access_log=None,
        shutdown_timeout=5.0,
        handle_signals=False,
        keepalive_timeout=config.keepalive_timeout_s,
    )
    await runner.setup()
    runtime: ProbeRuntime | None = None
    try:
        # made here, not by asyncio: `--host ::` takes IPv4 too (asyncio sets IPV6_V6ONLY)
        listening = sockets.listening_sockets(config.host, config.port)
        port = int(listening[0].getsockname()[1])
        if config.probe_thread:  # probes answered on their own loop; it hands the rest to this one
            probe_app = make_probe_app(app)
            assert runner.server is not None
            runtime = ProbeRuntime(probe_app, listening, asyncio.get_running_loop(), runner.server, app[METRICS])
            probe_app[LOOP_LAG] = runtime.lag
            probe_app[PROBE_RUNTIME] = runtime
            runtime.start()
        else:
            for sock in listening:
                await web.SockSite(runner, sock, backlog=1024).start()
        if config.udp:  # method v2's UDP probes: the TCP port's number unless --udp-port says otherwise
            udp_port = port if config.udp_port is None else config.udp_port
            listen = udp_endpoint.listen(
                config.host,
                udp_port,
                app[REGISTRY],
                config.secret,
                app[METRICS],
                lag=runtime.lag if runtime else app[LOOP_LAG],
                # a TCP port chosen free: a free UDP one when its number is taken
                fallback_free=config.udp_port is None and config.port == 0,
            )
            app[UDP].port, app[UDP].transports = await (runtime.call(listen) if runtime else listen)
            if runtime is not None:
                runtime.owned.extend(app[UDP].transports)
        host = config.host if ":" not in config.host else f"[{config.host}]"
        yield f"http://{host}:{port}", app
    finally:
        if runtime is not None:
            await runtime.stop()  # its loop closes the UDP transports it owns, and its connections
        else:
            for transport in app[UDP].transports:
                transport.close()
        await runner.cleanup()


async def serve(
    config: ServerConfig,
    ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
    publish_job: site_serving.PublishJob | None = None,
) -> None:
    """Run until `stop` is set; SIGTERM/SIGINT handlers of the caller set it."""
    async with running(config, make_app(config, publish_job=publish_job)) as (url, app):
        log.info("listening on %s", url)
        if ready:
            ready(url)
        await (stop or asyncio.Event()).wait()
        await drain(app, config.shutdown_grace_s)


async def drain(app: web.Application, grace_s: float) -> None:
    """Refuse new tests, and give running ones up to `grace_s` to finish and submit."""
    app[STATUS].draining = True
    registry = app[REGISTRY]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    while registry.open_tests() and loop.time() < deadline:
        await asyncio.sleep(0.2)
    if registry.open_tests():
        log.warning("stopping with %d tests unfinished after %.0f s", registry.open_tests(), grace_s)
