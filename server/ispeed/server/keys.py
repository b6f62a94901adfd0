"""Typed application state keys (aiohttp AppKey)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from ispeed.server.config import ServerConfig
from ispeed.server.ingest import Ingestor
from ispeed.server.limits import RateLimiter, RunningCount
from ispeed.server.loop_lag import LoopLag
from ispeed.server.metrics import Metrics
from ispeed.server.registry import Registry


@dataclass
class ServerStatus:
    """Mutable run state: draining once SIGTERM arrived (no new tests)."""

    draining: bool = False


@dataclass
class UdpListening:
    """The UDP probe port once `running()` bound it (None: no UDP probing here), and its transports."""

    port: int | None = None
    transports: list[asyncio.DatagramTransport] = field(default_factory=list)


CONFIG = web.AppKey("config", ServerConfig)
REGISTRY = web.AppKey("registry", Registry)
METRICS = web.AppKey("metrics", Metrics)
INGEST = web.AppKey("ingest", Ingestor)
PAYLOAD = web.AppKey("payload", memoryview)
ATTRIBUTION = web.AppKey("attribution", object)
TEST_RATE = web.AppKey("test_rate", RateLimiter)
RESULT_RATE = web.AppKey("result_rate", RateLimiter)
STATUS = web.AppKey("status", ServerStatus)
UDP = web.AppKey("udp", UdpListening)  # method v2's UDP probe port (udp_endpoint.py)
NDT7_RUNNING = web.AppKey("ndt7_running", RunningCount)  # ndt7 subtests per network, for capacity
LOOP_LAG = web.AppKey("loop_lag", LoopLag)  # lateness of the loop that serves this app (loop_lag.py)
