"""The ISP portal's audit log: a store row per request, and one per network and minute for a blocked flood.

Rows carry the key id the request claimed, the provider of that key, the raw request path, the
time, the client's /24 (IPv4) or /48 (IPv6) network — never its address — the outcome, the
HTTP status, and how many requests the row stands for. `AuditLog.record` returns once the row's
batch is in the store (batches of rows arriving together); every row is also logged to the
`ispeed.server.audit` logger, so a store failure loses nothing silently. Requests refused
because their network is blocked for bad keys are only counted (`RefusalTally`): one row per
(network, minute), written when the minute is over or the server stops, so a flood of N such
requests writes O(1) rows per network and minute, not N.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import NamedTuple

from ispeed.core.store import Store

log = logging.getLogger("ispeed.server.audit")

AUDIT_TYPES = {
    "at": "DateTime('UTC')",
    "key_id": "String",
    "provider": "String",
    "method": "String",
    "path": "String",
    "client_network": "String",
    "outcome": "String",
    "status": "UInt16",
    "requests": "UInt32",
}
MAX_PATH_CHARS = 512
OVERFLOW_NETWORK = "*"  # the tally's networks past `max_networks` in one minute, counted together


@dataclass(frozen=True)
class AuditEntry:
    at: dt.datetime
    key_id: str
    provider: str
    method: str
    path: str
    client_network: str
    outcome: str
    status: int
    requests: int = 1  # >1: refused requests of one network in the minute starting at `at`


def write_entries(store: Store, entries: list[AuditEntry]) -> None:
    columns: dict[str, list[object]] = {f.name: [] for f in fields(AuditEntry)}
    for e in entries:
        for name, value in asdict(e).items():
            if name == "at":
                value = int(e.at.timestamp())
            elif name == "path":
                value = e.path[:MAX_PATH_CHARS]
            columns[name].append(value)
    store.insert_columns("isp_audit", columns, AUDIT_TYPES)


_SELECT_ENTRIES = (
    "SELECT toUnixTimestamp(at), key_id, provider, method, path, client_network, outcome, status, requests"
    " FROM {db}.isp_audit WHERE at >= {since} ORDER BY at, key_id"
)


class _AuditRow(NamedTuple):
    """A row of _SELECT_ENTRIES, in its column order: AuditEntry's fields, the time as Unix seconds."""

    at_s: int
    key_id: str
    provider: str
    method: str
    path: str
    client_network: str
    outcome: str
    status: int
    requests: int


def read_entries(store: Store, since: dt.datetime | None = None) -> list[AuditEntry]:
    """Audit rows (oldest first), optionally from `since` on."""
    rows = store.query(_SELECT_ENTRIES, {"since": since or dt.datetime(1970, 1, 2, tzinfo=dt.UTC)})
    return [
        AuditEntry(
            at=dt.datetime.fromtimestamp(int(r.at_s), dt.UTC),
            key_id=str(r.key_id),
            provider=str(r.provider),
            method=str(r.method),
            path=str(r.path),
            client_network=str(r.client_network),
            outcome=str(r.outcome),
            status=int(r.status),
            requests=int(r.requests),
        )
        for r in map(_AuditRow._make, rows)
    ]


def last_used(store: Store) -> dict[str, dt.datetime]:
    """Each key's newest allowed request."""
    rows = store.query(
        "SELECT key_id, max(toUnixTimestamp(at)) FROM {db}.isp_audit WHERE outcome = 'allowed' GROUP BY key_id"
    )
    return {kid: dt.datetime.fromtimestamp(int(at), dt.UTC) for kid, at in rows}


class AuditLog:
    """Batches audit rows into the store through `run_in_store` (the server's store thread)."""

    def __init__(
        self,
        run_in_store: Callable[[Callable[[Store], object]], Awaitable[object]],
        batch_wait_s: float = 0.02,
        max_batch: int = 2_000,
    ) -> None:
        self._run_in_store = run_in_store
        self._wait_s = batch_wait_s
        self._max_batch = max_batch
        self._pending: list[tuple[AuditEntry, asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.written = 0
        self.failed = 0

    async def record(self, entry: AuditEntry) -> bool:
        """True once the row is stored; False when the store refused it (it is in the log)."""
        log.info(
            "%s %s %s key=%s provider=%s net=%s -> %s %d x%d",
            entry.at.isoformat(),
            entry.method,
            entry.path[:MAX_PATH_CHARS],
            entry.key_id or "-",
            entry.provider or "-",
            entry.client_network or "-",
            entry.outcome,
            entry.status,
            entry.requests,
        )
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((entry, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon(), name="ispeed-isp-audit")
        return await asyncio.shield(fut)

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self._wait_s)
        while self._pending:
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            entries = [e for e, _ in batch]
            try:
                await self._run_in_store(functools.partial(write_entries, entries=entries))
                ok = True
                self.written += len(entries)
            except Exception as exc:  # noqa: BLE001 - reported here and by each request's answer
                log.error("could not store %d ISP audit rows (%s); they are in this log above", len(entries), exc)
                ok = False
                self.failed += len(entries)
            for _, fut in batch:
                if not fut.done():
                    fut.set_result(ok)

    async def close(self) -> None:
        """Wait for rows still in flight (before the store closes)."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)


class RefusalTally:
    """Counts refused requests per (client network, minute) for the audit log; memory bounded by `max_networks`."""

    def __init__(self, audit: AuditLog, max_networks: int = 10_000) -> None:
        self._audit = audit
        self.max_networks = max_networks
        self._open: dict[tuple[int, str], tuple[AuditEntry, list[int]]] = {}  # (minute, network) -> first, [count]

    def add(self, at: dt.datetime, network: str, method: str, path: str, outcome: str, status: int) -> None:
        """Count one refused request (no I/O: a flood costs a dictionary update per request)."""
        minute = int(at.timestamp()) // 60 * 60
        if (minute, network) not in self._open and len(self._open) >= self.max_networks:
            network = OVERFLOW_NETWORK
        found = self._open.get((minute, network))
        if found is None:
            first = AuditEntry(
                dt.datetime.fromtimestamp(minute, dt.UTC),
                "",
                "",
                method,
                path[:MAX_PATH_CHARS],
                network,
                outcome,
                status,
            )
            self._open[(minute, network)] = (first, [1])
        else:
            found[1][0] += 1

    @property
    def pending_requests(self) -> int:
        return sum(count[0] for _, count in self._open.values())

    async def flush(self, now: dt.datetime | None = None) -> int:
        """Write the rows of the minutes before `now`'s (all rows when `now` is None); returns rows written."""
        cutoff = None if now is None else int(now.timestamp()) // 60 * 60
        done = [k for k in self._open if cutoff is None or k[0] < cutoff]
        rows = [replace(first, requests=count[0]) for first, count in (self._open.pop(k) for k in done)]
        await asyncio.gather(*(self._audit.record(row) for row in rows))  # one batch, not one write each
        return len(rows)

    async def run(self, every_s: float = 5.0) -> None:
        """Write each minute's rows within `every_s` of its end (the server cancels this at shutdown)."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.flush(dt.datetime.now(dt.UTC))
            except Exception:
                log.exception("could not write the counted ISP portal refusals; retrying at the next flush")
