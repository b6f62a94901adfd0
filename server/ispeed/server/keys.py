"""Typed application state keys (aiohttp AppKey)."""

from __future__ import annotations

from aiohttp import web

from ispeed.server.config import ServerConfig
from ispeed.server.ingest import Ingestor
from ispeed.server.metrics import Metrics
from ispeed.server.registry import Registry

CONFIG = web.AppKey("config", ServerConfig)
REGISTRY = web.AppKey("registry", Registry)
METRICS = web.AppKey("metrics", Metrics)
INGEST = web.AppKey("ingest", Ingestor)
PAYLOAD = web.AppKey("payload", memoryview)
ATTRIBUTION = web.AppKey("attribution", object)
