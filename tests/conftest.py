"""Shared fixtures: a real ClickHouse server per session, and a `store` over BOTH backends."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from clickhouse_server import ClickHouseServer  # noqa: E402

from ispeed.core.store import Store, open_store  # noqa: E402

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def clickhouse_server() -> Iterator[ClickHouseServer]:
    """Debian's clickhouse-server on a free loopback port, with its own temporary data dir."""
    server = ClickHouseServer().start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(params=["chdb", "clickhouse"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store URL of each backend (a new database on the shared server)."""
    if request.param == "chdb":
        return f"chdb:{tmp_path / 'store'}"
    server: ClickHouseServer = request.getfixturevalue("clickhouse_server")
    return f"{server.url}/t{os.getpid()}_{next(_db_counter)}"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()
