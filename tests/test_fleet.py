"""A fleet of test servers: the fleet file, trusted proxies, and two `ispeed serve` on one store."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from ispeed.aggregator.server_health import saturated_minutes, server_health
from ispeed.core.errors import ConfigError
from ispeed.core.store import open_store
from ispeed.core.timeutil import VN_TZ
from ispeed.server.fleet import FleetServer, listed, load_fleet
from ispeed.server.proxy import forwarded_client, parse_trusted
from tests.clickhouse_server import free_port
from tests.quick_results import quick_result
from tests.serve_process import ServeProcess


def ispeed(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ispeed.cli.main", *args], capture_output=True, text=True, timeout=timeout
    )


# -- the fleet file ------------------------------------------------------------------------
def test_fleet_from_json_and_csv(tmp_path: Path) -> None:
    js = tmp_path / "fleet.json"
    js.write_text(
        json.dumps(
            {
                "servers": [
                    {"id": "hn-1", "url": "https://hn-1.speed.example.vn/", "province": "01", "capacity_gbps": 20},
                    {"id": "hcm-1", "url": "https://hcm-1.speed.example.vn", "province": "79"},
                ]
            }
        )
    )
    cs = tmp_path / "fleet.csv"
    cs.write_text(
        "id,url,province,capacity_gbps\nhn-1,https://hn-1.speed.example.vn,01,20\n"
        "hcm-1,https://hcm-1.speed.example.vn,79,\n"
    )
    expected = (
        FleetServer("hn-1", "https://hn-1.speed.example.vn", "01", 20.0),
        FleetServer("hcm-1", "https://hcm-1.speed.example.vn", "79", None),
    )
    assert load_fleet(js) == load_fleet(cs) == expected
    me = FleetServer("dn-1", "http://10.0.0.5:8080", "48")
    assert [e["server_id"] for e in listed(expected, me)] == ["dn-1", "hn-1", "hcm-1"]
    assert [e["server_id"] for e in listed(expected, expected[1])] == ["hn-1", "hcm-1"]


@pytest.mark.parametrize(
    "content,fragment",
    [
        ("[]", "lists no servers"),
        ("{not json", "not valid JSON"),
        ('[{"id": "a b", "url": "https://x"}]', "id 'a b'"),
        ('[{"id": "a", "url": "ftp://x"}]', "http(s) base URL"),
        ('[{"id": "a", "url": "https://x", "province": "Ha Noi"}]', "province code"),
        ('[{"id": "a", "url": "https://x", "capacity_gbps": -2}]', "positive number"),
        ('[{"id": "a", "url": "https://x", "colour": "red"}]', "unknown field(s) colour"),
        ('[{"id": "a", "url": "https://x"}, {"id": "a", "url": "https://y"}]', "more than once"),
    ],
)
def test_bad_fleet_files_name_the_entry_and_field(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "fleet.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_fleet(path)
    assert fragment in str(err.value) and "--fleet" in str(err.value)


def test_serve_refuses_a_bad_fleet_or_proxy_with_one_line(tmp_path: Path) -> None:
    out = ispeed("serve", "--port", "0", "--store", f"chdb:{tmp_path / 's'}", "--fleet", str(tmp_path / "none.json"))
    assert out.returncode == 2 and "--fleet" in out.stderr and "Traceback" not in out.stderr
    out = ispeed("serve", "--port", "0", "--store", f"chdb:{tmp_path / 's'}", "--trusted-proxy", "10.0.0.0/33")
    assert out.returncode == 2 and "--trusted-proxy has value '10.0.0.0/33'" in out.stderr


# -- X-Forwarded-For -----------------------------------------------------------------------
TRUSTED = parse_trusted(["127.0.0.1", "10.0.0.0/8", "fd00::/8"])


@pytest.mark.parametrize(
    "peer,xff,client",
    [
        ("198.51.100.9", ["203.0.113.7"], "198.51.100.9"),  # untrusted peer: header ignored
        ("127.0.0.1", ["203.0.113.7"], "203.0.113.7"),  # nginx on the same machine
        ("127.0.0.1", ["1.2.3.4, 203.0.113.7"], "203.0.113.7"),  # client-written 1.2.3.4 not believed
        ("127.0.0.1", ["203.0.113.7, 10.1.2.3"], "203.0.113.7"),  # two trusted hops
        ("127.0.0.1", ["203.0.113.7", "10.1.2.3"], "203.0.113.7"),  # repeated headers join in order
        ("127.0.0.1", ["10.9.9.9"], "10.9.9.9"),  # only proxies: the farthest
        ("127.0.0.1", [], "127.0.0.1"),  # no header: the peer
        ("127.0.0.1", ["garbage, 10.1.2.3"], "10.1.2.3"),  # malformed: stop at the last good
        ("127.0.0.1", ["[2001:db8::5]:4431"], "2001:db8::5"),
        ("127.0.0.1", ["203.0.113.7:5555"], "203.0.113.7"),
        ("::ffff:127.0.0.1", ["203.0.113.7"], "203.0.113.7"),  # IPv4-mapped peer
        ("fd00::1", ["2001:db8::9"], "2001:db8::9"),
    ],
)
def test_forwarded_for_is_believed_from_trusted_proxies_only(peer: str, xff: list[str], client: str) -> None:
    assert forwarded_client(peer, xff, TRUSTED) == client


def test_no_trusted_proxy_means_the_peer() -> None:
    assert forwarded_client("127.0.0.1", ["203.0.113.7"], ()) == "127.0.0.1"


# -- two servers, one store ----------------------------------------------------------------
def _month() -> str:
    return dt.datetime.now(VN_TZ).strftime("%Y-%m")


async def _spoofing_results(url: str, n: int) -> list[str]:
    async with aiohttp.ClientSession(headers={"X-Forwarded-For": "203.0.113.77"}) as http:
        return [(await quick_result(http, url))[0] for _ in range(n)]


def test_two_servers_share_one_store(clickhouse_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = f"{clickhouse_server.url}/fleet{os.getpid()}"
    ports = {"hn-1": free_port(), "hcm-1": free_port()}
    fleet_file = tmp_path / "fleet.json"
    fleet_file.write_text(
        json.dumps(
            [
                {"id": "hn-1", "url": f"http://127.0.0.1:{ports['hn-1']}", "province": "01", "capacity_gbps": 40},
                {"id": "hcm-1", "url": f"http://127.0.0.1:{ports['hcm-1']}", "province": "79"},
            ]
        )
    )
    common = ["--fleet", str(fleet_file), "--spool-dir", "none"]
    hn = ServeProcess(
        store,
        [
            "--port",
            str(ports["hn-1"]),
            "--server-id",
            "hn-1",
            "--province",
            "01",
            "--trusted-proxy",
            "127.0.0.1/32",
            *common,
        ],
    )
    hcm = ServeProcess(store, ["--port", str(ports["hcm-1"]), "--server-id", "hcm-1", "--province", "79", *common])
    with hn, hcm:
        answer = json.loads(_get(hn.url + "/api/v1/servers"))
        assert [(s["server_id"], s["url"]) for s in answer["servers"]] == [("hn-1", hn.url), ("hcm-1", hcm.url)]
        results = {}
        for name, proc in (("hn-1", hn), ("hcm-1", hcm)):
            out = ispeed("test", "--server", proc.url, "--json", "--duration", "1", "--streams", "2")
            assert out.returncode == 0, out.stderr
            results[name] = json.loads(out.stdout)
        # without --server: the list URL of either server, the lowest-latency one is tested
        out = ispeed(
            "test", "--server-list", hcm.url + "/api/v1/servers", "--json", "--duration", "1", "--streams", "2"
        )
        assert out.returncode == 0, out.stderr
        picked = json.loads(out.stdout)
        assert picked["server"].rstrip("/") in (hn.url, hcm.url) and picked["valid"] is True
        # the same spoofed header through the trusted-proxy server and through the other
        via_proxy = asyncio.run(_spoofing_results(hn.url, 2))
        spoofed = asyncio.run(_spoofing_results(hcm.url, 1))
    with open_store(store) as s:
        networks = dict(
            s.query(
                "SELECT test_id, ip_network FROM {db}.measurements WHERE test_id IN {ids}", {"ids": via_proxy + spoofed}
            )
        )
        assert {networks[i] for i in via_proxy} == {"203.0.113.0/24"}
        assert networks[spoofed[0]] == "127.0.0.0/24"
        year, month = map(int, _month().split("-"))
        health = {h.server_id: h for h in server_health(s, year, month, capacity_gbps={"hn-1": 40.0})}
        assert saturated_minutes(s, year, month, {"hn-1": 0.001}) != []  # a tiny capacity is saturated
    # one export and one aggregation hold both servers' results
    export = tmp_path / "export.csv"
    assert ispeed("export", "--month", _month(), "--store", store, "--out", str(export)).returncode == 0
    with open(export, newline="") as fh:
        rows = {r["test_id"]: r for r in csv.DictReader(fh)}
    assert rows[results["hn-1"]["test_id"]]["server_id"] == "hn-1"
    assert rows[results["hcm-1"]["test_id"]]["server_id"] == "hcm-1"
    valid = [r for r in rows.values() if r["valid"] == "1"]
    assert {r["server_id"] for r in valid} == {"hn-1", "hcm-1"} and len(valid) >= 3
    out = ispeed(
        "aggregate", "--month", _month(), "--store", store, "--min-samples", "1", "--out", str(tmp_path / "agg")
    )
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "agg" / _month() / "stats.csv", newline="") as fh:
        national = [
            c
            for c in csv.DictReader(fh)
            if c["level"] == "national" and c["provider"] == "" and c["network_type"] == "fixed"
        ]
    assert national[0]["tests"] == str(len(valid))
    # per-server health: tests (valid and flagged) per server, load peaks, saturation against capacity
    assert sum(h.tests for h in health.values()) == len(rows) == 6
    assert health["hn-1"].valid_tests + health["hcm-1"].valid_tests == len(valid)
    assert health["hn-1"].invalid_tests + health["hcm-1"].invalid_tests == 6 - len(valid)
    assert all(h.invalid_reasons for h in health.values() if h.invalid_tests)
    assert health["hn-1"].capacity_gbps == 40.0 and health["hn-1"].saturated is False
    assert all(h.peak_load_gbps > 0 and h.peak_tests_per_minute >= 1 for h in health.values()), health


def _get(url: str) -> str:
    async def main() -> str:
        async with aiohttp.ClientSession() as http, http.get(url) as r:
            return await r.text()

    return asyncio.run(main())


def test_server_health_counts_load_and_saturation(store) -> None:  # type: ignore[no-untyped-def]
    from ispeed.core.schema import Measurement

    minute = dt.datetime(2025, 7, 15, 3, 0, tzinfo=dt.UTC)  # 10:00 in Vietnam
    started = minute - dt.timedelta(seconds=1)  # 1 s latency phase, then a 60 s download: exactly one minute

    def row(n: int, server: str, mbps: float, **kw: object) -> Measurement:
        base: dict[str, object] = dict(
            test_id=f"h{n}",
            started_at=started,
            local_date=dt.date(2025, 7, 15),
            network_type="fixed",
            provider="VNPT",
            province_code="01",
            download_mbps=mbps,
            upload_mbps=10.0,
            duration_s=60.0,
            server_id=server,
            tcp_min_rtt_ms=5.0,
        )
        base.update(kw)
        return Measurement(**base)  # type: ignore[arg-type]

    store.insert_measurements(
        [
            row(1, "hn-1", 3000.0),
            row(2, "hn-1", 3000.0),
            row(3, "hcm-1", 100.0, tcp_min_rtt_ms=None),
            row(
                4,
                "hcm-1",
                50.0,
                valid=False,
                tcp_min_rtt_ms=None,
                invalid_reason="upload 12.5 Mbps differs from the server's count (3.0 Mbps)",
            ),
            row(5, "sim-1", 10.0, simulated=True),
        ]
    )
    health = {h.server_id: h for h in server_health(store, 2025, 7, capacity_gbps={"hn-1": 7.0, "hcm-1": 10.0})}
    assert sorted(health) == ["hcm-1", "hn-1"]  # simulated tests left out by default
    hn, hcm = health["hn-1"], health["hcm-1"]
    assert (hn.tests, hn.valid_tests, hn.invalid_tests, hn.download_median_mbps) == (2, 2, 0, 3000.0)
    assert (hn.peak_load_gbps, hn.peak_tests_per_minute, hn.tcp_min_rtt_median_ms) == (6.0, 2, 5.0)
    assert (hn.saturated_minutes, hn.tests_in_saturated_minutes, hn.saturated) == (1, 2, True)  # 6 >= 0.8 × 7
    assert (hcm.tests, hcm.invalid_tests, hcm.invalid_share, hcm.tcp_min_rtt_median_ms) == (2, 1, 0.5, None)
    assert hcm.invalid_reasons == [("upload N Mbps differs from the server's count (N Mbps)", 1)]
    assert (hcm.peak_load_gbps, hcm.saturated) == (0.1, False)
    assert hcm.as_row()["invalid_reasons"].endswith(": 1")
    window = int(minute.timestamp())
    assert saturated_minutes(store, 2025, 7, {"hn-1": 7.0}) == [("hn-1", window, 6.0)]
    assert "sim-1" in {h.server_id for h in server_health(store, 2025, 7, include_simulated=True)}
