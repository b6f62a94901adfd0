"""Shared fixtures: a real ClickHouse server per session, and a `store` over BOTH backends; the
`services` mark that splits the fast tier (`make check`) from the rest (`make test` runs all)."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ispeed.core.store import Store, open_store
from tests.clickhouse_server import ClickHouseServer

_db_counter = itertools.count()

# `make check` runs the tests that need no service: no ClickHouse (server or embedded store), no
# browser, no test server (in-process or a process), no network lab, no npm client. Tests that ask
# for a store or a browser are marked by their fixtures; these modules start servers in the
# tests' own bodies, so all their tests are marked.
SERVICE_FIXTURES = frozenset(
    {"clickhouse_server", "store_url", "store", "chdb_url", "browser", "server", "simulated_month"}
)
SERVICE_MODULES = frozenset(
    {
        "test_accuracy",
        "test_admin_api",
        "test_agent",
        "test_aggregate_recompute",
        "test_attacks",
        "test_browser_identity",
        "test_browser_page",
        "test_client_download_raw",
        "test_cluster",
        "test_cluster_replicated",
        "test_demo",
        "test_end_to_end",
        "test_engine_output",
        "test_fleet",
        "test_fuzz_inputs",
        "test_hardening_ingest",
        "test_identity",
        "test_install",
        "test_ingest_reliability",
        "test_ipv6",
        "test_isp_keys",
        "test_isp_portal",
        "test_log_privacy",
        "test_ndt7_client",
        "test_ndt7_protocol",
        "test_packaging",
        "test_publish",
        "test_quality_lab",
        "test_rpm",
        "test_rpm_lab",
        "test_server_api",
        "test_site_browser",
        "test_store",
        "test_udp",
        "test_upload_fast_path",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if isinstance(item, pytest.Function) else ""
        if module in SERVICE_MODULES or SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


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
