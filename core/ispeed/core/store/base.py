"""The store interface shared by both backends: migrations, idempotent inserts, queries."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ispeed.core.errors import MigrationError
from ispeed.core.schema import MEASUREMENT_COLUMNS, Measurement, to_columns
from ispeed.core.store.sql import render
from ispeed.core.store.url import StoreURL

log = logging.getLogger("ispeed.store")

MIGRATIONS_TABLE_DDL = """
CREATE TABLE IF NOT EXISTS {db}.schema_migrations (
    version UInt32,
    name String,
    applied_at DateTime('UTC')
) ENGINE = MergeTree ORDER BY version
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


@dataclass(frozen=True)
class InsertReport:
    """What an idempotent insert did: rows written, and rows skipped as already stored."""

    inserted: int
    duplicates: int
    new_ids: frozenset[str] = frozenset()


def load_migrations() -> list[Migration]:
    """The numbered `NNNN_name.sql` files shipped in `ispeed.core.store.migrations`, in order."""
    out = []
    for entry in resources.files("ispeed.core.store.migrations").iterdir():
        if not entry.name.endswith(".sql"):
            continue
        version_text, _, rest = entry.name.partition("_")
        text = entry.read_text(encoding="utf-8")
        lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("--")]
        statements = tuple(s.strip() for s in "\n".join(lines).split(";") if s.strip())
        out.append(Migration(int(version_text), rest.removesuffix(".sql"), statements))
    out.sort(key=lambda m: m.version)
    versions = [m.version for m in out]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number: {versions}")
    return out


class Store(ABC):
    """A ClickHouse-compatible store. Backends implement the four primitives below.

    Calls are serialised by a lock: chDB sessions and clickhouse-driver clients are not
    thread-safe, and the server calls the store from a worker thread.
    """

    def __init__(self, url: StoreURL) -> None:
        self.url = url
        self.database = url.database
        self._lock = threading.RLock()

    # -- backend primitives -------------------------------------------------------------
    @abstractmethod
    def _execute(self, sql: str) -> None: ...

    @abstractmethod
    def _query(self, sql: str) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def _iter_query(self, sql: str) -> Iterator[tuple[Any, ...]]: ...

    @abstractmethod
    def _insert_columns(self, table: str, columns: Mapping[str, Sequence[Any]], types: Mapping[str, str]) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    # -- public API ---------------------------------------------------------------------
    def sql(self, sql: str, params: Mapping[str, Any] | None = None) -> str:
        return render(sql, self.database, params)

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        with self._lock:
            self._execute(self.sql(sql, params))

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._query(self.sql(sql, params))

    def iter_query(self, sql: str, params: Mapping[str, Any] | None = None) -> Iterator[tuple[Any, ...]]:
        """Stream rows; holds the store lock until the iterator is exhausted or closed."""
        with self._lock:
            yield from self._iter_query(self.sql(sql, params))

    def insert_columns(self, table: str, columns: Mapping[str, Sequence[Any]], types: Mapping[str, str]) -> None:
        with self._lock:
            self._insert_columns(f"{self.database}.{table}", columns, types)

    def migrate(self, up_to: int | None = None) -> list[int]:
        """Apply pending migrations in order (those up to version `up_to`, when given) and record
        them; returns the versions applied."""
        applied: list[int] = []
        with self._lock:
            self._execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")
            self._execute(self.sql(MIGRATIONS_TABLE_DDL))
            done = {int(r[0]) for r in self._query(self.sql("SELECT version FROM {db}.schema_migrations"))}
            for mig in load_migrations():
                if mig.version in done or (up_to is not None and mig.version > up_to):
                    continue
                try:
                    for stmt in mig.statements:
                        for sql in self._migration_sql(self.sql(stmt)):
                            self._execute(sql)
                except Exception as exc:
                    raise MigrationError(
                        f"migration {mig.version:04d}_{mig.name} failed on {self.url.redacted}: {exc}"
                    ) from exc
                now = int(dt.datetime.now(dt.UTC).timestamp())
                self._insert_columns(
                    f"{self.database}.schema_migrations",
                    {"version": [mig.version], "name": [mig.name], "applied_at": [now]},
                    {"version": "UInt32", "name": "String", "applied_at": "DateTime('UTC')"},
                )
                log.info("applied migration %04d_%s to %s", mig.version, mig.name, self.url.redacted)
                applied.append(mig.version)
        return applied

    def _migration_sql(self, statement: str) -> list[str]:
        """What applies one migration statement here (a cluster node: its local + Distributed pair)."""
        return [statement]

    def existing_test_ids(self, test_ids: Sequence[str], dates: Sequence[dt.date]) -> set[str]:
        if not test_ids:
            return set()
        rows = self.query(
            "SELECT DISTINCT test_id FROM {db}.measurements WHERE local_date IN {dates} AND test_id IN {ids}",
            {"dates": sorted(set(dates)), "ids": sorted(set(test_ids))},
        )
        return {r[0] for r in rows}

    def insert_measurements(self, rows: Sequence[Measurement]) -> InsertReport:
        """Insert a batch; rows whose test_id is already stored (or repeated) are skipped."""
        with self._lock:
            seen = self.existing_test_ids([r.test_id for r in rows], [r.local_date for r in rows])
            fresh: list[Measurement] = []
            for row in rows:
                if row.test_id not in seen:
                    seen.add(row.test_id)
                    fresh.append(row)
            if fresh:
                self.insert_columns("measurements", to_columns(fresh), dict(MEASUREMENT_COLUMNS))
            return InsertReport(
                inserted=len(fresh), duplicates=len(rows) - len(fresh), new_ids=frozenset(r.test_id for r in fresh)
            )

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
