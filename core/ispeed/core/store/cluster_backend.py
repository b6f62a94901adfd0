"""Cluster store: a ClickHouse cluster reached through one of its servers (`?cluster=NAME`).

The entry server (the URL's host) runs every query and insert; its Distributed tables spread
them over the shards. Inserts are synchronous (`insert_distributed_sync=1`): an acknowledged
result is on its shard, and a read right after sees it.

Migrations do not use `ON CLUSTER` (distributed DDL needs ZooKeeper even for an unreplicated
cluster): the nodes are read from the entry server's `system.clusters`, and each node is
migrated over its own connection, with the statements rendered by `ispeed.core.store.cluster`.
Each node records what it applied in its own (local) `schema_migrations`, so a node added to
the cluster later, or one that was down, is brought up to date by the next `migrate()`.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from ispeed.core.errors import ConfigError
from ispeed.core.store.base import load_migrations
from ispeed.core.store.clickhouse_backend import ClickHouseStore
from ispeed.core.store.cluster import ClusterLayout, Scope, created_tables
from ispeed.core.store.sql import quote
from ispeed.core.store.url import StoreURL

log = logging.getLogger("ispeed.store")

SESSION_SETTINGS = {"insert_distributed_sync": 1}  # exists in 18.16; async (0) is its default


@dataclass(frozen=True)
class Node:
    """One server of the cluster, as the entry server's `system.clusters` names it."""

    shard: int
    replica: int
    host: str
    port: int
    is_entry: bool
    leads_shard: bool  # the shard's first replica: runs the statements replication carries


class _NodeStore(ClickHouseStore):
    """A connection to one node; its migrations apply the cluster rendering of each statement."""

    def __init__(self, url: StoreURL, layout: ClusterLayout, leads_shard: bool) -> None:
        super().__init__(url)
        self._layout = layout
        self._leads_shard = leads_shard

    def _migration_sql(self, statement: str) -> list[str]:
        return [
            step.sql for step in self._layout.render(statement) if step.scope is Scope.EVERY_NODE or self._leads_shard
        ]


class ClusterStore(ClickHouseStore):
    """Store on the ClickHouse cluster `url.cluster`, entered through `url.host:url.port`."""

    def __init__(self, url: StoreURL, connect_timeout_s: float = 5.0) -> None:
        super().__init__(url, connect_timeout_s, settings=SESSION_SETTINGS)
        self.layout = ClusterLayout(url.cluster, url.database, url.replicated)
        self._tables = created_tables([self.sql(s) for m in load_migrations() for s in m.statements])
        self._node_stores: dict[tuple[str, int], ClickHouseStore] = {}
        try:
            self.nodes = self._discover()
        except BaseException:
            self._client.disconnect()
            raise

    def _discover(self) -> list[Node]:
        rows = self._query(
            "SELECT shard_num, replica_num, host_name, port, is_local FROM system.clusters "
            f"WHERE cluster = {quote(self.layout.cluster)} ORDER BY shard_num, replica_num"
        )
        if not rows:
            known = sorted({r[0] for r in self._query("SELECT cluster FROM system.clusters")})
            raise ConfigError(
                "--store",
                self.url.redacted,
                f"the server {self.url.host}:{self.url.port} has no cluster "
                f"{self.layout.cluster!r} in its remote_servers (it has: "
                f"{', '.join(known) or 'none'}); fix ?cluster= or the server configuration",
            )
        nodes, seen_shards = [], set()
        for shard, replica, host, port, is_local in rows:
            nodes.append(
                Node(
                    int(shard), int(replica), str(host), int(port), bool(is_local), leads_shard=shard not in seen_shards
                )
            )
            seen_shards.add(shard)
        if not any(n.is_entry for n in nodes):
            raise ConfigError(
                "--store",
                self.url.redacted,
                f"{self.url.host}:{self.url.port} is not itself a node of cluster "
                f"{self.layout.cluster!r}; point the store URL at one of its servers",
            )
        return nodes

    def _node(self, node: Node) -> ClickHouseStore:
        key = (node.host, node.port)
        if key not in self._node_stores:
            url = dataclasses.replace(self.url, host=node.host, port=node.port, options=())
            self._node_stores[key] = _NodeStore(url, self.layout, node.leads_shard)
        return self._node_stores[key]

    # -- migrations: every node, recorded on each ------------------------------------------
    def migrate(self, up_to: int | None = None) -> list[int]:
        """Every node through each migration before any node takes the next: a replicated table's
        structure lives in ZooKeeper too, and a replica created after another already altered it
        would no longer match (ClickHouse refuses: "Table structure in ZooKeeper is too different")."""
        applied: set[int] = set()
        with self._lock:
            for version in (m.version for m in load_migrations()):
                if up_to is not None and version > up_to:
                    break
                for node in self.nodes:
                    done = self._node(node).migrate(up_to=version)
                    if done:
                        log.info(
                            "cluster %s: node %s:%d (shard %d, replica %d) applied %s",
                            self.layout.cluster,
                            node.host,
                            node.port,
                            node.shard,
                            node.replica,
                            done,
                        )
                    applied.update(done)
        return sorted(applied)

    # -- partition statements: on the local tables of every shard --------------------------
    def _execute(self, sql: str) -> None:
        op = self.layout.partition_statement(sql, self._tables)
        if op is None:
            super()._execute(sql)
            return
        for node in self.nodes:
            if not node.leads_shard:
                continue
            store = self._node(node)
            if self.layout.replicated and op.source:
                # rows inserted through another replica of the shard must have arrived here first
                store._execute(f"SYSTEM SYNC REPLICA {op.source}")
            store._execute(op.sql)

    def shard_counts(self, table: str) -> dict[int, int]:
        """Rows of `table` per shard, read from each shard's first replica (tests, operators)."""
        out: dict[int, int] = {}
        with self._lock:
            for node in self.nodes:
                if node.leads_shard:
                    rows: Any = self._node(node)._query(
                        f"SELECT count() FROM {self.database}.{self.layout.local(table)}"
                    )
                    out[node.shard] = int(rows[0][0])
        return out

    def close(self) -> None:
        for store in self._node_stores.values():
            store.close()
        self._node_stores.clear()
        super().close()
