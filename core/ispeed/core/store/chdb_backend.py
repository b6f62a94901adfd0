"""Embedded store: chDB (ClickHouse engine in-process) on a local directory.

A chDB directory can be open in one process at a time (the engine locks `PATH/status`), and one
process can hold one chDB directory at a time. Both cases are detected here before the engine
is asked, so users get one clear line instead of an engine error.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ispeed.core.errors import StoreError, StoreLocked, StoreUnavailable
from ispeed.core.store.base import Store
from ispeed.core.store.url import StoreURL

log = logging.getLogger("ispeed.store")
_open_path: str | None = None  # the one chDB directory this process holds


def _load_engine() -> Any:
    """chDB's session module. The engine writes what it finds wrong while it loads (a 30-line stack
    trace in a container without cgroup memory files) straight to file descriptor 2, before any of
    its settings apply; that goes to the log (`-v`), not to the user's terminal."""
    if "chdb.session" in sys.modules:
        return sys.modules["chdb.session"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            from chdb import session  # lazy: heavy, and not needed by the client
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            said = captured.read().decode("utf-8", "replace").strip()
            if said:
                log.info("chDB while loading: %s", said)
    return session


def _lock_holder(path: str) -> str | None:
    """PID (as text) of another process holding the engine lock on `path`, else None."""
    status = os.path.join(path, "status")
    try:
        fd = os.open(status, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
            for line in text.splitlines():
                if line.startswith("PID:"):
                    return line.split(":", 1)[1].strip()
            return "?"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class ChdbStore(Store):
    """Store on an embedded chDB directory."""

    def __init__(self, url: StoreURL) -> None:
        super().__init__(url)
        global _open_path
        path = os.path.abspath(url.path)
        self.path = path
        if _open_path is not None and _open_path != path:
            raise StoreUnavailable(
                f"this process already holds the embedded store {_open_path}; close it before opening {path}"
            )
        holder = _lock_holder(path)
        if holder is not None:
            raise StoreLocked(
                f"the embedded store {url.redacted} is in use by another process (PID {holder}, "
                "probably `ispeed serve`): stop that process first, go through the server's HTTP "
                "API, or use a ClickHouse server store (--store clickhouse://host:9000/ispeed)"
            )
        try:
            os.makedirs(path, exist_ok=True)
            self._session: Any = _load_engine().Session(path)
        except Exception as exc:
            raise StoreUnavailable(f"cannot open the embedded store {url.redacted}: {exc}") from exc
        _open_path = path
        self._run("SET output_format_json_quote_64bit_integers = 0")
        self._run("SET output_format_json_quote_64bit_floats = 0")

    def _run(self, sql: str, fmt: str = "CSV") -> Any:
        try:
            return self._session.query(sql, fmt)
        except Exception as exc:
            raise StoreError(f"query failed on {self.url.redacted}: {exc}") from exc

    def _execute(self, sql: str) -> None:
        self._run(sql)

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        data = self._run(sql, "JSONCompactEachRow").bytes()
        return [tuple(json.loads(line)) for line in data.splitlines() if line]

    def _iter_query(self, sql: str) -> Iterator[tuple[Any, ...]]:
        try:
            stream = self._session.send_query(sql, "JSONCompactEachRow")
        except Exception as exc:
            raise StoreError(f"query failed on {self.url.redacted}: {exc}") from exc
        for chunk in stream:
            for line in chunk.bytes().splitlines():
                if line:
                    yield tuple(json.loads(line))

    def _insert_columns(self, table: str, columns: Mapping[str, Sequence[Any]], types: Mapping[str, str]) -> None:
        import pandas as pd  # chDB reads a DataFrame in place through the Python() table function

        frame = pd.DataFrame({name: list(values) for name, values in columns.items()})
        for name in frame.columns:
            ch_type = types.get(name, "")
            if ch_type == "Date":
                frame[name] = frame[name].astype(str)
            elif ch_type.startswith(("Nullable(UInt", "Nullable(Int")):  # None would make the column float NaN
                frame[name] = frame[name].astype(ch_type[len("Nullable(") : -1])  # pandas nullable UInt64, …
        names = ", ".join(frame.columns)
        self._run(f"INSERT INTO {table} ({names}) SELECT * FROM Python(frame)")

    def close(self) -> None:
        global _open_path
        session = getattr(self, "_session", None)
        if session is not None:
            session.close()
            self._session = None
            _open_path = None
