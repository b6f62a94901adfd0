"""Durable on-disk spool for results the store could not take yet.

One append-only JSON-lines file plus a replay offset, both fsynced and private (0600: they hold
hashes, networks and GPS). A batch is appended whole and fsynced before its clients hear
"accepted"; a write the disk cuts short is cut back, so no torn line stays, and the caller hears
SpoolFull. Replay reads from the offset in order, inserts (idempotent by test_id, so a row
replayed twice is stored once), then advances the offset. When everything is replayed both files
are reset, the offset first.

Every crash point leaves a state that replays each acknowledged row (again, harmlessly) and
never skips one or starts mid-line:
- mid-append: a torn, unacknowledged last line, cut off at the next start;
- mid-commit: the old offset (the new one is written aside, then renamed over it);
- mid-reset: no offset and the old data (replayed again), then no offset and no data;
- an offset that does not fit the data (left by an older version) is not trusted: replay from 0.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from ispeed.core.errors import StoreUnavailable
from ispeed.core.schema import Measurement, from_record, to_record

log = logging.getLogger("ispeed.server.spool")

PRIVATE = 0o600
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class SpoolError(StoreUnavailable):
    """The spool could not keep a batch; nothing of it was kept, the client must retry."""


class SpoolFull(SpoolError):
    """The spool reached its size limit (the store has been away too long), or its disk is full."""


@dataclass(frozen=True)
class SpooledLine:
    """One line read back from the spool: its row, or why it cannot be read."""

    offset: int
    raw: bytes
    row: Measurement | None
    problem: str = ""


def open_private(path: Path, flags: int) -> int:
    """os.open with mode 0600, also fixing the mode of a file an older version left readable."""
    fd = os.open(path, flags | os.O_CREAT, PRIVATE)
    if stat.S_IMODE(os.fstat(fd).st_mode) != PRIVATE:
        os.fchmod(fd, PRIVATE)
    return fd


def append_durably(path: Path, blob: bytes, what: str) -> None:
    """Append all of `blob` and fsync; on failure cut the file back to where it was and raise SpoolError.

    os.write may write part of the data (a disk filling up): loop until all is written.
    """
    fd = open_private(path, os.O_WRONLY | os.O_APPEND)
    try:
        start = os.fstat(fd).st_size
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, start)  # no torn line may stay: it would glue onto the next one
                os.fsync(fd)
            except OSError as cut_exc:
                log.error("could not cut %s back to %d bytes after a failed write: %s", path, start, cut_exc)
            if exc.errno in _DISK_FULL:
                raise SpoolFull(
                    f"the disk of {what} {path.parent} is full ({exc.strerror}): free space there or move it"
                ) from exc
            raise SpoolError(f"could not write {what} {path}: {exc}") from exc
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Append-only spool in `directory` (created 0700), bounded to `max_bytes`."""

    def __init__(self, directory: str | Path, max_bytes: int = 1 << 30, warn_fraction: float = 0.8) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.data_path = self.dir / "results.jsonl"
        self.offset_path = self.dir / "replayed.offset"
        self.max_bytes = max_bytes
        self.warn_bytes = int(max_bytes * warn_fraction)
        self._warned = False
        self._lock = threading.Lock()  # appends (spool thread) vs replay and reset (store thread)
        os.close(open_private(self.data_path, os.O_RDONLY))
        if self.offset_path.exists():
            os.close(open_private(self.offset_path, os.O_RDONLY))
        self._drop_torn_tail()
        self._check_offset()

    def _drop_torn_tail(self) -> None:
        """A crash mid-append can leave a partial last line, never acknowledged: cut it off."""
        size = self.size()
        if size == 0:
            return
        fd = os.open(self.data_path, os.O_RDWR)
        try:
            start = max(0, size - (1 << 20))
            tail = os.pread(fd, size - start, start)
            if tail.endswith(b"\n"):
                return
            cut = tail.rfind(b"\n")
            keep = start + cut + 1 if cut >= 0 else (0 if start == 0 else size)
            log.warning("dropping a torn, unacknowledged last line from %s", self.data_path)
            os.ftruncate(fd, keep)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _check_offset(self) -> None:
        """An offset past the data or inside a line (an older version's crash) is dropped: replay from 0."""
        offset = self.offset()
        if offset == 0:
            return
        fits = 0 < offset <= self.size()
        if fits:
            with open(self.data_path, "rb") as fh:
                fh.seek(offset - 1)
                fits = fh.read(1) == b"\n"
        if not fits:
            log.warning(
                "replay offset %d does not fit %s (%d bytes); replaying it from the start "
                "(stored results are skipped by test_id)",
                offset,
                self.data_path,
                self.size(),
            )
            os.unlink(self.offset_path)
            fsync_dir(self.dir)

    # -- sizes ---------------------------------------------------------------------------
    def size(self) -> int:
        return self.data_path.stat().st_size

    def offset(self) -> int:
        try:
            return int(self.offset_path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            return -1  # garbage: _check_offset drops it

    def pending_bytes(self) -> int:
        return max(0, self.size() - self.offset())

    def near_limit(self) -> bool:
        return self.size() >= self.warn_bytes

    # -- writing -------------------------------------------------------------------------
    def append(self, rows: list[Measurement]) -> None:
        """Append and fsync; SpoolFull when the limit would be passed or the disk is full (nothing kept then)."""
        blob = "".join(json.dumps(to_record(r), separators=(",", ":")) + "\n" for r in rows).encode("ascii")
        with self._lock:
            if self.size() + len(blob) > self.max_bytes:
                raise SpoolFull(
                    f"the result spool {self.dir} is full ({self.max_bytes} bytes); "
                    "the store has been unavailable too long"
                )
            append_durably(self.data_path, blob, "the result spool")
            if self.near_limit() and not self._warned:
                self._warned = True
                log.warning(
                    "result spool %s is above %d%% of its %d-byte limit",
                    self.dir,
                    100 * self.warn_bytes // self.max_bytes,
                    self.max_bytes,
                )

    # -- replay --------------------------------------------------------------------------
    def read_batch(self, max_rows: int) -> tuple[list[SpooledLine], int]:
        """Up to `max_rows` spooled lines from the offset, and the offset after them.

        A line that cannot be read back (not JSON, a record of another shape) comes with its
        problem instead of a row, so the caller can set it aside and go on.
        """
        start = self.offset()
        lines: list[SpooledLine] = []
        with open(self.data_path, "rb") as fh:
            fh.seek(start)
            end = start
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break  # a torn last line (crash mid-append, never acknowledged)
                try:
                    lines.append(SpooledLine(end, raw, from_record(json.loads(raw))))
                except Exception as exc:  # noqa: BLE001 - any undecodable line is set aside, never blocks
                    lines.append(SpooledLine(end, raw, None, f"{exc.__class__.__name__}: {exc}"[:500]))
                end += len(raw)
                if len(lines) >= max_rows:
                    break
        return lines, end

    def commit(self, new_offset: int) -> None:
        """Record that everything before `new_offset` is in the store; reset when all is."""
        with self._lock:
            if new_offset >= self.size():
                self._reset()
                return
            tmp = self.offset_path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
            try:
                os.write(fd, str(new_offset).encode("ascii"))  # a few bytes: one write
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.offset_path)
            fsync_dir(self.dir)

    def _reset(self) -> None:
        """Offset first: a crash after it replays the old data again (idempotent), never skips new data."""
        try:
            os.unlink(self.offset_path)
        except FileNotFoundError:
            pass
        fsync_dir(self.dir)
        fd = os.open(self.data_path, os.O_WRONLY)
        try:
            os.ftruncate(fd, 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._warned = False
