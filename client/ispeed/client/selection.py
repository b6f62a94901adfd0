"""Choose a test server: the lowest median latency among the candidates (HTTP round trips)."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import aiohttp

from ispeed.client.config import check_server_url
from ispeed.core.errors import ServerUnreachable

PROBES = 5


async def server_list(list_url: str, timeout_s: float = 10.0) -> list[str]:
    """Candidate base URLs from a server list (`GET /api/v1/servers` of any ispeed server)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as http:
        try:
            async with http.get(list_url) as resp:
                data: Any = await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise ServerUnreachable(f"cannot read the server list at {list_url} ({exc}); check --server-list") from exc
    urls: list[str] = []
    entries = data.get("servers") if isinstance(data, dict) and "servers" in data else None
    if entries is None and isinstance(data, dict):
        entries = [{"url": data.get("url")}] + [{"url": p} if isinstance(p, str) else p for p in data.get("peers", [])]
    for entry in entries or []:
        url = entry.get("url") if isinstance(entry, dict) else entry
        if isinstance(url, str) and url not in urls:
            urls.append(check_server_url(url))
    if not urls:
        raise ServerUnreachable(f"the server list at {list_url} names no servers")
    return urls


async def _median_rtt_ms(http: aiohttp.ClientSession, base: str) -> float | None:
    rtts = []
    for _ in range(PROBES):
        t0 = time.perf_counter()
        try:
            async with http.get(base.rstrip("/") + "/healthz") as resp:
                await resp.read()
                if resp.status != 200:
                    return None
        except (TimeoutError, aiohttp.ClientError):
            return None
        rtts.append((time.perf_counter() - t0) * 1000)
    return statistics.median(rtts)


async def choose(candidates: list[str], timeout_s: float = 5.0) -> tuple[str, list[dict[str, Any]]]:
    """The reachable candidate with the lowest median RTT, and every candidate's figure."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as http:
        rtts = await asyncio.gather(*(_median_rtt_ms(http, c) for c in candidates))
    report = [{"url": c, "rtt_ms": None if r is None else round(r, 3)} for c, r in zip(candidates, rtts, strict=True)]
    reachable = [(r, i) for i, r in enumerate(rtts) if r is not None]
    if not reachable:
        raise ServerUnreachable(f"none of the {len(candidates)} servers answered: {', '.join(candidates)}")
    return candidates[min(reachable)[1]], report
