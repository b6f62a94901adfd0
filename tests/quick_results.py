"""Small, honest results for ingest tests: a real token, a few hundred KiB moved each way over
most of a 1 s phase (enough for the server to measure both: method v1 §4), then a submission of
the server's own figures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp

from tests.raw_client import counters, paced_download, paced_upload

PHASE_S = 0.95  # the whole 1 s phase, as an honest client does (a shorter one reads lower on the server)
CHUNK_BYTES = 16 << 10  # every 50 ms: ~200 KiB each way


async def quick_result(http: aiohttp.ClientSession, url: str) -> tuple[str, int, dict[str, object]]:
    """(test_id, HTTP status, answer) of one tiny test submitted to the server at `url`."""
    async with http.post(url + "/api/v1/tests", json={"streams": 1, "duration_s": 1}) as r:
        ticket = await r.json()
        if r.status != 201:
            return "", r.status, ticket
    token = ticket["token"]
    # both phases at once: the server times each on its own clock, and a result takes ~0.6 s
    started = asyncio.get_running_loop().time()
    await asyncio.gather(
        paced_download(http, url, token, PHASE_S, CHUNK_BYTES), paced_upload(http, url, token, PHASE_S, CHUNK_BYTES)
    )
    # the server's download timeline runs until the token's phase is over: read its figures after
    await asyncio.sleep(max(0.0, started + 1.0 + 0.15 - asyncio.get_running_loop().time()))
    seen = await counters(http, url, ticket["test_id"], token)
    body = {
        "token": token,
        "download_mbps": seen["download_mbps"],
        "upload_mbps": seen["upload_mbps"],
        "latency_ms": 1.0,
        "jitter_ms": 0.1,
        "device_id": f"dev-{ticket['test_id'][:4]}",
    }
    async with http.post(url + "/api/v1/results", json=body) as r:
        return ticket["test_id"], r.status, await r.json(content_type=None)


async def submit_many(
    url: str, total: int, concurrency: int, on_progress: Callable[[int], None] | None = None, max_seconds: float = 120.0
) -> tuple[set[str], list[int]]:
    """Submit `total` quick results; returns the ids answered 201/200 and every other status seen."""
    accepted: set[str] = set()
    other: list[int] = []
    done = 0
    deadline = time.monotonic() + max_seconds
    lock = asyncio.Lock()
    counter = iter(range(total))

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal done
        for _ in counter:
            if time.monotonic() > deadline:
                return
            try:
                test_id, status, answer = await quick_result(http, url)
            except (TimeoutError, aiohttp.ClientError):
                other.append(-1)
                continue
            async with lock:
                if status in (200, 201) and answer.get("status") in ("accepted", "duplicate"):
                    accepted.add(test_id)
                else:
                    other.append(status)
                done += 1
                if on_progress:
                    on_progress(done)

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return accepted, other
