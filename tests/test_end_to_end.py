"""serve → test → export, as a user runs them, on both store backends."""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from ispeed.core.timeutil import VN_TZ
from tests.serve_process import ServeProcess


def ispeed(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ispeed.cli.main", *args], capture_output=True, text=True, timeout=timeout
    )


def _month() -> str:
    return dt.datetime.now(VN_TZ).strftime("%Y-%m")


def _run_test(url: str) -> dict[str, object]:
    out = ispeed("test", "--server", url, "--json", "--duration", "2", "--streams", "4")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    for key in (
        "test_id",
        "server",
        "download_mbps",
        "upload_mbps",
        "latency_ms",
        "jitter_ms",
        "loaded_latency_down_ms",
        "loaded_latency_up_ms",
        "bytes_down",
        "bytes_up",
        "streams",
        "duration_s",
    ):
        assert key in result, key
    assert result["submitted"] is True and result["valid"] is True
    assert result["download_mbps"] > 1000, result
    assert result["upload_mbps"] > 1000, result
    return result


def _exported(store: str, tmp_path: Path) -> dict[str, dict[str, str]]:
    out_file = tmp_path / "export.csv"
    out = ispeed("export", "--month", _month(), "--store", store, "--out", str(out_file))
    assert out.returncode == 0, out.stderr
    with open(out_file, newline="") as fh:
        return {row["test_id"]: row for row in csv.DictReader(fh)}


def _check_row(row: dict[str, str], result: dict[str, object]) -> None:
    assert float(row["download_mbps"]) == result["download_mbps"]
    assert abs(float(row["upload_mbps"]) - float(result["upload_mbps"])) < 0.001  # type: ignore[arg-type]
    assert float(row["latency_ms"]) == result["latency_ms"]
    assert row["network_type"] == "fixed" and row["client_kind"] == "cli"
    assert row["simulated"] == "0" and row["valid"] == "1"
    assert "127.0.0.1" not in ",".join(row.values())


def test_serve_test_export_on_clickhouse_while_serving(clickhouse_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = f"{clickhouse_server.url}/e2e"
    with ServeProcess(store) as server:
        result = _run_test(server.url)
        rows = _exported(store, tmp_path)  # the server is still running
    assert set(rows) == {result["test_id"]}
    _check_row(rows[str(result["test_id"])], result)


def test_serve_test_export_on_chdb_after_stop(tmp_path: Path) -> None:
    store = f"chdb:{tmp_path / 'var'}"
    server = ServeProcess(store).start()
    try:
        result = _run_test(server.url)
        held = ispeed("export", "--month", _month(), "--store", store, "--out", str(tmp_path / "x.csv"))
        assert held.returncode == 2 and "in use by another process" in held.stderr
        assert len(held.stderr.strip().splitlines()) == 1
    finally:
        assert server.stop() == 0
    rows = _exported(store, tmp_path)
    assert set(rows) == {result["test_id"]}
    _check_row(rows[str(result["test_id"])], result)


def test_results_are_attributed_through_admin_geo(tmp_path: Path) -> None:
    from ispeed.admin_geo import build_demo_mmdb

    mmdb = build_demo_mmdb(tmp_path / "demo.mmdb")
    store = f"chdb:{tmp_path / 'var'}"
    with ServeProcess(store, ["--asn-db", str(mmdb), "--city-db", str(mmdb)]) as server:
        by_gps = ispeed(
            "test",
            "--server",
            server.url,
            "--json",
            "--duration",
            "1",
            "--streams",
            "2",
            "--lat",
            "21.0285",
            "--lon",
            "105.8542",
            "--network-type",
            "mobile",
        )
        by_ip = ispeed("test", "--server", server.url, "--json", "--duration", "1", "--streams", "2")
    assert by_gps.returncode == 0 and by_ip.returncode == 0, by_gps.stderr + by_ip.stderr
    gps, ip = json.loads(by_gps.stdout), json.loads(by_ip.stdout)
    # 127.0.0.0/8 is Viettel in Hà Nội in the demo database; the GPS fix is central Hoàn Kiếm
    assert (gps["provider"], gps["province_code"], gps["commune_code"]) == ("Viettel", "01", "00070")
    assert (ip["provider"], ip["province_code"], ip["commune_code"]) == ("Viettel", "01", "")
    rows = _exported(store, tmp_path)
    assert rows[gps["test_id"]]["asn"] == "7552" and rows[gps["test_id"]]["network_type"] == "mobile"
    assert rows[ip["test_id"]]["province_code"] == "01"
