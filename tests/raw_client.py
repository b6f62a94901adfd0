"""A hand-driven client for API tests: paced transfers a test controls, honest or not.

The Python client (`ispeed.client.engine`) runs whole tests; these helpers move bytes of one
test the way a test needs (slowly, briefly, from another address) so the server's own timelines
have something known to measure.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp


async def paced_download(
    http: aiohttp.ClientSession,
    url: str,
    token: str,
    seconds: float,
    chunk_bytes: int = 64 << 10,
    interval_s: float = 0.05,
    stream: int = 0,
) -> int:
    """GET `chunk_bytes` every `interval_s` for `seconds` on one stream; bytes read."""
    loop = asyncio.get_running_loop()
    stop = loop.time() + seconds
    total = 0
    params = {"token": token, "stream": str(stream), "bytes": str(chunk_bytes)}
    while loop.time() < stop:
        async with http.get(url + "/api/v1/download", params=params) as resp:
            assert resp.status == 200, await resp.text()
            total += len(await resp.read())
        await asyncio.sleep(interval_s)
    return total


async def paced_upload(
    http: aiohttp.ClientSession,
    url: str,
    token: str,
    seconds: float,
    chunk_bytes: int = 64 << 10,
    interval_s: float = 0.05,
    stream: int = 0,
) -> int:
    """POST `chunk_bytes` every `interval_s` for `seconds` on one stream; bytes the server counted."""
    loop = asyncio.get_running_loop()
    stop = loop.time() + seconds
    total = 0
    body = b"\x5a" * chunk_bytes
    while loop.time() < stop:
        async with http.post(
            url + "/api/v1/upload",
            params={"token": token, "stream": str(stream)},
            data=body,
            headers={"Content-Type": "application/octet-stream"},
        ) as resp:
            assert resp.status == 200, await resp.text()
            total += int((await resp.json())["bytes"])
        await asyncio.sleep(interval_s)
    return total


async def counters(http: aiohttp.ClientSession, url: str, test_id: str, token: str) -> dict[str, Any]:
    """The server's own view of a test, with its signed receipt."""
    async with http.get(f"{url}/api/v1/tests/{test_id}", params={"token": token}) as resp:
        assert resp.status == 200, await resp.text()
        answer: dict[str, Any] = await resp.json()
        return answer
