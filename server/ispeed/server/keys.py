"""Typed application state keys (aiohttp AppKey)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ispeed.server.config import ServerConfig
from ispeed.server.ingest import Ingestor
from ispeed.server.limits import RateLimiter, RunningCount
from ispeed.server.metrics import Metrics
from ispeed.server.registry import Registry


@dataclass
class ServerStatus:
    """Mutable run state: draining once SIGTERM arrived (no new tests)."""

    draining: bool = False


CONFIG = web.AppKey("config", ServerConfig)
REGISTRY = web.AppKey("registry", Registry)
METRICS = web.AppKey("metrics", Metrics)
INGEST = web.AppKey("ingest", Ingestor)
PAYLOAD = web.AppKey("payload", memoryview)
ATTRIBUTION = web.AppKey("attribution", object)
TEST_RATE = web.AppKey("test_rate", RateLimiter)
RESULT_RATE = web.AppKey("result_rate", RateLimiter)
STATUS = web.AppKey("status", ServerStatus)
NDT7_RUNNING = web.AppKey("ndt7_running", RunningCount)  # ndt7 subtests per network, for capacity
