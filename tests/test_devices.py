"""Server-issued device ids: signing and verification, issuance limits per network and Vietnam-local day."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ispeed.core.timeutil import VN_TZ
from ispeed.server import devices
from ispeed.server.app import make_app, running
from ispeed.server.config import ServerConfig
from ispeed.server.devices import Issuer, new_device_id, resolve_device, sign_device_id, verify_device_id
from ispeed.server.keys import METRICS
from ispeed.server.privacy import keyed_hash

SECRET = b"device-test-secret-0123456789"
OTHER = b"another-fleet-secret-987654321"
DAY = dt.date(2025, 7, 1)


def vn(day: dt.date, hour: int, minute: int = 0) -> float:
    """UTC epoch seconds of a Vietnam-local wall-clock time."""
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=VN_TZ).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- the signed id -------------------------------------------------------------------------------
def test_an_issued_id_verifies_and_has_the_documented_form() -> None:
    device_id = new_device_id(SECRET, DAY)
    version, random_part, day, mac = device_id.split(".")
    assert (version, day, len(random_part), len(mac), len(device_id)) == ("d1", "20250701", 22, 43, 78)
    assert verify_device_id(SECRET, device_id) == device_id
    assert devices.issue_day(device_id) == DAY
    assert new_device_id(SECRET, DAY) != device_id  # random part


def test_another_secret_or_any_change_does_not_verify() -> None:
    device_id = new_device_id(SECRET, DAY)
    version, random_part, day, mac = device_id.split(".")
    flipped = random_part[:-1] + ("A" if random_part[-1] != "A" else "B")
    forged = [
        device_id[:-1],  # truncated
        device_id + "A",  # extended
        f"{version}.{flipped}.{day}.{mac}",  # another random part under the same MAC
        f"{version}.{random_part}.20250702.{mac}",  # another issue day
        f"d2.{random_part}.{day}.{mac}",  # another version
        f"{version}.{random_part}.{day}." + "A" * 43,  # a made-up MAC
        sign_device_id(OTHER, random_part, DAY),  # another fleet's secret
        " " + device_id,
        device_id + "\n",
        device_id.upper(),
    ]
    for text in forged:
        assert verify_device_id(SECRET, text) is None, text
    assert verify_device_id(b"", device_id) is None


def test_another_spelling_of_the_same_mac_bytes_does_not_verify() -> None:
    """43 base64url characters carry 258 bits: the last one has 4 spellings of the same 256 bits."""
    device_id = new_device_id(SECRET, DAY)
    head, last = device_id[:-1], device_id[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    base = alphabet.index(last) & ~3
    for other in alphabet[base : base + 4]:
        assert verify_device_id(SECRET, head + other) == (device_id if other == last else None)


@pytest.mark.parametrize(
    "text",
    [
        None,
        17,
        b"d1.x",
        ["d1"],
        {"d": 1},
        "",
        "d1",
        "d1...",
        "x" * 10_000,
        "d1." + "é" * 22 + ".20250701." + "A" * 43,
        "d1." + "A" * 22 + ".２０２５０７０１." + "A" * 43,  # full-width digits: \d would have taken them
        "d1." + "A" * 22 + ".20250701." + "A" * 42 + "\ud800",  # a lone surrogate from json.loads
        "d1." + "A" * 22 + ".20250701." + "A" * 42 + "\u00c5",
    ],
)
def test_anything_malformed_is_none_never_an_exception(text: Any) -> None:
    assert verify_device_id(SECRET, text) is None
    assert resolve_device(SECRET, text) == ("", "ip")


def test_resolve_device_hashes_a_genuine_id_and_sends_the_rest_to_the_ip() -> None:
    device_id = new_device_id(SECRET, DAY)
    assert resolve_device(SECRET, device_id) == (keyed_hash(SECRET, "device", device_id), "issued")
    assert resolve_device(OTHER, device_id) == ("", "ip")
    assert resolve_device(SECRET, "my-own-chosen-id") == ("", "ip")
    assert resolve_device(SECRET, "") == ("", "ip")


# -- issuance limits ----------------------------------------------------------------------------
def test_a_network_gets_its_allowance_per_vietnam_day_then_refusals_until_local_midnight() -> None:
    clock = Clock(vn(DAY, 6))
    issuer = Issuer(SECRET, per_network=3, per_cellular_network=50, clock=clock)
    grants = [issuer.request(f"203.0.113.{i}") for i in range(1, 6)]  # one /24, five addresses
    assert [g.status for g in grants] == ["issued"] * 3 + ["refused"] * 2
    assert all(verify_device_id(SECRET, g.device_id) for g in grants[:3])
    assert len({g.device_id for g in grants[:3]}) == 3
    assert grants[3].retry_after_s == pytest.approx(18 * 3600) and grants[3].allowance == 3
    assert issuer.request("203.0.114.1").status == "issued"  # another /24 has its own allowance
    assert issuer.request("2001:db8:1:2::1").status == "issued"  # IPv6: per /48
    clock.now = vn(DAY, 23, 59)
    assert issuer.request("203.0.113.9").status == "refused"
    # 17:00 UTC is midnight in Vietnam: a UTC-day counter would still refuse here
    clock.now = vn(DAY + dt.timedelta(days=1), 0, 1)
    assert dt.datetime.fromtimestamp(clock.now, dt.UTC).date() == DAY
    fresh = [issuer.request("203.0.113.200").status for _ in range(4)]
    assert fresh == ["issued"] * 3 + ["refused"]
    assert devices.issue_day(issuer.request("198.51.100.1").device_id) == DAY + dt.timedelta(days=1)


def test_cellular_networks_get_the_higher_allowance() -> None:
    def is_cellular(ip: str) -> bool:
        return ip.startswith("198.51.100.")

    issuer = Issuer(SECRET, per_network=2, per_cellular_network=40, is_cellular=is_cellular, clock=Clock(vn(DAY, 12)))
    phones = [issuer.request(f"198.51.100.{i % 250 + 1}") for i in range(45)]
    assert [g.status for g in phones].count("issued") == 40
    assert phones[-1].status == "refused" and phones[-1].cellular and phones[-1].allowance == 40
    fixed = [issuer.request("203.0.113.7").status for _ in range(3)]
    assert fixed == ["issued", "issued", "refused"]


def test_a_held_genuine_id_comes_back_without_spending_the_allowance() -> None:
    issuer = Issuer(SECRET, per_network=1, per_cellular_network=1, clock=Clock(vn(DAY, 9)))
    first = issuer.request("203.0.113.5")
    for _ in range(5):
        again = issuer.request("203.0.113.6", presented=first.device_id)
        assert (again.status, again.device_id) == ("known", first.device_id)
    assert issuer.request("203.0.113.6", presented="an-old-random-uuid").status == "refused"
    assert issuer.issued_today("203.0.113.99") == 1


def test_ids_of_a_previous_secret_are_renewed_once_not_minted() -> None:
    old_id = new_device_id(OTHER, DAY)
    issuer = Issuer(SECRET, per_network=0, per_cellular_network=0, clock=Clock(vn(DAY, 9)), previous_secrets=[OTHER])
    renewed = issuer.request("203.0.113.5", presented=old_id)
    assert renewed.status == "renewed" and verify_device_id(SECRET, renewed.device_id) == renewed.device_id
    assert renewed.device_id.split(".")[1:3] == old_id.split(".")[1:3]
    assert issuer.request("203.0.113.5", presented=old_id).device_id == renewed.device_id  # no minting by replay
    assert issuer.request("203.0.113.5").status == "refused"
    # a result carrying the old id counts as the same device as one carrying the renewed id
    assert resolve_device(SECRET, old_id, [OTHER]) == resolve_device(SECRET, renewed.device_id) != ("", "ip")
    assert resolve_device(SECRET, old_id) == ("", "ip")


def test_counters_stay_bounded_and_fail_closed_when_full() -> None:
    clock = Clock(vn(DAY, 10))
    issuer = Issuer(SECRET, per_network=5, per_cellular_network=5, clock=clock, max_networks=3)
    assert [issuer.request(f"203.0.{n}.1").status for n in range(4)] == ["issued"] * 3 + ["refused"]
    assert issuer.request("203.0.1.2").status == "issued"  # a network already counted goes on
    clock.now += 86400
    assert issuer.request("203.0.3.1").status == "issued"  # yesterday's table is gone
    assert len(issuer._issued) == 1


def test_a_failing_connection_type_lookup_gives_the_fixed_allowance() -> None:
    def broken(ip: str) -> bool:
        raise RuntimeError("database closed")

    issuer = Issuer(SECRET, per_network=1, per_cellular_network=100, is_cellular=broken, clock=Clock(vn(DAY, 10)))
    assert [issuer.request("198.51.100.1").status for _ in range(2)] == ["issued", "refused"]


# -- the endpoint, on the app at port 0 ------------------------------------------------------------
def with_app(
    tmp_path: Path,
    body: Callable[[str, aiohttp.ClientSession, Any], Awaitable[Any]],
    clock: Clock,
    is_cellular: Callable[[str], bool] = devices.never_cellular,
    **cfg: Any,
) -> Any:
    async def main() -> Any:
        config = ServerConfig(
            host="127.0.0.1", port=0, store_url=f"chdb:{tmp_path / 'store'}", secret=SECRET, spool_dir="", **cfg
        )
        app = make_app(config)
        app[devices.ISSUER].clock = clock
        app[devices.ISSUER].is_cellular = is_cellular
        async with running(config, app) as (url, app), aiohttp.ClientSession() as http:
            return await body(url, http, app)

    return asyncio.run(main())


async def post(http: aiohttp.ClientSession, url: str, data: Any = None, **kw: Any) -> tuple[int, Any, Any]:
    async with http.post(url + "/api/v1/devices", data=data, **kw) as r:
        return r.status, await r.json(content_type=None), r.headers


def test_the_endpoint_issues_confirms_refuses_with_retry_after_and_counts(tmp_path: Path) -> None:
    clock = Clock(vn(DAY, 20))

    async def body(url: str, http: aiohttp.ClientSession, app: Any) -> None:
        status, first, _ = await post(http, url)  # no body at all
        assert status == 201 and first["status"] == "issued" and first["issued_on"] == "2025-07-01"
        assert verify_device_id(SECRET, first["device_id"]) and first["issued_at"].startswith("2025-07-01T13:00")
        status, second, _ = await post(http, url, json={})
        assert status == 201 and second["device_id"] != first["device_id"]
        status, known, _ = await post(http, url, json={"device_id": first["device_id"]})
        assert (status, known["status"], known["device_id"]) == (200, "known", first["device_id"])
        status, refused, headers = await post(http, url, json={"device_id": "self-chosen"})
        assert status == 429 and "2 new device ids for today" in refused["error"]
        assert refused["retry_after_s"] == 4 * 3600 and headers["Retry-After"] == str(4 * 3600)
        for bad, field in (
            (b"{not json", "body"),
            (b"[1]", "body"),
            (b'{"device_id": 5}', "device_id"),
            (b'{"other": 1}', "other"),
        ):
            status, answer, _ = await post(http, url, data=bad, headers={"Content-Type": "application/json"})
            assert (status, answer["field"]) == (400, field), bad
        status, answer, _ = await post(http, url, data=b"x", headers={"Content-Type": "text/plain"})
        assert status == 415
        metrics = app[METRICS].render()
        assert "ispeed_device_ids_issued_total 2" in metrics and "ispeed_device_ids_refused_total 1" in metrics
        assert "ispeed_device_ids_known_total 1" in metrics

    with_app(tmp_path, body, clock, device_ids_per_network=2)


def test_the_endpoint_believes_forwarded_addresses_only_from_trusted_proxies(tmp_path: Path) -> None:
    from ispeed.server.proxy import parse_trusted

    async def body(url: str, http: aiohttp.ClientSession, app: Any) -> None:
        statuses = []
        for i in range(3):  # three networks behind the proxy: one id each
            status, _, _ = await post(http, url, headers={"X-Forwarded-For": f"203.0.{i}.9"})
            statuses.append(status)
        status, _, _ = await post(http, url, headers={"X-Forwarded-For": "203.0.0.10"})
        assert statuses == [201, 201, 201] and status == 429

    with_app(tmp_path, body, Clock(vn(DAY, 8)), device_ids_per_network=1, trusted_proxies=parse_trusted(["127.0.0.1"]))


def test_the_endpoint_gives_cellular_networks_their_allowance(tmp_path: Path) -> None:
    from ispeed.server.proxy import parse_trusted

    async def body(url: str, http: aiohttp.ClientSession, app: Any) -> None:
        carrier = [(await post(http, url, headers={"X-Forwarded-For": f"198.51.100.{i}"}))[0] for i in range(12)]
        fixed = [(await post(http, url, headers={"X-Forwarded-For": f"203.0.113.{i}"}))[0] for i in range(3)]
        assert carrier == [201] * 10 + [429] * 2 and fixed == [201, 429, 429]
        status, answer, _ = await post(http, url, headers={"X-Forwarded-For": "198.51.100.77"})
        assert status == 429 and "carrier (cellular) network" in answer["error"] and answer["allowance"] == 10

    with_app(
        tmp_path,
        body,
        Clock(vn(DAY, 8)),
        lambda ip: ip.startswith("198.51.100."),
        device_ids_per_network=1,
        device_ids_per_cellular_network=10,
        trusted_proxies=parse_trusted(["127.0.0.1"]),
    )


def test_serve_flags_reach_the_config() -> None:
    from ispeed.cli.main import build_parser
    from ispeed.server.cli import build_config

    args = build_parser().parse_args(
        [
            "serve",
            "--store",
            "chdb:/tmp/x",
            "--secret",
            "s" * 20,
            "--device-ids-per-network",
            "5",
            "--device-ids-per-cellular-network",
            "700",
            "--previous-secret",
            "o" * 20,
        ]
    )
    cfg = build_config(args)
    assert (
        cfg.device_ids_per_network,
        cfg.device_ids_per_cellular_network,  # type: ignore[attr-defined]
        cfg.device_id_previous_secrets,
    ) == (5, 700, (b"o" * 20,))  # type: ignore[attr-defined]
    defaults = build_config(build_parser().parse_args(["serve", "--store", "chdb:/tmp/x", "--secret", "s" * 20]))
    assert (defaults.device_ids_per_network, defaults.device_ids_per_cellular_network) == (16, 1024)  # type: ignore[attr-defined]
    assert "o" * 20 not in repr(cfg) and "s" * 20 not in repr(cfg)
