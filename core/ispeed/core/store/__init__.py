"""The store: one interface (`Store`), two backends chosen by URL.

- `chdb:PATH` — embedded chDB directory (default `chdb:./var/ispeed`);
- `clickhouse://[user[:password]@]host[:port]/database` — a ClickHouse server;
- `clickhouse://host[:port]/database?cluster=NAME[&replicated=1]` — a ClickHouse cluster
  (local tables on every shard behind Distributed tables, `cluster_backend`).
"""

from __future__ import annotations

from ispeed.core.store.base import InsertReport, Store
from ispeed.core.store.url import DEFAULT_STORE_URL, StoreURL, parse_store_url

__all__ = ["DEFAULT_STORE_URL", "InsertReport", "Store", "StoreURL", "open_store", "parse_store_url"]


def open_store(url: str | StoreURL, migrate: bool = True) -> Store:
    """Open the store named by `url` and (by default) bring its schema up to date."""
    parsed = url if isinstance(url, StoreURL) else parse_store_url(url)
    store: Store
    if parsed.scheme == "chdb":
        from ispeed.core.store.chdb_backend import ChdbStore

        store = ChdbStore(parsed)
    elif parsed.cluster:
        from ispeed.core.store.cluster_backend import ClusterStore

        store = ClusterStore(parsed)
    else:
        from ispeed.core.store.clickhouse_backend import ClickHouseStore

        store = ClickHouseStore(parsed)
    if migrate:
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
    return store
