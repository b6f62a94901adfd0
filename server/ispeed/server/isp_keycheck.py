"""The ISP portal's key check: a valid key is always served, and refusing others costs the store little.

A well-formed key is checked before anything else, so a valid key is served even from a client
network blocked for others' bad keys (carrier-grade NAT puts many clients behind one /24). The
store is read fresh for every key whose secret is right, so a revocation or an expiry applies
at the next request. What the store need not be asked:

- A key id's salt and hash never change, so they are remembered (`_rows`, bounded by the keys
  that exist): a wrong secret for a known id is refused by an in-memory HMAC, blocked or not.
- An id not remembered is looked up by id (one primary-key read) when the network is not
  blocked: the bad-key limiter bounds those reads per network. From a blocked network, the
  request waits for a read of the whole (small) key table that started after it arrived; such
  reads run at most once per `scan_interval_s`, shared by every waiting request, so a flood of
  invented ids costs one read per interval however many arrive, and a key created a moment ago
  still works.

Why the limiter does not also count per key id: key ids are shown in lists and logs by design,
so a per-id block would let anyone lock an ISP out of its own key — the defect this module
removes. A per-id count would slow no real attack either: the secret has 256 random bits, and
the 401 says the same for an unknown id and a wrong secret.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import cast

from ispeed.core.store import Store
from ispeed.core.timeutil import utcnow
from ispeed.server.isp_keys import KeyRows, Verdict, judge, key_rows
from ispeed.server.metrics import Metrics

RunInStore = Callable[[Callable[[Store], object]], Awaitable[object]]


class KeyChecker:
    """Verdicts on presented keys for the portal (see the module docstring for what reads the store)."""

    def __init__(self, run_in_store: RunInStore, metrics: Metrics, scan_interval_s: float = 1.0) -> None:
        self._run_in_store = run_in_store
        self._metrics = metrics
        self.scan_interval_s = scan_interval_s
        self._rows: dict[str, KeyRows] = {}
        self._scan: asyncio.Task[None] | None = None
        self._scan_started = -float("inf")  # monotonic start of the newest finished or running scan
        self._scanned_from = -float("inf")  # monotonic start of the newest finished scan

    async def check(self, key_id: str, secret: str, blocked: bool) -> Verdict:
        """The verdict on a well-formed key; `blocked`: its network is blocked for bad keys."""
        rows = self._rows.get(key_id)
        if rows is None and blocked:
            await self._scan_after(time.monotonic())
            rows = self._rows.get(key_id)
            if rows is None:
                return Verdict("unknown_key", key_id)
        if rows is not None:
            cached = judge(rows, key_id, secret, utcnow())
            if cached.outcome == "bad_secret":
                return cached
        self._metrics.inc("isp_key_lookups_total")
        fresh = cast(KeyRows, await self._run_in_store(lambda store: key_rows(store, key_id)))
        if fresh:
            self._rows[key_id] = fresh
        return judge(fresh, key_id, secret, utcnow())

    async def _scan_after(self, asked_at: float) -> None:
        """Return once a read of every key that started at or after `asked_at` has finished."""
        for _ in range(3):  # at most: the running scan (started earlier), then one of our own
            if self._scanned_from >= asked_at:
                return
            if self._scan is None or self._scan.done():
                self._scan = asyncio.create_task(self._scan_all(), name="ispeed-isp-key-scan")
            await asyncio.shield(self._scan)

    async def _scan_all(self) -> None:
        wait_s = self._scan_started + self.scan_interval_s - time.monotonic()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        started = self._scan_started = time.monotonic()
        self._metrics.inc("isp_key_scans_total")
        rows = cast(KeyRows, await self._run_in_store(key_rows))
        grouped: dict[str, KeyRows] = {}
        for row in rows:
            grouped.setdefault(row.record.key_id, []).append(row)
        self._rows.update(grouped)  # keys are never deleted
        self._scanned_from = started
