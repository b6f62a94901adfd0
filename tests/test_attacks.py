"""Attacks on the published figures, each a real client against a real `ispeed serve`.

The server runs as a process with its own IP and connection-type databases; clients reach it
from distinct loopback /24s, which the databases give distinct ISPs, places and connection types:

    127.0.0.0/24  Viettel, Hà Nội (01), Cable/DSL, located in Hà Nội (20 km)
    127.0.1.0/24  MobiFone, Hải Phòng (31), Cellular
    127.0.2.0/24  FPT Telecom, Hồ Chí Minh City (79), Cable/DSL
    127.0.3.0/24  CMC Telecom, Đà Nẵng (48), Cable/DSL (the device-minting machine)

Each attack is refused or stored flagged, and the stored figures are the server's own; honest
tests are stored valid with the server's figures.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ispeed.admin_geo import PrefixRow, build_mmdb
from ispeed.admin_geo.mmdb import build_connection_mmdb
from tests.raw_client import counters, paced_download, paced_upload
from tests.serve_process import ServeProcess

PREFIXES = (
    PrefixRow("127.0.0.0/24", 7552, "Viettel", "01", 21.0285, 105.8542, 20, "Cable/DSL"),
    PrefixRow("127.0.1.0/24", 131429, "MobiFone", "31", None, None, None, "Cellular"),
    PrefixRow("127.0.2.0/24", 18403, "FPT Telecom", "79", 10.7769, 106.7009, 20, "Cable/DSL"),
    PrefixRow("127.0.3.0/24", 45903, "CMC Telecom", "48", 16.0544, 108.2022, 20, "Cable/DSL"),
)
HO_CHI_MINH_CITY = (10.7769, 106.7009)
MINTING_ALLOWANCE = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("attacks")
    build_mmdb(PREFIXES, root / "geo.mmdb")
    build_connection_mmdb(PREFIXES, root / "connection.mmdb")
    with ServeProcess(
        f"chdb:{root / 'store'}",
        [
            "--asn-db",
            str(root / "geo.mmdb"),
            "--city-db",
            str(root / "geo.mmdb"),
            "--connection-db",
            str(root / "connection.mmdb"),
            "--site-dir",
            "none",
            "--spool-dir",
            "none",
            "--rate-per-network",
            "1000",
            "--device-ids-per-network",
            str(MINTING_ALLOWANCE),
        ],
    ) as proc:
        yield proc


def session(source: str) -> aiohttp.ClientSession:
    """A client whose connections come from `source` (a loopback address of one of the /24s)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)))


async def start(http: aiohttp.ClientSession, url: str, streams: int = 1, duration_s: float = 1.0) -> dict[str, Any]:
    async with http.post(url + "/api/v1/tests", json={"streams": streams, "duration_s": duration_s}) as r:
        assert r.status == 201, await r.text()
        answer: dict[str, Any] = await r.json()
        return answer


async def submit(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with http.post(url + "/api/v1/results", json=body) as r:
        return r.status, await r.json()


async def after_the_phase(started: float, duration_s: float) -> None:
    """Wait until the token's phase is over: until then the server's download timeline still runs
    (an honest client reads the counters after its upload, long after the download phase)."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, started + duration_s + 0.2 - loop.time()))


async def honest_phases(
    http: aiohttp.ClientSession, url: str, ticket: dict[str, Any], seconds: float = 0.95
) -> dict[str, Any]:
    """Both phases, paced over most of the phase; the server's counters once the phase is over."""
    started = asyncio.get_running_loop().time()
    await asyncio.gather(
        paced_download(http, url, ticket["token"], seconds, 16 << 10),
        paced_upload(http, url, ticket["token"], seconds, 16 << 10),
    )
    await after_the_phase(started, ticket["duration_s"])
    return await counters(http, url, ticket["test_id"], ticket["token"])


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_forged_upload_of_one_byte_claiming_5000_is_refused(server: ServeProcess) -> None:
    async def attack() -> tuple[int, dict[str, Any]]:
        async with session("127.0.0.1") as http:
            ticket = await start(http, server.url)
            await paced_download(http, server.url, ticket["token"], 0.6, 16 << 10)
            async with http.post(server.url + "/api/v1/upload", params={"token": ticket["token"]}, data=b"x") as r:
                assert (await r.json())["bytes"] == 1
            return await submit(http, server.url, {"token": ticket["token"], "download_mbps": 2.5, "upload_mbps": 5000})

    status, answer = run(attack())
    assert status == 422 and answer["field"] == "token" and "too little upload" in answer["error"]


def test_upload_claim_above_what_the_server_counted_is_stored_with_the_servers_figure(server: ServeProcess) -> None:
    async def attack() -> tuple[dict[str, Any], int, dict[str, Any]]:
        async with session("127.0.0.1") as http:
            ticket = await start(http, server.url)
            seen = await honest_phases(http, server.url, ticket)
            status, answer = await submit(
                http,
                server.url,
                {"token": ticket["token"], "download_mbps": seen["download_mbps"], "upload_mbps": 5000},
            )
            return seen, status, answer

    seen, status, answer = run(attack())
    assert status == 201 and answer["valid"] is False and "client_disagrees" in answer["flags"]
    assert answer["upload_mbps"] == pytest.approx(seen["upload_mbps"], abs=1e-3) and answer["upload_mbps"] < 100


def test_inflated_download_with_a_short_claimed_duration_keeps_the_servers_figure(server: ServeProcess) -> None:
    """1 MB over a 3 s phase is under 3 Mbit/s; the client claims 60 Mbit/s in 0.1 s."""

    async def attack() -> tuple[dict[str, Any], int, dict[str, Any]]:
        async with session("127.0.0.1") as http:
            ticket = await start(http, server.url, duration_s=3)
            started = asyncio.get_running_loop().time()
            moved = await asyncio.gather(
                paced_download(http, server.url, ticket["token"], 2.9, 16 << 10, 0.05),
                paced_upload(http, server.url, ticket["token"], 2.9, 16 << 10, 0.05),
            )
            assert 0.5e6 < moved[0] < 1.2e6
            await after_the_phase(started, 3)
            seen = await counters(http, server.url, ticket["test_id"], ticket["token"])
            status, answer = await submit(
                http,
                server.url,
                {
                    "token": ticket["token"],
                    "download_mbps": 60,
                    "upload_mbps": seen["upload_mbps"],
                    "duration_s": 0.1,
                    "streams": 64,
                },
            )
            return seen, status, answer

    seen, status, answer = run(attack())
    assert status == 201 and answer["valid"] is False and "download 60.0 Mbps differs" in answer["invalid_reason"]
    assert answer["download_mbps"] == pytest.approx(seen["download_mbps"], abs=1e-3) and answer["download_mbps"] < 3


def test_more_streams_than_the_test_asked_for_are_refused(server: ServeProcess) -> None:
    async def attack() -> list[int]:
        async with session("127.0.0.1") as http:
            ticket = await start(http, server.url, streams=2, duration_s=2)
            token = ticket["token"]
            # stream 0 held open (read slowly), then a second stream 0, then stream 1, then stream 2
            held = await http.get(
                server.url + "/api/v1/download", params={"token": token, "stream": "0", "bytes": str(1 << 30)}
            )
            statuses = []
            for stream in ("0", "1", "2"):
                async with http.get(
                    server.url + "/api/v1/download", params={"token": token, "stream": stream, "bytes": "65536"}
                ) as r:
                    statuses.append(r.status)
                    await r.read()
            held.close()
            return statuses

    assert run(attack()) == [409, 200, 400]


def test_streams_from_another_network_are_refused_and_results_keep_the_transfer_network(server: ServeProcess) -> None:
    async def attack() -> tuple[int, int, dict[str, Any]]:
        async with session("127.0.0.1") as home, session("127.0.2.1") as elsewhere:
            ticket = await start(home, server.url)
            async with elsewhere.get(
                server.url + "/api/v1/download", params={"token": ticket["token"], "bytes": "65536"}
            ) as r:
                borrowed = r.status
            seen = await honest_phases(home, server.url, ticket)
            # the result is submitted from FPT's network: it stays Viettel's, where the bytes moved
            status, answer = await submit(
                elsewhere,
                server.url,
                {"token": ticket["token"], "download_mbps": seen["download_mbps"], "upload_mbps": seen["upload_mbps"]},
            )
            return borrowed, status, answer

    borrowed, status, answer = run(attack())
    assert borrowed == 403
    assert status == 201 and answer["valid"] is True
    assert (answer["provider"], answer["province_code"]) == ("Viettel", "01")


def test_gps_far_from_the_fixed_lines_location_is_not_used_for_the_place(server: ServeProcess) -> None:
    async def attack() -> tuple[int, dict[str, Any]]:
        async with session("127.0.0.1") as http:
            ticket = await start(http, server.url)
            seen = await honest_phases(http, server.url, ticket)
            lat, lon = HO_CHI_MINH_CITY  # 1,100 km from the Hà Nội line the databases know
            return await submit(
                http,
                server.url,
                {
                    "token": ticket["token"],
                    "download_mbps": seen["download_mbps"],
                    "upload_mbps": seen["upload_mbps"],
                    "lat": lat,
                    "lon": lon,
                    "accuracy_m": 10,
                    "network_type": "fixed",
                },
            )

    status, answer = run(attack())
    assert status == 201 and answer["valid"] is True and answer["flags"] == ["location_conflict"]
    assert (answer["province_code"], answer["commune_code"], answer["location_source"]) == ("01", "", "ip")


def test_declared_type_the_connection_database_contradicts_is_stored_flagged(server: ServeProcess) -> None:
    async def attack(source: str, declared: str) -> tuple[int, dict[str, Any]]:
        async with session(source) as http:
            ticket = await start(http, server.url)
            seen = await honest_phases(http, server.url, ticket)
            body = {
                "token": ticket["token"],
                "download_mbps": seen["download_mbps"],
                "upload_mbps": seen["upload_mbps"],
            }
            return await submit(http, server.url, {**body, "network_type": declared} if declared else body)

    for source, declared in (("127.0.1.1", "fixed"), ("127.0.0.1", "5g")):  # Cellular; Cable/DSL
        status, answer = run(attack(source, declared))
        assert status == 201 and answer["valid"] is False, (source, declared, answer)
        assert answer["flags"] == ["network_type_conflict"] and answer["network_type"] == declared
    # the same declarations where the evidence agrees are ranked, with the evidence recorded
    status, answer = run(attack("127.0.1.1", "5g"))
    assert answer["valid"] is True and (answer["network_type"], answer["network_type_source"]) == ("5g", "declared")
    status, answer = run(attack("127.0.1.1", ""))  # nothing declared: the IP decides
    assert answer["valid"] is True and (answer["network_type"], answer["network_type_source"]) == ("mobile", "ip")


def test_one_machine_minting_device_ids_gains_at_most_the_allowance(server: ServeProcess) -> None:
    async def attack() -> tuple[list[int], list[str]]:
        async with session("127.0.3.1") as http:
            statuses, ids = [], []
            for _ in range(MINTING_ALLOWANCE + 3):
                async with http.post(server.url + "/api/v1/devices") as r:
                    statuses.append(r.status)
                    if r.status == 201:
                        ids.append((await r.json())["device_id"])
            sources = []
            for device_id in ids + ["d1.self-made-id-that-no-server-signed"]:
                ticket = await start(http, server.url)
                seen = await honest_phases(http, server.url, ticket)
                status, answer = await submit(
                    http,
                    server.url,
                    {
                        "token": ticket["token"],
                        "download_mbps": seen["download_mbps"],
                        "upload_mbps": seen["upload_mbps"],
                        "device_id": device_id,
                    },
                )
                assert status == 201 and answer["valid"] is True
                sources.append(answer["device_source"])
            return statuses, sources

    statuses, sources = run(attack())
    assert statuses == [201] * MINTING_ALLOWANCE + [429] * 3
    # every minted id is one device; the self-made one counts under the machine's IP hash
    assert sources == ["issued"] * MINTING_ALLOWANCE + ["ip"]


def test_honest_cli_test_is_stored_valid_with_the_servers_figures(server: ServeProcess, tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ispeed.cli.main",
            "test",
            "--server",
            server.url,
            "--json",
            "--streams",
            "2",
            "--duration",
            "3",
            "--state-dir",
            str(tmp_path / "state"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["valid"] is True and result["flags"] == [], result
    assert (result["network_type"], result["network_type_source"], result["device_source"]) == ("fixed", "ip", "issued")
    # the published figures are the server's; the client's own agree within the 10 % tolerance
    for direction in ("download", "upload"):
        server_mbps, client_mbps = result[f"{direction}_mbps"], result[f"{direction}_mbps_client"]
        assert server_mbps > 100 and abs(server_mbps / client_mbps - 1) < 0.10, result
