"""Durable on-disk spool for results the store could not take yet.

One append-only JSON-lines file plus a replay offset, both fsynced. A batch is appended (and
fsynced) before its clients hear "accepted"; replay reads from the offset in order, inserts
(idempotent by test_id, so a replay after a crash between insert and offset write never
duplicates), then advances the offset. When everything is replayed both files are reset.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from ispeed.core.errors import StoreUnavailable
from ispeed.core.schema import Measurement, from_record, to_record

log = logging.getLogger("ispeed.server.spool")


class SpoolFull(StoreUnavailable):
    """The spool reached its size limit: the store has been away too long."""


class Spool:
    """Append-only spool in `directory` (created), bounded to `max_bytes`."""

    def __init__(self, directory: str | Path, max_bytes: int = 1 << 30, warn_fraction: float = 0.8) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data_path = self.dir / "results.jsonl"
        self.offset_path = self.dir / "replayed.offset"
        self.max_bytes = max_bytes
        self.warn_bytes = int(max_bytes * warn_fraction)
        self._warned = False
        self._lock = threading.Lock()   # appends (spool thread) vs replay and reset (store thread)
        self.data_path.touch(exist_ok=True)
        self._drop_torn_tail()

    def _drop_torn_tail(self) -> None:
        """A crash mid-append can leave a partial last line, never acknowledged: cut it off."""
        size = self.size()
        if size == 0:
            return
        with open(self.data_path, "rb+") as fh:
            fh.seek(max(0, size - (1 << 20)))
            tail = fh.read()
            if tail.endswith(b"\n"):
                return
            cut = tail.rfind(b"\n")
            keep = size - len(tail) + cut + 1 if cut >= 0 else (0 if size <= (1 << 20) else size)
            log.warning("dropping a torn, unacknowledged last line from %s", self.data_path)
            fh.truncate(keep)
            os.fsync(fh.fileno())

    # -- sizes ---------------------------------------------------------------------------
    def size(self) -> int:
        return self.data_path.stat().st_size

    def offset(self) -> int:
        try:
            return int(self.offset_path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def pending_bytes(self) -> int:
        return max(0, self.size() - self.offset())

    def near_limit(self) -> bool:
        return self.size() >= self.warn_bytes

    # -- writing -------------------------------------------------------------------------
    def append(self, rows: list[Measurement]) -> None:
        """Append and fsync; SpoolFull when the limit would be passed (nothing written then)."""
        blob = "".join(json.dumps(to_record(r), separators=(",", ":")) + "\n" for r in rows).encode()
        with self._lock:
            self._append(blob)

    def _append(self, blob: bytes) -> None:
        if self.size() + len(blob) > self.max_bytes:
            raise SpoolFull(f"the result spool {self.dir} is full ({self.max_bytes} bytes); "
                            "the store has been unavailable too long")
        fd = os.open(self.data_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, blob)
            os.fsync(fd)
        finally:
            os.close(fd)
        if self.near_limit() and not self._warned:
            self._warned = True
            log.warning("result spool %s is above %d%% of its %d-byte limit", self.dir,
                        100 * self.warn_bytes // self.max_bytes, self.max_bytes)

    # -- replay --------------------------------------------------------------------------
    def read_batch(self, max_rows: int) -> tuple[list[Measurement], int]:
        """Up to `max_rows` spooled rows from the offset, and the offset after them."""
        start = self.offset()
        rows: list[Measurement] = []
        with open(self.data_path, "rb") as fh:
            fh.seek(start)
            end = start
            for line in fh:
                if not line.endswith(b"\n"):
                    break  # a torn last line (crash mid-append, never acknowledged)
                end += len(line)
                rows.append(from_record(json.loads(line)))
                if len(rows) >= max_rows:
                    break
        return rows, end

    def commit(self, new_offset: int) -> None:
        """Record that everything before `new_offset` is in the store; reset when all is."""
        with self._lock:
            if new_offset >= self.size():
                self._reset()
                return
            tmp = self.offset_path.with_suffix(".tmp")
            with open(tmp, "w") as fh:
                fh.write(str(new_offset))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.offset_path)
            self._fsync_dir()

    def _reset(self) -> None:
        with open(self.data_path, "wb") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        self.offset_path.unlink(missing_ok=True)
        self._fsync_dir()
        self._warned = False

    def _fsync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
