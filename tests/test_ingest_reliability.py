"""Accepted results are never lost or duplicated: store outage, server crash, spool replay."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp

from ispeed.core.store import open_store
from tests.clickhouse_server import ClickHouseServer
from tests.quick_results import submit_many
from tests.serve_process import ServeProcess

LOAD = ["--rate-per-network", "100000", "--max-tests-per-network", "1000", "--max-tests", "1000"]


def _stored_counts(store_url: str) -> dict[str, int]:
    with open_store(store_url) as store:
        return {tid: n for tid, n in store.query("SELECT test_id, count() FROM {db}.measurements GROUP BY test_id")}


async def _metric(url: str, name: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as r:
        for line in (await r.text()).splitlines():
            if line.startswith(f"ispeed_{name} "):
                return float(line.split()[1])
    raise AssertionError(f"metric {name} missing")


def _wait_spool_empty(url: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if asyncio.run(_metric(url, "spool_pending_bytes")) == 0 and asyncio.run(_metric(url, "store_up")) == 1:
            return
        time.sleep(0.5)
    raise AssertionError("the spool did not drain")


def test_clickhouse_outage_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    ch = ClickHouseServer(root=str(tmp_path / "ch")).start()
    store_url = f"{ch.url}/outage"
    try:
        with ServeProcess(store_url, ["--spool-dir", str(tmp_path / "spool"), *LOAD]) as server:
            total = 240

            def progress(done: int) -> None:
                if done == total // 4:
                    ch.kill()  # the store dies mid-stream
                elif done == total // 2:
                    ch.start()  # and comes back on the same port with the same data

            accepted, other = asyncio.run(submit_many(server.url, total, concurrency=8, on_progress=progress))
            assert other == [] and len(accepted) == total
            assert asyncio.run(_metric(server.url, "results_spooled_total")) > 0  # the outage was real
            _wait_spool_empty(server.url)
        counts = _stored_counts(store_url)
        assert set(counts) == accepted
        assert set(counts.values()) == {1}
    finally:
        ch.remove()


def test_kill_9_of_the_server_keeps_every_accepted_result(tmp_path: Path) -> None:
    store_url = f"chdb:{tmp_path / 'var'}"
    spool = ["--spool-dir", str(tmp_path / "spool"), *LOAD]
    server = ServeProcess(store_url, spool).start()
    assert server.proc is not None
    pid = server.proc.pid

    def progress(done: int) -> None:
        if done == 120:
            os.kill(pid, signal.SIGKILL)  # results still in flight

    accepted, other = asyncio.run(submit_many(server.url, 400, concurrency=8, on_progress=progress, max_seconds=60))
    server.stop()
    assert len(accepted) >= 120 and other  # some were cut off by the crash, never acknowledged
    restarted = ServeProcess(store_url, spool).start()
    try:
        _wait_spool_empty(restarted.url)
    finally:
        assert restarted.stop() == 0
    counts = _stored_counts(store_url)
    assert accepted <= set(counts)
    assert set(counts.values()) == {1}


def test_spool_replays_in_order_after_a_restart_with_the_store_back(tmp_path: Path) -> None:
    """Results spooled while ClickHouse is down survive a server restart and land once."""
    ch = ClickHouseServer(root=str(tmp_path / "ch")).start()
    store_url = f"{ch.url}/replay"
    spool = ["--spool-dir", str(tmp_path / "spool"), *LOAD]
    try:
        with ServeProcess(store_url, spool):
            pass  # creates the schema
        ch.kill()
        with ServeProcess(store_url, spool) as server:  # starts although the store is down
            accepted, other = asyncio.run(submit_many(server.url, 30, concurrency=4))
            assert other == [] and len(accepted) == 30
        assert (tmp_path / "spool" / "results.jsonl").stat().st_size > 0
        ch.start()
        with ServeProcess(store_url, spool) as server:
            _wait_spool_empty(server.url)
        counts = _stored_counts(store_url)
        assert set(counts) == accepted and set(counts.values()) == {1}
    finally:
        ch.remove()
