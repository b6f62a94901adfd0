"""The published site inside `ispeed serve`: its files under `/site/`, and the nightly publish job.

The job is handed in by the entry point (a `PublishJob`: the command line passes `ispeed publish`'s
own function; the server does not import the publisher). It runs on the server's store thread —
the one process that may hold an embedded store — every day at `config.publish_at` (Vietnam
local time), so an embedded installation needs no cron. Files are read per request, so pages
appear as soon as a build has written them (each file is replaced atomically).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from ispeed.core.errors import ConfigError
from ispeed.core.store import Store
from ispeed.core.timeutil import VN_TZ
from ispeed.server.config import ServerConfig
from ispeed.server.keys import INGEST, METRICS

log = logging.getLogger("ispeed.server.site")

PREFIX = "/site"
_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".json": "application/json",
    ".csv": "text/csv",
    ".gz": "application/gzip",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

PublishJob = Callable[[Store, Path], object]  # (store, site directory) -> a report to log


def parse_publish_at(text: str) -> dt.time | None:
    """`HH:MM` (Vietnam local time) or `off`/empty for no nightly job; ConfigError naming the value otherwise."""
    if text in ("", "off"):
        return None
    m = _TIME.match(text)
    if not m:
        raise ConfigError("--publish-at", text, "use HH:MM in Vietnam local time (e.g. 02:30) or 'off'")
    return dt.time(int(m.group(1)), int(m.group(2)))


def seconds_until(at: dt.time, now: dt.datetime) -> float:
    """Seconds from `now` (aware) to the next `at` in Vietnam local time (always > 0)."""
    local = now.astimezone(VN_TZ)
    target = local.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    if target <= local:
        target += dt.timedelta(days=1)
    return (target - local).total_seconds()


def _resolve(root: Path, tail: str) -> Path | None:
    """The file for URL path `tail` inside `root` (directories mean index.html); None outside or missing."""
    try:
        path = (root / tail).resolve()
        path.relative_to(root)
    except (ValueError, OSError):
        return None
    if path.is_dir():
        path = path / "index.html"
    return path if path.is_file() else None


def add_routes(app: web.Application, config: ServerConfig, publish_job: PublishJob | None = None) -> None:
    """Serve `config.site_dir` under /site/ and, if `config.publish_at` is set and a job is given,
    run `publish_job` into it every night."""
    root = Path(config.site_dir).resolve()
    publish_at = parse_publish_at(config.publish_at)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(f"{PREFIX}/")

    async def serve_file(request: web.Request) -> web.StreamResponse:
        path = _resolve(root, request.match_info["tail"])
        if path is None:
            missing = root / "404.html"
            body = missing.read_text(encoding="utf-8") if missing.is_file() else "<h1>404</h1>"
            return web.Response(text=body, status=404, content_type="text/html")
        kind = _TYPES.get(path.suffix, "application/octet-stream")
        headers = {
            "Content-Type": kind + ("; charset=utf-8" if kind.startswith("text/") or kind.endswith("json") else ""),
            "Cache-Control": "no-cache",
        }
        return web.FileResponse(path, headers=headers)

    app.router.add_get(PREFIX, redirect)
    app.router.add_get(PREFIX + "/{tail:.*}", serve_file)
    if publish_at is not None and publish_job is not None:
        app.cleanup_ctx.append(_nightly(config, publish_at, publish_job))
    elif publish_at is not None:
        log.warning(
            "--publish-at %s is set but this server was started without a publish job; no nightly publish runs",
            config.publish_at,
        )


async def publish_now(app: web.Application, config: ServerConfig, job: PublishJob) -> object:
    """Run the publish job once on the store thread; returns its report."""
    site_dir = Path(config.site_dir)
    report = await app[INGEST].run_in_store(lambda store: job(store, site_dir))
    log.info("published the site: %s", report)
    return report


def _nightly(config: ServerConfig, at: dt.time, job: PublishJob) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds_until(at, dt.datetime.now(dt.UTC)))
                try:
                    await publish_now(app, config, job)
                    app[METRICS].inc("site_publish_total")
                except Exception as exc:
                    log.error("nightly publish failed: %s", exc, exc_info=True)
                    app[METRICS].inc("site_publish_failed_total")

        task = asyncio.create_task(loop(), name="ispeed-nightly-publish")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return ctx
