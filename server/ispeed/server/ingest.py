"""Result ingest: a bounded queue drained in batches into the store, with a durable spool.

A submitter awaits its row's batch and hears "stored" (in the store), "duplicate" (that test_id
was already stored) or "spooled" (fsynced to the on-disk spool because the store is unreachable
or failing; replayed in order once it recovers). Nothing is acknowledged before one of those.
The store and the spool live on one worker thread, so the event loop never waits on them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, TypeVar

from ispeed.core.errors import StoreLocked, StoreUnavailable
from ispeed.core.schema import Measurement
from ispeed.core.store import Store
from ispeed.server.metrics import Metrics
from ispeed.server.spool import Spool

log = logging.getLogger("ispeed.server.ingest")

Outcome = Literal["stored", "duplicate", "spooled"]
T = TypeVar("T")
_Pending = tuple[Measurement, "asyncio.Future[Outcome]"]


class Ingestor:
    """Batches measurements into the store, spooling them while the store is away."""

    def __init__(self, open_store: Callable[[], Store], metrics: Metrics, spool: Spool | None = None,
                 batch_rows: int = 500, batch_wait_s: float = 0.05, max_queue: int = 20_000,
                 retry_s: float = 2.0, replay_rows: int = 5_000) -> None:
        self._open_store = open_store
        self._metrics = metrics
        self.spool = spool
        self._batch_rows = batch_rows
        self._batch_wait_s = batch_wait_s
        self._retry_s = retry_s
        self._replay_rows = replay_rows
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue(max_queue)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ispeed-store")
        # spool appends never queue behind a store call stuck on a dead server's timeout
        self._spool_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ispeed-spool")
        self._store: Store | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._wake_replay = asyncio.Event()
        metrics.gauges["ingest_queue_length"] = lambda: self._queue.qsize()
        metrics.gauges["store_up"] = lambda: float(self._store is not None)
        if spool is not None:
            metrics.gauges["spool_pending_bytes"] = spool.pending_bytes
            metrics.gauges["spool_near_limit"] = lambda: float(spool.near_limit())

    @property
    def queue_length(self) -> int:
        return self._queue.qsize()

    async def _in_thread(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def run_in_store(self, fn: Callable[[Store], object]) -> object:
        """Run `fn(store)` on the store thread (reads such as a result page)."""
        store = self._store
        if store is None:
            raise StoreUnavailable("the result store is unavailable right now")
        return await self._in_thread(fn, store)

    async def _try_open(self) -> None:
        try:
            self._store = await self._in_thread(self._open_store)
            log.info("store is open")
        except StoreLocked:
            raise
        except StoreUnavailable as exc:
            if self.spool is None:
                raise
            log.warning("store unavailable (%s); results go to the spool until it is back", exc)

    async def start(self) -> None:
        await self._try_open()
        self._tasks = [asyncio.create_task(self._drain(), name="ispeed-ingest"),
                       asyncio.create_task(self._replay_loop(), name="ispeed-replay")]

    async def submit(self, row: Measurement) -> Outcome:
        fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((row, fut))
        except asyncio.QueueFull as exc:
            self._metrics.inc("ingest_rejected_total")
            raise StoreUnavailable("the ingest queue is full; retry in a few seconds") from exc
        return await fut

    # -- the writer ----------------------------------------------------------------------
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

    async def _write(self, batch: list[_Pending]) -> None:
        rows = [row for row, _ in batch]
        outcomes: list[Outcome]
        try:
            if self._store is None or (self.spool is not None and self.spool.pending_bytes() > 0):
                raise StoreUnavailable("store down or spool backlog: keep order through the spool")
            report = await self._in_thread(self._store.insert_measurements, rows)
            seen: set[str] = set()
            outcomes = []
            for row in rows:
                fresh = row.test_id in report.new_ids and row.test_id not in seen
                seen.add(row.test_id)
                outcomes.append("stored" if fresh else "duplicate")
            self._metrics.inc("results_stored_total", outcomes.count("stored"))
            self._metrics.inc("results_duplicate_total", outcomes.count("duplicate"))
        except Exception as exc:
            if self.spool is None:
                self._fail(batch, exc)
                return
            if not isinstance(exc, StoreUnavailable) or "spool backlog" not in str(exc):
                log.warning("store insert of %d results failed (%s); spooling them", len(rows), exc)
            try:
                await asyncio.get_running_loop().run_in_executor(self._spool_executor, self.spool.append, rows)
            except Exception as spool_exc:  # spool full or disk error: the client must retry
                log.error("could not spool %d results: %s", len(rows), spool_exc)
                self._fail(batch, spool_exc)
                return
            outcomes = ["spooled"] * len(rows)
            self._metrics.inc("results_spooled_total", len(rows))
            self._wake_replay.set()
        for (_, fut), outcome in zip(batch, outcomes):
            if not fut.done():
                fut.set_result(outcome)

    def _fail(self, batch: list[_Pending], exc: BaseException) -> None:
        self._metrics.inc("ingest_failed_total", len(batch))
        for _, fut in batch:
            if not fut.done():
                fut.set_exception(exc)

    # -- the replayer ----------------------------------------------------------------------
    async def replay_once(self) -> int:
        """Move spooled rows into the store (in order); returns how many; raises if it fails."""
        if self.spool is None:
            return 0
        if self._store is None:
            await self._try_open()
            if self._store is None:
                raise StoreUnavailable("the store is still unavailable")
        moved = 0
        while self.spool.pending_bytes() > 0:
            rows, end = await self._in_thread(self.spool.read_batch, self._replay_rows)
            if rows:
                await self._in_thread(self._store.insert_measurements, rows)
            await self._in_thread(self.spool.commit, end)
            moved += len(rows)
            self._metrics.inc("results_replayed_total", len(rows))
        if moved:
            log.info("replayed %d spooled results into the store", moved)
        return moved

    async def _replay_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake_replay.wait(), self._retry_s)
            except asyncio.TimeoutError:
                pass
            self._wake_replay.clear()
            if self.spool is None or (self.spool.pending_bytes() == 0 and self._store is not None):
                continue
            try:
                await self.replay_once()
            except Exception as exc:  # noqa: BLE001 - keep trying; the spool keeps the rows
                log.debug("replay failed, will retry: %s", exc)
                self._metrics.inc("replay_failed_total")

    async def close(self) -> None:
        """Write what is queued, try one last replay, then close the store."""
        if self._tasks:
            drain, replay = self._tasks
            await self._queue.put(None)
            await drain
            replay.cancel()
            await asyncio.gather(replay, return_exceptions=True)
            self._tasks = []
            try:
                await self.replay_once()
            except Exception as exc:  # noqa: BLE001
                log.warning("results left in the spool for the next start: %s", exc)
        if self._store is not None:
            await self._in_thread(self._store.close)
            self._store = None
        self._executor.shutdown(wait=True)
        self._spool_executor.shutdown(wait=True)
