"""Server store: a ClickHouse server (or cluster) over the native protocol (clickhouse-driver)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ispeed.core.errors import StoreError, StoreUnavailable
from ispeed.core.store.base import Store
from ispeed.core.store.url import StoreURL


class ClickHouseStore(Store):
    """Store on a ClickHouse server reached at `clickhouse://user:pw@host:port/database`."""

    def __init__(
        self, url: StoreURL, connect_timeout_s: float = 5.0, settings: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(url)
        from clickhouse_driver import Client  # lazy: not needed by the client

        self._client = Client(
            host=url.host,
            port=url.port,
            user=url.user,
            password=url.password,
            database="default",
            connect_timeout=connect_timeout_s,
            send_receive_timeout=300,
            settings={"max_block_size": 100_000, **(settings or {})},
        )
        try:
            self._client.execute("SELECT 1")
        except Exception as exc:
            raise StoreUnavailable(
                f"cannot reach ClickHouse at {url.redacted} ({exc.__class__.__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}): check that clickhouse-server "
                "is running and the --store URL (host, port 9000 native protocol, user, password)"
            ) from exc

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from clickhouse_driver import errors as ch_errors

        try:
            return fn(*args, **kwargs)
        except (ch_errors.NetworkError, ch_errors.SocketTimeoutError, EOFError, OSError) as exc:
            self._client.disconnect()
            raise StoreUnavailable(f"lost the connection to ClickHouse at {self.url.redacted}: {exc}") from exc
        except ch_errors.Error as exc:
            raise StoreError(f"query failed on {self.url.redacted}: {exc}") from exc

    def _execute(self, sql: str) -> None:
        self._call(self._client.execute, sql)

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        return list(self._call(self._client.execute, sql))

    def _iter_query(self, sql: str) -> Iterator[tuple[Any, ...]]:
        it = self._call(self._client.execute_iter, sql, settings={"max_block_size": 65_536})
        while True:
            try:
                row = self._call(next, it, None)
            except StopIteration:
                return
            if row is None:
                return
            yield tuple(row)

    def _insert_columns(self, table: str, columns: Mapping[str, Sequence[Any]], types: Mapping[str, str]) -> None:
        names = list(columns)
        data = []
        for name in names:
            values = columns[name]
            data.append(list(values.tolist() if hasattr(values, "tolist") else values))
        self._call(
            self._client.execute,
            f"INSERT INTO {table} ({', '.join(names)}) VALUES",
            data,
            columnar=True,
            types_check=False,
        )

    def close(self) -> None:
        self._client.disconnect()
