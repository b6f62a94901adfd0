"""The cluster store with ReplicatedMergeTree (`?replicated=1`): one shard, two replicas, ZooKeeper.

Skips, saying why, where Debian's `zookeeper` (and Java) are not installed.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Iterator

import pytest

from ispeed.aggregator import stats_table
from ispeed.aggregator.methodology import Methodology
from ispeed.core.schema import Measurement
from ispeed.core.store import Store, open_store
from tests.clickhouse_cluster import remove_cluster, start_cluster
from tests.clickhouse_server import ClickHouseServer
from tests.zookeeper_server import ZooKeeperServer, find_zookeeper, missing_reason

CLUSTER = "ispeed_replicas"


@pytest.fixture(scope="module")
def replicas() -> Iterator[tuple[ClickHouseServer, ClickHouseServer]]:
    if find_zookeeper() is None:
        pytest.skip(missing_reason())
    zk = ZooKeeperServer()
    try:
        zk.start()
    except RuntimeError as exc:
        zk.remove()
        pytest.skip(f"ZooKeeper did not start: {exc}")
    try:
        shards = start_cluster(CLUSTER, [2], zookeeper_xml=zk.config_xml())
        try:
            yield shards[0][0], shards[0][1]
        finally:
            remove_cluster(shards)
    finally:
        zk.remove()


def _rows(n: int) -> list[Measurement]:
    started = dt.datetime(2025, 7, 10, 3, 0, tzinfo=dt.UTC)
    return [
        Measurement(
            test_id=str(uuid.uuid4()),
            started_at=started,
            local_date=(started + dt.timedelta(hours=7)).date(),
            network_type="mobile",
            provider="Viettel",
            province_code="79",
            download_mbps=80.0 + i,
            upload_mbps=20.0,
            server_id="hcm-1",
        )
        for i in range(n)
    ]


def _wait_for(store: Store, sql: str, expected: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    got = None
    while time.monotonic() < deadline:
        got = store.query(sql)
        if got == expected:
            return
        time.sleep(0.2)
    raise AssertionError(f"{sql}: {got!r} after {timeout_s} s, expected {expected!r}")


def test_write_through_one_replica_read_through_the_other(replicas) -> None:  # type: ignore[no-untyped-def]
    a, b = replicas
    db = f"r{os.getpid()}"
    rows = _rows(300)
    with open_store(f"{a.url}/{db}?cluster={CLUSTER}&replicated=1") as through_a:
        assert through_a.insert_measurements(rows).inserted == 300
        (engine,) = through_a.query(
            "SELECT engine FROM system.tables WHERE database = {d} AND name = 'measurements_local'", {"d": db}
        )[0]
        assert engine == "ReplicatedReplacingMergeTree"
    # each replica's own copy (its local table, not the Distributed one) holds every row
    for server in (a, b):
        with open_store(f"{server.url}/{db}", migrate=False) as local:
            _wait_for(local, "SELECT count() FROM {db}.measurements_local", [(300,)])
    with open_store(f"{b.url}/{db}?cluster={CLUSTER}&replicated=1") as through_b:
        assert through_b.migrate() == []
        replay = through_b.insert_measurements(rows[:100])
        assert (replay.inserted, replay.duplicates) == (0, 100)
        assert through_b.query("SELECT count(), sum(download_mbps) FROM {db}.measurements FINAL") == [
            (300, sum(r.download_mbps for r in rows))
        ]
        # a month's statistics written through B (staging + REPLACE PARTITION on the shard) …
        cells = [
            {
                "month": "2025-07",
                "network_type": "mobile",
                "level": "national",
                "province_code": "",
                "commune_code": "",
                "provider": "",
                "tests": 300,
                "samples": 300,
                "devices": 1,
                "download_median_mbps": 229.5,
                "download_ci_low_mbps": 220.0,
                "download_ci_high_mbps": 240.0,
                "upload_median_mbps": 20.0,
                "latency_median_ms": None,
                "jitter_median_ms": None,
                "rank": 1,
                "published": True,
            }
        ]
        when = dt.datetime(2025, 8, 1, tzinfo=dt.UTC)
        for _ in range(2):  # replacing twice leaves one copy
            stats_table.write_month(through_b, "2025-07", cells, Methodology(min_samples=1), when)
    # … are read back through A
    with open_store(f"{a.url}/{db}?cluster={CLUSTER}&replicated=1") as through_a:
        _wait_for(through_a, "SELECT count(), sum(tests) FROM {db}.monthly_stats_local", [(1, 300)])
        assert stats_table.read_month(through_a, "2025-07")[0]["download_median_mbps"] == 229.5
