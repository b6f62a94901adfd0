"""Shared fixtures: a real ClickHouse server per session, and a `store` over BOTH backends."""

from __future__ import annotations

import itertools
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from clickhouse_server import ClickHouseServer
from ispeed.core.store import Store, open_store

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


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless chromium driven by Playwright (never `playwright install`), fresh profile."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("Debian's chromium is needed for the browser tests (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the Python package playwright is needed to drive chromium (pip install playwright)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
