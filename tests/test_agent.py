"""`ispeed agent`: scheduled tests, a JSONL log, and results kept on disk until the server takes them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ispeed.client.agent import parse_every
from ispeed.core.errors import ConfigError
from ispeed.core.store import open_store
from ispeed.server.devices import verify_device_id
from ispeed.server.privacy import keyed_hash
from tests.clickhouse_server import ClickHouseServer, free_port
from tests.serve_process import ServeProcess

SERVE_SECRET = b"functional-test-secret-000"  # tests/serve_process.py


def agent(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ispeed.cli.main", "agent", "--duration", "1", "--streams", "2", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _log(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    "text,seconds",
    [("90", 90), ("45s", 45), ("30m", 1800), ("1h", 3600), ("1h30m", 5400), ("1d", 86400), ("1.5s", 1.5)],
)
def test_parse_every(text: str, seconds: float) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "1x", "0s", "-5m", "1h 30m"])
def test_parse_every_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_every(text)


def test_agent_runs_scheduled_tests_and_logs_them(tmp_path: Path) -> None:
    (tmp_path / "st").mkdir()
    (tmp_path / "st" / "device-id").write_text("0123456789abcdef0123456789abcdef\n")  # an old random id
    with ServeProcess(f"chdb:{tmp_path / 'var'}") as server:
        out = agent("--server", server.url, "--every", "1s", "--count", "2", "--state-dir", str(tmp_path / "st"))
    assert out.returncode == 0, out.stderr
    records = _log(tmp_path / "st" / "agent.jsonl")
    assert [r["event"] for r in records] == ["test", "test"]
    assert all(r["submitted"] and r["valid"] and r["download_mbps"] > 100 for r in records)  # type: ignore[operator]
    # method v2: the log reports UDP loss and delay like `ispeed test --json`
    assert all(
        (r["udp"], r["udp_probes"], r["loss_down_pct"], r["loss_up_pct"]) == ("ok", 300, 0.0, 0.0) for r in records
    )
    assert all(set(r["phases"]) == {"idle", "download", "upload"} for r in records)  # type: ignore[arg-type]
    assert list((tmp_path / "st" / "outbox").glob("*.json")) == []
    device = (tmp_path / "st" / "device-id").read_text().strip()  # replaced by a server-issued id
    assert verify_device_id(SERVE_SECRET, device) == device
    with open_store(f"chdb:{tmp_path / 'var'}") as store:
        rows = store.query("SELECT test_id, client_kind, device_hash, udp_status FROM {db}.measurements")
    assert {r[0] for r in rows} == {r["test_id"] for r in records}
    assert {r[3] for r in rows} == {"ok"}
    assert {r[1] for r in rows} == {"agent"}
    assert {r[2] for r in rows} == {keyed_hash(SERVE_SECRET, "device", device)}  # one device: the issued id


def test_results_survive_a_store_outage_and_a_server_restart(tmp_path: Path) -> None:
    ch = ClickHouseServer(root=str(tmp_path / "ch")).start()
    store = f"{ch.url}/agent"
    port = str(free_port())
    state = tmp_path / "st"
    common = ["--spool-dir", "none", "--port", port]
    try:
        with ServeProcess(store, common) as server:
            ch.kill()  # the store goes away: the server can measure but not store
            first = agent("--server", server.url, "--every", "1s", "--count", "1", "--state-dir", str(state))
        assert first.returncode == 0, first.stderr
        (rec,) = _log(state / "agent.jsonl")
        assert rec["submitted"] is False and rec["pending"] is True and "503" in str(rec["error"])
        assert len(list((state / "outbox").glob("*.json"))) == 1
        ch.start()
        # a new server process (same secret and id) that never saw the first test
        with ServeProcess(store, common) as server:
            second = agent("--server", server.url, "--every", "1s", "--count", "1", "--state-dir", str(state))
        assert second.returncode == 0, second.stderr
        records = _log(state / "agent.jsonl")
        assert [r["event"] for r in records] == ["test", "resubmitted", "test"]
        assert records[1]["test_id"] == rec["test_id"] and records[1]["status"] == "accepted"
        assert list((state / "outbox").glob("*.json")) == []
        with open_store(store) as s:
            counts = dict(s.query("SELECT test_id, count() FROM {db}.measurements GROUP BY test_id"))
        assert counts == {rec["test_id"]: 1, records[2]["test_id"]: 1}
    finally:
        ch.remove()


def test_server_selection_picks_a_reachable_server(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with ServeProcess(f"chdb:{tmp_path / 'var'}") as server:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "ispeed.cli.main",
                "test",
                "--server",
                f"{dead},{server.url}",
                "--json",
                "--duration",
                "1",
                "--no-submit",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["server"] == server.url
    assert [s["url"] for s in result["server_selection"]] == [dead, server.url]
    assert result["server_selection"][0]["rtt_ms"] is None and result["server_selection"][1]["rtt_ms"] > 0
