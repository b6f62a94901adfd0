"""Result ingest: a bounded queue drained in batches into the store, with a durable spool.

A submitter awaits its row's batch and hears "stored" (in the store), "duplicate" (that test_id
was already stored) or "spooled" (fsynced to the on-disk spool because the store is unreachable;
replayed in order once it is back). Nothing is acknowledged before one of those.

"The store is unavailable" (StoreUnavailable: connection refused, timeouts) and "the store
refused this row" (an encoding or type error) are told apart: a batch that fails the second way
is halved until the refused rows are found; they go to the quarantine (kept on disk, counted,
logged at WARNING with their test id) and their submitters hear 422, while the rest is stored.
The spool's replay does the same, so no row, and no unreadable line, blocks it. When the store
itself answers every row of a batch with an error (a table gone, too many parts), that is the
store failing, not the rows: the batch is handled as if the store were unavailable.
The store and the spool live on worker threads, so the event loop never waits on them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, TypeVar

from ispeed.core.errors import IspeedError, StoreError, StoreLocked, StoreUnavailable, ValidationError
from ispeed.core.schema import Measurement
from ispeed.core.store import Store
from ispeed.server.metrics import Metrics
from ispeed.server.quarantine import Quarantine
from ispeed.server.spool import Spool, SpooledLine

log = logging.getLogger("ispeed.server.ingest")

Outcome = Literal["stored", "duplicate", "spooled"]
T = TypeVar("T")
_Pending = tuple[Measurement, "asyncio.Future[Outcome]"]
Refused = list[tuple[Measurement, str]]
REPLAY_WARN_EVERY_S = 60.0  # a replay that keeps failing is logged at WARNING this often
STORE_FAILING_AFTER = 8  # rows refused by the store itself, none taken: the store is failing, not the rows


@dataclass
class _Tally:
    taken: int = 0  # rows the store took (stored or duplicate)
    store_refusals: int = 0  # single rows the store itself answered with an error (StoreError)


class ResultRefused(ValidationError):
    """The store refused this one result as it is (the rest of its batch was stored): 422."""

    def __init__(self, test_id: str, reason: str, kept: bool) -> None:
        where = "kept in quarantine for the operator" if kept else "not kept"
        kind = reason.split(":", 1)[0]  # the kind only: the full reason names the store, for the operator
        super().__init__(
            "body",
            f"the result store refused result {test_id} ({kind}); it is {where}: sending it again will not help",
            422,
        )


class Ingestor:
    """Batches measurements into the store, spooling them while the store is away."""

    def __init__(
        self,
        open_store: Callable[[], Store],
        metrics: Metrics,
        spool: Spool | None = None,
        batch_rows: int = 500,
        batch_wait_s: float = 0.05,
        max_queue: int = 20_000,
        retry_s: float = 2.0,
        replay_rows: int = 5_000,
        quarantine: Quarantine | None = None,
    ) -> None:
        self._open_store = open_store
        self._metrics = metrics
        self.spool = spool
        # refused rows: next to the spool unless placed elsewhere; without either, they are only refused
        self.quarantine = quarantine if quarantine is not None or spool is None else Quarantine(spool.dir)
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
        if self.quarantine is not None:
            q = self.quarantine
            metrics.gauges["results_quarantined_on_disk"] = lambda: float(q.entries())
        metrics.counters["results_quarantined_total"] += 0  # shown from the start

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

    async def _try_open(self, quiet: bool = False) -> StoreUnavailable | None:
        """Open the store; with a spool, a store that is away is returned (and logged unless quiet)."""
        try:
            self._store = await self._in_thread(self._open_store)
            log.info("store is open")
        except StoreLocked:
            raise
        except StoreUnavailable as exc:
            if self.spool is None:
                raise
            if not quiet:  # the replay loop reports its own failures, without flooding
                log.warning("store unavailable (%s); results go to the spool until it is back", exc)
            return exc
        return None

    async def start(self) -> None:
        await self._try_open()
        self._tasks = [
            asyncio.create_task(self._drain(), name="ispeed-ingest"),
            asyncio.create_task(self._replay_loop(), name="ispeed-replay"),
        ]

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
                except TimeoutError:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            await self._write(batch)

    async def _write(self, batch: list[_Pending]) -> None:
        rows = [row for row, _ in batch]
        outcomes: list[Outcome | ResultRefused]
        try:
            store = self._store
            if store is None or (self.spool is not None and self.spool.pending_bytes() > 0):
                raise StoreUnavailable("store down or spool backlog: keep order through the spool")
            new_ids, refused = await self._in_thread(self._insert_sorting, store, rows)
            kept = await self._set_aside(refused, [], "ingest")
            refused_at = {id(row): reason for row, reason in refused}
            seen: set[str] = set()
            outcomes = []
            for row in rows:
                if id(row) in refused_at:
                    outcomes.append(ResultRefused(row.test_id, refused_at[id(row)], kept))
                    continue
                fresh = row.test_id in new_ids and row.test_id not in seen
                seen.add(row.test_id)
                outcomes.append("stored" if fresh else "duplicate")
            self._metrics.inc("results_stored_total", outcomes.count("stored"))
            self._metrics.inc("results_duplicate_total", outcomes.count("duplicate"))
        except Exception as exc:  # noqa: BLE001 - any failure of the write: spooled, or answered as failed
            if self.spool is None:
                self._fail(batch, exc)
                return
            if not isinstance(exc, StoreUnavailable) or "spool backlog" not in str(exc):
                log.warning("store insert of %d results failed (%s); spooling them", len(rows), exc)
            try:
                await asyncio.get_running_loop().run_in_executor(self._spool_executor, self.spool.append, rows)
            except Exception as spool_exc:  # noqa: BLE001 - spool full or disk error: the client must retry
                log.error("could not spool %d results: %s", len(rows), spool_exc)
                self._fail(batch, spool_exc)
                return
            outcomes = ["spooled"] * len(rows)
            self._metrics.inc("results_spooled_total", len(rows))
            self._wake_replay.set()
        for (_, fut), outcome in zip(batch, outcomes, strict=True):
            if fut.done():
                continue
            if isinstance(outcome, ResultRefused):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome)

    def _fail(self, batch: list[_Pending], exc: BaseException) -> None:
        self._metrics.inc("ingest_failed_total", len(batch))
        if not isinstance(exc, IspeedError):  # an unforeseen error answers 503, never 500
            wrapped = StoreError(f"the result could not be stored ({exc.__class__.__name__}: {exc})")
            wrapped.__cause__ = exc
            exc = wrapped
        for _, fut in batch:
            if not fut.done():
                fut.set_exception(exc)

    # -- rows the store refuses ------------------------------------------------------------
    def _insert_sorting(self, store: Store, rows: list[Measurement]) -> tuple[set[str], Refused]:
        """Insert `rows` (store thread): the ids stored, and the rows the store refused with its reason.

        StoreUnavailable propagates (the store is away: nothing is refused for that). Any other
        failure is the store refusing something in this batch: each half is tried on its own,
        down to single rows, so at most 2n-1 inserts find every refused row. If the store itself
        (StoreError) refused every row, or STORE_FAILING_AFTER rows before taking any, it is
        failing: StoreUnavailable. A row Python cannot even convert (a lone surrogate) is refused
        on its own, always.
        """
        tally = _Tally()
        new_ids, refused = self._bisect(store, rows, tally)
        if refused and tally.taken == 0 and tally.store_refusals == len(refused):
            raise StoreUnavailable(
                f"the store refused all {len(refused)} rows of a batch ({refused[0][1]}): handled as a store failure"
            )
        return new_ids, refused

    def _bisect(self, store: Store, rows: list[Measurement], tally: _Tally) -> tuple[set[str], Refused]:
        try:
            report = store.insert_measurements(rows)
            tally.taken += len(rows)
            return set(report.new_ids), []
        except StoreUnavailable:
            raise
        except Exception as exc:
            if len(rows) == 1:
                if isinstance(exc, StoreError):
                    tally.store_refusals += 1
                    if tally.taken == 0 and tally.store_refusals >= STORE_FAILING_AFTER:
                        raise StoreUnavailable(
                            f"the store refused {tally.store_refusals} rows in a row and "
                            f"took none ({exc}): handled as a store failure"
                        ) from exc
                return set(), [(rows[0], f"{exc.__class__.__name__}: {exc}"[:500])]
        half = len(rows) // 2
        ids_a, refused_a = self._bisect(store, rows[:half], tally)
        ids_b, refused_b = self._bisect(store, rows[half:], tally)
        return ids_a | ids_b, refused_a + refused_b

    async def _set_aside(self, refused: Refused, unreadable: list[SpooledLine], source: str) -> bool:
        """Quarantine refused rows and unreadable lines; True when they are kept on disk.

        From the spool they must be kept before its offset moves past them, so a failure to keep
        them raises there; from live submissions (whose clients still hold them) it is logged.
        """
        if not refused and not unreadable:
            return False
        self._metrics.inc("results_refused_by_store_total", len(refused))
        q = self.quarantine
        where = q.path if q is not None else "nowhere (no spool and no --quarantine-dir)"
        for row, reason in refused:
            log.warning("result %s refused by the store (%s); moved to the quarantine %s", row.test_id, reason, where)
        for line in unreadable:
            log.warning(
                "spooled line at byte %d cannot be read (%s); moved to the quarantine %s",
                line.offset,
                line.problem,
                where,
            )
        if q is None:
            return False
        try:
            added = await self._in_thread(q.add_rows, refused, source)
            added += await self._in_thread(q.add_lines, unreadable)
        except Exception as exc:
            if source == "spool":
                raise
            log.error("could not keep %d refused results in the quarantine: %s", len(refused), exc)
            return False
        self._metrics.inc("results_quarantined_total", added)
        return True

    # -- the replayer ----------------------------------------------------------------------
    async def replay_once(self) -> int:
        """Move spooled rows into the store (in order); returns how many; raises if it fails."""
        if self.spool is None:
            return 0
        if self._store is None:
            away = await self._try_open(quiet=True)
            if self._store is None:
                raise StoreUnavailable(f"the store is still unavailable ({away})") from away
        store = self._store
        moved = 0
        while self.spool.pending_bytes() > 0:
            lines, end = await self._in_thread(self.spool.read_batch, self._replay_rows)
            if not lines:
                break  # only a torn tail: never acknowledged, cut at the next start
            rows = [line.row for line in lines if line.row is not None]
            refused: Refused = []
            if rows:
                _, refused = await self._in_thread(self._insert_sorting, store, rows)
            await self._set_aside(refused, [line for line in lines if line.row is None], "spool")
            await self._in_thread(self.spool.commit, end)
            moved += len(rows) - len(refused)
            self._metrics.inc("results_replayed_total", len(rows) - len(refused))
        if moved:
            log.info("replayed %d spooled results into the store", moved)
        return moved

    async def _replay_loop(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        warned_at = -REPLAY_WARN_EVERY_S
        while True:
            try:
                await asyncio.wait_for(self._wake_replay.wait(), self._retry_s)
            except TimeoutError:
                pass
            self._wake_replay.clear()
            if self.spool is None or (self.spool.pending_bytes() == 0 and self._store is not None):
                continue
            try:
                await self.replay_once()
            except Exception as exc:  # noqa: BLE001 - keep trying; the spool keeps the rows
                failures += 1
                self._metrics.inc("replay_failed_total")
                if loop.time() - warned_at >= REPLAY_WARN_EVERY_S:
                    warned_at = loop.time()
                    log.warning(
                        "spool replay failed (%d time(s) in a row; %d bytes wait in %s); retrying every %g s: %s",
                        failures,
                        self.spool.pending_bytes(),
                        self.spool.dir,
                        self._retry_s,
                        exc,
                    )
                else:
                    log.debug("spool replay failed again, will retry: %s", exc)
            else:
                if failures:
                    log.info("spool replay works again after %d failed attempts", failures)
                failures = 0

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
