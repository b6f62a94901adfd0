"""Result ingest: a bounded queue drained in batches into the store by one worker thread.

A submitter awaits its row's batch: it hears "accepted" only once the row is in the store.
The store lives on its own thread (chDB and clickhouse-driver block), so the event loop never
waits on ClickHouse.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ispeed.core.errors import StoreUnavailable
from ispeed.core.schema import Measurement
from ispeed.core.store import InsertReport, Store
from ispeed.server.metrics import Metrics

log = logging.getLogger("ispeed.server.ingest")

_Item = tuple[Measurement, "asyncio.Future[bool]"] | None  # None: stop after this batch


class Ingestor:
    """Batches measurements into the store; `submit` returns True if new, False if a duplicate."""

    def __init__(self, open_store: Callable[[], Store], metrics: Metrics, batch_rows: int = 500,
                 batch_wait_s: float = 0.05, max_queue: int = 10_000) -> None:
        self._open_store = open_store
        self._metrics = metrics
        self._batch_rows = batch_rows
        self._batch_wait_s = batch_wait_s
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(max_queue)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ispeed-store")
        self._store: Store | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def queue_length(self) -> int:
        return self._queue.qsize()

    async def run_in_store(self, fn: Callable[[Store], object]) -> object:
        """Run `fn(store)` on the store thread (for reads such as a result page)."""
        if self._store is None:
            raise StoreUnavailable("the store is not open")
        store = self._store
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, store)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._store = await loop.run_in_executor(self._executor, self._open_store)
        self._task = asyncio.create_task(self._drain(), name="ispeed-ingest")

    async def submit(self, row: Measurement) -> bool:
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((row, fut))
        except asyncio.QueueFull as exc:
            self._metrics.inc("ingest_rejected_total")
            raise StoreUnavailable("the ingest queue is full; retry in a few seconds") from exc
        return await fut

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            item = await self._queue.get()
            if item is None:
                return
            batch = [item]
            deadline = loop.time() + self._batch_wait_s
            while len(batch) < self._batch_rows:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            await self._write(batch)

    async def _write(self, batch: list[tuple[Measurement, "asyncio.Future[bool]"]]) -> None:
        rows = [row for row, _ in batch]
        store = self._store
        assert store is not None
        try:
            report: InsertReport = await asyncio.get_running_loop().run_in_executor(
                self._executor, store.insert_measurements, rows)
        except Exception as exc:  # every waiter hears of it; nothing is silently dropped
            log.warning("store insert of %d results failed: %s", len(rows), exc)
            self._metrics.inc("ingest_failed_total", len(rows))
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        self._metrics.inc("results_stored_total", report.inserted)
        self._metrics.inc("results_duplicate_total", report.duplicates)
        # a test_id repeated within the batch: the first in order is the stored one
        seen: set[str] = set()
        for row, fut in batch:
            fresh = row.test_id in report.new_ids and row.test_id not in seen
            seen.add(row.test_id)
            if not fut.done():
                fut.set_result(fresh)

    async def close(self) -> None:
        """Write what is queued, then close the store."""
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None
        if self._store is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._store.close)
            self._store = None
        self._executor.shutdown(wait=True)
