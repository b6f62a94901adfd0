"""Device identities end to end: real clients against a real `ispeed serve`, and the client's state file.

The device-minting attack: one machine minting device ids gets at most the allowance.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ispeed.client.identity import DeviceIdentity, looks_signed
from ispeed.core.errors import ServerUnreachable
from ispeed.core.store import open_store
from ispeed.server.devices import new_device_id, verify_device_id
from ispeed.server.privacy import keyed_hash
from tests.serve_process import ServeProcess

SERVE_SECRET = b"functional-test-secret-000"  # tests/serve_process.py
ALLOWANCE = 5
SEEN = web.AppKey("seen", list)


def ispeed_test(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ispeed.cli.main",
            "test",
            "--server",
            url,
            "--json",
            "--duration",
            "1",
            "--streams",
            "2",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[ServeProcess, str]]:
    store = f"chdb:{tmp_path / 'store'}"
    with ServeProcess(store, ["--device-ids-per-network", str(ALLOWANCE), "--spool-dir", "none"]) as proc:
        yield proc, store


def test_one_machine_minting_ids_gets_the_allowance_then_429_until_tomorrow(serve: tuple[ServeProcess, str]) -> None:
    proc, _ = serve

    async def mint() -> tuple[list[str], list[tuple[int, Any, str]], str]:
        got: list[str] = []
        refusals: list[tuple[int, Any, str]] = []
        async with aiohttp.ClientSession() as http:
            for _ in range(ALLOWANCE * 4):  # bounded: four times the allowance
                async with http.post(proc.url + "/api/v1/devices", json={}) as r:
                    answer = await r.json()
                    if r.status == 201:
                        got.append(answer["device_id"])
                    else:
                        refusals.append((r.status, answer, r.headers.get("Retry-After", "")))
            async with http.get(proc.url + "/metrics") as r:
                metrics = await r.text()
        return got, refusals, metrics

    got, refusals, metrics = asyncio.run(mint())
    assert len(got) == ALLOWANCE and len(set(got)) == ALLOWANCE
    assert all(verify_device_id(SERVE_SECRET, d) == d for d in got)
    assert len(refusals) == 3 * ALLOWANCE and {r[0] for r in refusals} == {429}
    retry_s = refusals[0][1]["retry_after_s"]
    assert 0 < retry_s <= 86400 and abs(int(refusals[0][2]) - retry_s) <= 1
    assert f"ispeed_device_ids_issued_total {ALLOWANCE}" in metrics
    assert f"ispeed_device_ids_refused_total {3 * ALLOWANCE}" in metrics


def test_ispeed_test_keeps_its_server_issued_id_across_runs(serve: tuple[ServeProcess, str], tmp_path: Path) -> None:
    proc, store = serve
    state = tmp_path / "state"
    state.mkdir()
    (state / "device-id").write_text("a-self-chosen-id\n")  # what older clients kept
    runs = [ispeed_test(proc.url, "--state-dir", str(state)) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr
    device = (state / "device-id").read_text().strip()
    assert verify_device_id(SERVE_SECRET, device) == device
    no_submit = ispeed_test(proc.url, "--state-dir", str(tmp_path / "unused"), "--no-submit")
    assert no_submit.returncode == 0 and not (tmp_path / "unused").exists()  # no id asked for
    proc.stop()
    with open_store(store) as s:
        hashes = {r[0] for r in s.query("SELECT device_hash FROM {db}.measurements")}
    assert hashes == {keyed_hash(SERVE_SECRET, "device", device)}  # two tests, one device


def test_a_test_goes_on_without_an_id_when_the_network_allowance_is_spent(tmp_path: Path) -> None:
    store = f"chdb:{tmp_path / 'store'}"
    with ServeProcess(store, ["--device-ids-per-network", "0", "--spool-dir", "none"]) as proc:
        out = ispeed_test(proc.url, "--state-dir", str(tmp_path / "state"))
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stderr.splitlines() if "device ids" in line]
    assert len(warnings) == 1 and "counts under your IP address" in warnings[0]
    assert json.loads(out.stdout)["submitted"] is True
    assert not (tmp_path / "state" / "device-id").exists()
    with open_store(store) as s:
        assert s.query("SELECT device_hash, ip_hash != '' FROM {db}.measurements") == [("", 1)]


# -- the client's side against small stand-in servers: an older server, one that refuses, none ---------
async def _tiny_server(status: int, answer: Any) -> tuple[web.AppRunner, str]:
    seen: list[Any] = []

    async def devices(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.json_response(answer, status=status)

    app = web.Application()
    if status != 404:
        app.router.add_post("/api/v1/devices", devices)
    app[SEEN] = seen
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    "status,answer,needle",
    [
        (404, None, "older server"),
        (429, {"error": "spent", "retry_after_s": 7200}, "retry in 2 h"),
        (500, {"error": "boom"}, "HTTP 500"),
        (201, {"device_id": "not-a-signed-id"}, "HTTP 201"),
    ],
)
def test_no_id_from_the_server_means_no_id_one_warning_and_no_retry_storm(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, status: int, answer: Any, needle: str
) -> None:
    held = new_device_id(b"another-fleet-secret-000", dt.date(2025, 7, 1))
    (tmp_path / "device-id").write_text(held + "\n")

    async def main() -> tuple[list[str], list[Any]]:
        runner, url = await _tiny_server(status, answer)
        try:
            identity = DeviceIdentity(tmp_path)
            return [await identity.for_server(url) for _ in range(3)], runner.app[SEEN]
        finally:
            await runner.cleanup()

    with caplog.at_level(logging.WARNING, logger="ispeed.client.identity"):
        ids, seen = asyncio.run(main())
    assert ids == ["", "", ""]
    assert len(caplog.records) == 1 and needle in caplog.records[0].getMessage()
    assert seen == ([] if status == 404 else [{"device_id": held}])  # asked once, the held id presented
    assert (tmp_path / "device-id").read_text().strip() == held  # kept: another fleet may vouch for it


def test_an_unreachable_server_is_server_unreachable(tmp_path: Path) -> None:
    from tests.clickhouse_server import free_port

    with pytest.raises(ServerUnreachable, match="cannot reach the test server"):
        asyncio.run(DeviceIdentity(tmp_path).for_server(f"http://127.0.0.1:{free_port()}"))


def test_an_unwritable_state_dir_costs_a_warning_not_the_id(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    issued = new_device_id(SERVE_SECRET, dt.date(2025, 7, 1))

    async def main() -> str:
        runner, url = await _tiny_server(201, {"device_id": issued})
        try:
            return await DeviceIdentity(blocker / "state").for_server(url)
        finally:
            await runner.cleanup()

    with caplog.at_level(logging.WARNING, logger="ispeed.client.identity"):
        assert asyncio.run(main()) == issued
    assert len(caplog.records) == 1 and "--state-dir" in caplog.records[0].getMessage()
    assert looks_signed(issued) and not looks_signed(issued[:-1])
