"""The cluster store: two clickhouse-servers as two shards of one cluster behind Distributed tables."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ispeed.aggregator import stats_table
from ispeed.cli.main import main
from ispeed.core.errors import ConfigError, MigrationError
from ispeed.core.schema import MEASUREMENT_COLUMNS, Measurement
from ispeed.core.store import open_store, parse_store_url
from ispeed.core.store.base import load_migrations
from ispeed.core.store.cluster import ClusterLayout, Scope, sharding_key
from ispeed.core.store.cluster_backend import ClusterStore
from tests.clickhouse_cluster import remove_cluster, start_cluster
from tests.clickhouse_server import ClickHouseServer

CLUSTER = "ispeed_2shards"
_db = itertools.count()


@pytest.fixture(scope="module")
def two_shards() -> Iterator[tuple[ClickHouseServer, ClickHouseServer]]:
    shards = start_cluster(CLUSTER, [1, 1])
    try:
        yield shards[0][0], shards[1][0]
    finally:
        remove_cluster(shards)


def _db_name() -> str:
    return f"c{os.getpid()}_{next(_db)}"


def _url(server: ClickHouseServer, db: str) -> str:
    return f"{server.url}/{db}?cluster={CLUSTER}"


def _row(i: int) -> Measurement:
    started = dt.datetime(2025, 7, 1 + i % 28, 3, i % 60, tzinfo=dt.UTC)
    return Measurement(
        test_id=str(uuid.uuid4()),
        started_at=started,
        local_date=(started + dt.timedelta(hours=7)).date(),
        network_type="fixed",
        provider="VNPT",
        province_code="01",
        download_mbps=100.0 + i,
        upload_mbps=50.0,
        latency_ms=10.0,
        server_id=f"srv-{i % 2}",
    )


# -- rendering (no server) ---------------------------------------------------------------
def test_migrations_render_to_local_and_distributed_tables() -> None:
    layout = ClusterLayout("c", "db")
    (mig,) = [m for m in load_migrations() if m.version == 1]
    local, dist = layout.render(mig.statements[0].replace("{db}", "db"))
    assert local.scope is dist.scope is Scope.EVERY_NODE
    flat = " ".join(local.sql.split())
    assert flat.startswith("CREATE TABLE IF NOT EXISTS db.measurements_local ( test_id String,")
    assert "ENGINE = ReplacingMergeTree(received_at) PARTITION BY toYYYYMM(local_date)" in flat
    assert " ".join(dist.sql.split()).endswith("ENGINE = Distributed(c, db, measurements_local, cityHash64(test_id))")


def test_replicated_engines_take_the_zookeeper_path_and_macros() -> None:
    layout = ClusterLayout("c", "db", replicated=True)
    stmts = {m.version: m.statements for m in load_migrations()}
    measurements = " ".join(layout.render(stmts[1][0].replace("{db}", "db"))[0].sql.split())
    assert (
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/measurements_local', "
        "'{replica}', received_at)"
    ) in measurements
    stats = " ".join(layout.render(stmts[2][0].replace("{db}", "db"))[0].sql.split())
    assert (
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/db/monthly_stats_local', '{replica}') "
        "PARTITION BY month" in stats
    )


def test_sharding_key_is_the_test_id_hash_or_the_first_shard() -> None:
    assert sharding_key("test_id String, x Nullable(Float64)") == "cityHash64(test_id)"
    assert sharding_key("month String, t DateTime('UTC'), d Decimal(10, 2)") == "0"


def test_column_alters_reach_local_and_distributed_tables_other_statements_are_refused() -> None:
    steps = ClusterLayout("c", "db", replicated=True).render("ALTER TABLE db.measurements ADD COLUMN x UInt8")
    assert [(s.sql, s.scope) for s in steps] == [
        ("ALTER TABLE db.measurements_local ADD COLUMN x UInt8", Scope.ONE_REPLICA_PER_SHARD),
        ("ALTER TABLE db.measurements ADD COLUMN x UInt8", Scope.EVERY_NODE),
    ]
    with pytest.raises(MigrationError, match="cannot apply this migration statement"):
        ClusterLayout("c", "db").render("CREATE VIEW db.v AS SELECT 1")
    with pytest.raises(MigrationError, match="engine Memory"):
        ClusterLayout("c", "db").render("CREATE TABLE db.m (a UInt8) ENGINE = Memory")


def test_partition_statements_are_rewritten_for_local_tables() -> None:
    layout = ClusterLayout("c", "db")
    tables = frozenset({"monthly_stats", "monthly_stats_staging"})
    op = layout.partition_statement(
        "ALTER TABLE db.monthly_stats REPLACE PARTITION '2025-07' FROM db.monthly_stats_staging", tables
    )
    assert op is not None
    assert (
        op.sql == "ALTER TABLE db.monthly_stats_local REPLACE PARTITION '2025-07' FROM db.monthly_stats_staging_local"
    )
    assert op.source == "db.monthly_stats_staging_local"
    assert layout.partition_statement("ALTER TABLE db.monthly_stats ADD COLUMN x UInt8", tables) is None
    assert layout.partition_statement("SELECT 1", tables) is None


@pytest.mark.parametrize(
    "url,fragment",
    [
        ("clickhouse://h/db?replicated=1", "needs ?cluster=NAME"),
        ("clickhouse://h/db?cluster=bad-name", "name of a cluster"),
        ("clickhouse://h/db?cluster=c&replicated=maybe", "takes 1 or 0"),
        ("clickhouse://h/db?shards=2", "unknown option 'shards'"),
    ],
)
def test_cluster_url_options_are_checked(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_store_url(url)
    assert fragment in str(err.value)


def test_cluster_url_parses() -> None:
    u = parse_store_url("clickhouse://h:9000/db?cluster=vn&replicated=1")
    assert (u.cluster, u.replicated, u.redacted) == ("vn", True, "clickhouse://h:9000/db?cluster=vn")


# -- on a real two-shard cluster -----------------------------------------------------------
def test_migrations_create_tables_on_every_node_and_record_per_node(two_shards) -> None:  # type: ignore[no-untyped-def]
    a, b = two_shards
    db = _db_name()
    versions = [m.version for m in load_migrations()]
    with open_store(_url(a, db)) as store:
        assert isinstance(store, ClusterStore)
        assert [(n.shard, n.port, n.is_entry) for n in store.nodes] == [(1, a.tcp_port, True), (2, b.tcp_port, False)]
        assert store.migrate() == []
        described = [(r[0], r[1]) for r in store.query("DESCRIBE TABLE {db}.measurements")]
        assert described == list(MEASUREMENT_COLUMNS)
    for server in (a, b):
        with open_store(f"{server.url}/{db}", migrate=False) as node:
            engines = dict(
                node.query("SELECT name, engine FROM system.tables WHERE database = {db_name}", {"db_name": db})
            )
            assert engines["measurements"] == "Distributed"
            assert engines["measurements_local"] == "ReplacingMergeTree"
            assert engines["monthly_stats_local"] == "MergeTree"
            recorded = sorted(r[0] for r in node.query("SELECT version FROM {db}.schema_migrations"))
            assert recorded == versions
    with open_store(_url(b, db)) as through_b:  # any node is an entry point; nothing left to apply
        assert through_b.migrate() == []


def test_inserts_spread_over_shards_and_stay_idempotent_across_them(two_shards) -> None:  # type: ignore[no-untyped-def]
    a, b = two_shards
    db = _db_name()
    rows = [_row(i) for i in range(400)]
    with open_store(_url(a, db)) as store_a, open_store(_url(b, db)) as store_b:
        assert isinstance(store_a, ClusterStore)
        first = store_a.insert_measurements(rows)
        assert (first.inserted, first.duplicates) == (400, 0)
        counts = store_a.shard_counts("measurements")
        assert sorted(counts) == [1, 2] and all(n > 100 for n in counts.values()) and sum(counts.values()) == 400
        # a replay through the other entry point: every id is found on its shard
        replay = store_b.insert_measurements(rows[:150] + [_row(1000)])
        assert (replay.inserted, replay.duplicates) == (1, 150)
        assert store_b.query("SELECT count(), uniqExact(test_id) FROM {db}.measurements FINAL") == [(401, 401)]


def test_a_month_on_the_cluster_gives_byte_identical_stats_and_export(two_shards, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, b = two_shards
    cluster_url, single_url = _url(a, _db_name()), f"{a.url}/{_db_name()}"
    outputs = {}
    for name, url in (("cluster", cluster_url), ("single", single_url)):
        assert main(["simulate", "--month", "2025-06", "--tests", "20000", "--seed", "11", "--store", url]) == 0
        assert (
            main(
                [
                    "aggregate",
                    "--month",
                    "2025-06",
                    "--store",
                    url,
                    "--include-simulated",
                    "--min-samples",
                    "20",
                    "--out",
                    str(tmp_path / name),
                ]
            )
            == 0
        )
        assert main(["export", "--month", "2025-06", "--store", url, "--out", str(tmp_path / f"{name}.csv")]) == 0
        outputs[name] = (
            (tmp_path / name / "2025-06" / "stats.csv").read_bytes(),
            (tmp_path / f"{name}.csv").read_bytes(),
        )
    stats, export = outputs["cluster"]
    assert stats == outputs["single"][0] and export == outputs["single"][1]
    cells = list(csv.DictReader(io.StringIO(stats.decode())))
    assert len(cells) > 1000 and sum(c["published"] == "true" for c in cells) > 100
    assert export.count(b"\n") == 20001
    with open_store(cluster_url) as store:
        assert isinstance(store, ClusterStore)
        counts = store.shard_counts("measurements")
        assert all(n > 5000 for n in counts.values()) and sum(counts.values()) == 20000
        # the month's statistics sit whole on the first shard; re-aggregating replaces them
        stored = stats_table.read_month(store, "2025-06")
        assert store.shard_counts("monthly_stats") == {1: len(stored), 2: 0}
        assert store.shard_counts("monthly_stats_staging") == {1: 0, 2: 0}
    assert (
        main(
            [
                "aggregate",
                "--month",
                "2025-06",
                "--store",
                _url(b, cluster_url.rsplit("/", 1)[1].split("?")[0]),
                "--include-simulated",
                "--min-samples",
                "20",
                "--out",
                str(tmp_path / "again"),
            ]
        )
        == 0
    )
    assert (tmp_path / "again" / "2025-06" / "stats.csv").read_bytes() == stats
    with open_store(cluster_url) as store:
        assert len(stats_table.read_month(store, "2025-06")) == len(stored)


def test_an_unknown_cluster_is_one_clear_error(two_shards) -> None:  # type: ignore[no-untyped-def]
    a, _ = two_shards
    with pytest.raises(ConfigError) as err:
        open_store(f"{a.url}/x?cluster=nope")
    msg = str(err.value)
    assert "no cluster 'nope'" in msg and CLUSTER in msg and "remote_servers" in msg
