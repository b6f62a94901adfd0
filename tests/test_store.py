"""The store on both backends: migrations, schema vs DDL, idempotent inserts, streaming reads."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import uuid

import pytest

from ispeed.core.errors import ConfigError, StoreLocked
from ispeed.core.schema import MEASUREMENT_COLUMNS, Measurement
from ispeed.core.store import Store, open_store, parse_store_url
from ispeed.core.store.base import load_migrations


def _row(**kw: object) -> Measurement:
    started = kw.pop("started_at", dt.datetime(2025, 7, 31, 18, 30, tzinfo=dt.UTC))
    assert isinstance(started, dt.datetime)
    base: dict[str, object] = dict(
        test_id=str(uuid.uuid4()),
        started_at=started,
        local_date=(started + dt.timedelta(hours=7)).date(),
        network_type="fixed",
        provider="VNPT",
        province_code="01",
        download_mbps=95.5,
        upload_mbps=40.25,
        latency_ms=12.0,
    )
    base.update(kw)
    return Measurement(**base)  # type: ignore[arg-type]


def test_migrations_apply_once_and_are_recorded(store: Store) -> None:
    versions = [m.version for m in load_migrations()]
    assert versions == sorted(versions) and versions[0] == 1
    recorded = sorted(r[0] for r in store.query("SELECT version FROM {db}.schema_migrations"))
    assert recorded == versions
    assert store.migrate() == []  # second run: a no-op
    assert sorted(r[0] for r in store.query("SELECT version FROM {db}.schema_migrations")) == versions


def test_schema_dataclass_matches_ddl(store: Store) -> None:
    described = [(r[0], r[1]) for r in store.query("DESCRIBE TABLE {db}.measurements")]
    assert described == list(MEASUREMENT_COLUMNS)


def test_measurements_table_partitioned_by_month_and_ordered_for_aggregator(store: Store) -> None:
    (ddl,) = store.query("SHOW CREATE TABLE {db}.measurements")[0]
    flat = " ".join(ddl.split())
    assert "PARTITION BY toYYYYMM(local_date)" in flat
    assert "ORDER BY (network_type, provider, province_code, commune_code, started_at, test_id)" in flat


def test_insert_is_idempotent_by_test_id(store: Store) -> None:
    a, b = _row(), _row(provider="Viettel", download_mbps=300.0)
    first = store.insert_measurements([a, b, a])
    assert (first.inserted, first.duplicates) == (2, 1)
    again = store.insert_measurements([a, b])
    assert (again.inserted, again.duplicates) == (0, 2)
    rows = store.query("SELECT test_id, provider, download_mbps FROM {db}.measurements FINAL ORDER BY provider")
    assert rows == [(a.test_id, "VNPT", 95.5), (b.test_id, "Viettel", 300.0)]


def test_values_round_trip_exactly(store: Store) -> None:
    r = _row(
        lat=21.028,
        lon=105.854,
        jitter_ms=None,
        simulated=True,
        valid=False,
        invalid_reason="it's \\ odd",
        bytes_down=2**40 + 3,
    )
    store.insert_measurements([r])
    got = store.query(
        "SELECT toUnixTimestamp(started_at), toString(local_date), lat, lon, jitter_ms, simulated, valid,"
        " invalid_reason, bytes_down FROM {db}.measurements WHERE test_id = {id}",
        {"id": r.test_id},
    )
    assert got == [(int(r.started_at.timestamp()), "2025-08-01", 21.028, 105.854, None, 1, 0, "it's \\ odd", 2**40 + 3)]


def test_small_integer_columns_keep_their_value(store: Store) -> None:
    """UInt8 holds flags (0/1) and numbers: an IP version of 6 is stored as 6, not as true."""
    rows = [_row(ip_version=6, simulated=True), _row(ip_version=4), _row()]
    store.insert_measurements(rows)
    got = dict(store.query("SELECT test_id, (ip_version, simulated, valid) FROM {db}.measurements"))
    assert [tuple(got[r.test_id]) for r in rows] == [(6, 1, 1), (4, 0, 1), (0, 0, 1)]


def test_iter_query_streams_large_results(store: Store) -> None:
    rows = [_row() for _ in range(2500)]
    assert store.insert_measurements(rows).inserted == 2500
    seen = {r[0] for r in store.iter_query("SELECT test_id FROM {db}.measurements")}
    assert seen == {r.test_id for r in rows}


@pytest.mark.parametrize(
    "url,fragment",
    [
        ("bogus://x", "unknown store scheme"),
        ("clickhouse://", "no host"),
        ("clickhouse://h:notaport/db", "port"),
        ("clickhouse://h/bad-name", "database name"),
        ("chdb:", "needs a directory"),
    ],
)
def test_bad_store_urls_name_the_value(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_store_url(url)
    assert fragment in str(err.value) and repr(url) in str(err.value)


def test_store_url_forms() -> None:
    u = parse_store_url("clickhouse://alice:s%40cret@db.example:9440/stats")
    assert (u.host, u.port, u.user, u.password, u.database) == ("db.example", 9440, "alice", "s@cret", "stats")
    assert "s@cret" not in u.redacted and "***" in u.redacted
    assert parse_store_url("chdb:./var/ispeed").path == "./var/ispeed"


def test_second_process_gets_one_clear_line_for_a_held_chdb_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"chdb:{tmp_path / 'held'}"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import sys, time
        from ispeed.core.store import open_store
        s = open_store({url!r}); print("ready", flush=True); sys.stdin.read()
    """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLocked) as err:
            open_store(url)
        msg = str(err.value)
        assert str(tmp_path / "held") in msg and f"PID {holder.pid}" in msg
        assert "stop that process" in msg and "clickhouse://" in msg
    finally:
        holder.communicate("", timeout=30)
    # once the holder has exited, the path opens and keeps what it wrote
    with open_store(url) as s:
        assert s.query("SELECT count() FROM {db}.measurements") == [(0,)]
