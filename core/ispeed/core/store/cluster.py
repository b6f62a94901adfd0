"""Cluster DDL: the versioned migrations rendered as local tables plus Distributed tables.

On a cluster (`clickhouse://host:port/db?cluster=NAME[&replicated=1]`) every table `T` of the
migrations becomes two tables on every node:

- `T_local`: the migration's own engine (`MergeTree`, `ReplacingMergeTree(v)`, …), or its
  `Replicated…` form with `?replicated=1`:
  `ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/<db>/T_local', '{replica}', v)`,
  `{shard}` and `{replica}` coming from each server's `<macros>`;
- `T`: `Distributed(NAME, <db>, T_local, <sharding key>)` with the same columns, so every query
  of ispeed keeps naming `T` and runs unchanged on one server or a cluster.

Sharding key: `cityHash64(test_id)` for tables with a `test_id` column (a replayed result always
lands on the shard that already holds it, so the insert-time check and `FINAL` dedup hold across
shards); `0` for the small tables without one (monthly_stats, ISP keys and audit): they stay
whole on the first shard, so a month's `REPLACE PARTITION` remains one atomic step.

Partition statements (`ALTER TABLE T DROP|REPLACE|ATTACH|DETACH PARTITION …`) cannot run on a
Distributed table; `partition_statement` rewrites them for the local tables, to be run on one
replica of every shard (replication carries them to the others).

Pure text transformations, no connection: `cluster_backend` applies them to the nodes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from ispeed.core.errors import MigrationError

LOCAL_SUFFIX = "_local"
ZK_PATH = "/clickhouse/tables/{{shard}}/{database}/{table}"  # {shard}/{replica}: server macros
SHARD_KEYS = (("test_id", "cityHash64(test_id)"),)  # first column present wins
DEFAULT_SHARD_KEY = "0"

_CREATE = re.compile(
    r"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<db>\w+)\.(?P<table>\w+)\s*"
    r"\((?P<columns>.*)\)\s*ENGINE\s*=\s*(?P<engine>\w+)\s*(?:\((?P<args>[^()]*)\))?(?P<rest>.*)$",
    re.S | re.I,
)
_ALTER = re.compile(r"^\s*ALTER\s+TABLE\s+(?P<db>\w+)\.(?P<table>\w+)\s+(?P<body>.*)$", re.S | re.I)
_PARTITION_OP = re.compile(r"^(DROP|REPLACE|ATTACH|DETACH)\s+PARTITION\b", re.I)
_COLUMN_OP = re.compile(r"^(ADD|DROP|MODIFY|COMMENT)\s+COLUMN\b", re.I)
_FROM = re.compile(r"\bFROM\s+(?P<db>\w+)\.(?P<table>\w+)\s*$", re.I)
_MERGE_TREE = re.compile(r"^(Replacing|Summing|Aggregating|Collapsing|VersionedCollapsing|Graphite)?MergeTree$")


class Scope(Enum):
    """Where a rendered statement runs."""

    EVERY_NODE = "every node"  # CREATE … IF NOT EXISTS, Distributed-table ALTERs
    ONE_REPLICA_PER_SHARD = "one replica"  # local-table ALTERs: replication does the rest


@dataclass(frozen=True)
class Step:
    sql: str
    scope: Scope


@dataclass(frozen=True)
class PartitionOp:
    """A partition statement for the local tables; `source` is the local table it reads, if any."""

    sql: str
    source: str = ""


@dataclass(frozen=True)
class ClusterLayout:
    """How a database is laid out on a cluster: its name, and replicated local tables or not."""

    cluster: str
    database: str
    replicated: bool = False

    def local(self, table: str) -> str:
        return table + LOCAL_SUFFIX

    # -- migrations ---------------------------------------------------------------------
    def render(self, statement: str) -> list[Step]:
        """One migration statement ({db} already substituted) as the steps that apply it here."""
        create = _CREATE.match(statement)
        if create:
            return self._render_create(create)
        alter = _ALTER.match(statement)
        if alter and _COLUMN_OP.match(alter["body"].lstrip()):
            db, table, body = alter["db"], alter["table"], alter["body"]
            return [
                Step(
                    f"ALTER TABLE {db}.{self.local(table)} {body}",
                    Scope.ONE_REPLICA_PER_SHARD if self.replicated else Scope.EVERY_NODE,
                ),
                Step(f"ALTER TABLE {db}.{table} {body}", Scope.EVERY_NODE),
            ]
        raise MigrationError(
            f"the cluster store cannot apply this migration statement: {statement.strip()[:120]!r}; "
            "migrations for clusters may CREATE TABLE (MergeTree family) and ALTER TABLE … COLUMN; "
            "teach ispeed.core.store.cluster the new form"
        )

    def _render_create(self, m: re.Match[str]) -> list[Step]:
        db, table, columns, engine = m["db"], m["table"], m["columns"], m["engine"]
        args = (m["args"] or "").strip()
        if not _MERGE_TREE.match(engine):
            raise MigrationError(
                f"table {db}.{table} uses engine {engine}; the cluster store shards MergeTree-family "
                "tables only (use a MergeTree engine in the migration)"
            )
        local = self.local(table)
        if self.replicated:
            path = ZK_PATH.format(database=db, table=local)
            args = ", ".join(a for a in (f"'{path}'", "'{replica}'", args) if a)
            engine = "Replicated" + engine
        rest = m["rest"].strip()
        local_sql = (
            f"CREATE TABLE IF NOT EXISTS {db}.{local} ({columns}) "
            f"ENGINE = {engine}{f'({args})' if args or self.replicated else ''} {rest}"
        )
        distributed_sql = (
            f"CREATE TABLE IF NOT EXISTS {db}.{table} ({columns}) ENGINE = "
            f"Distributed({self.cluster}, {db}, {local}, {sharding_key(columns)})"
        )
        return [Step(local_sql, Scope.EVERY_NODE), Step(distributed_sql, Scope.EVERY_NODE)]

    # -- statements at run time ---------------------------------------------------------
    def partition_statement(self, sql: str, tables: frozenset[str]) -> PartitionOp | None:
        """`ALTER TABLE T … PARTITION …` of a cluster table, rewritten for the local tables."""
        alter = _ALTER.match(sql)
        if not alter or alter["db"] != self.database or alter["table"] not in tables:
            return None
        body = alter["body"].strip()
        if not _PARTITION_OP.match(body):
            return None
        source = ""
        found = _FROM.search(body)
        if found and found["table"] in tables:
            source = f"{found['db']}.{self.local(found['table'])}"
            body = body[: found.start("db")] + source + body[found.end("table") :]
        return PartitionOp(f"ALTER TABLE {alter['db']}.{self.local(alter['table'])} {body}", source)


def sharding_key(columns_sql: str) -> str:
    """The Distributed sharding key for a table with these column definitions."""
    names = {part.split()[0] for part in _top_level(columns_sql) if part.split()}
    for column, key in SHARD_KEYS:
        if column in names:
            return key
    return DEFAULT_SHARD_KEY


def _top_level(text: str) -> list[str]:
    """`text` split at the commas outside parentheses and quotes (one column definition each)."""
    parts: list[str] = []
    depth, quoted, start = 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'" and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch in "()":
            depth += 1 if ch == "(" else -1
        elif not quoted and depth == 0 and ch == ",":
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def created_tables(statements: list[str]) -> frozenset[str]:
    """Names of the tables the migration statements create (the cluster's Distributed tables)."""
    return frozenset(m["table"] for m in (_CREATE.match(s) for s in statements) if m)
