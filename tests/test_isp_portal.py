"""ISP portal over HTTP, on both store backends: own data only, every trick refused, every attempt audited.

One simulated month (20k tests, aggregated with a low threshold so some cells publish and some
do not) per backend, shared by the tests of this module; each test starts its own server.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import os
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from ispeed.aggregator.aggregate import aggregate_month
from ispeed.aggregator.export import write_month
from ispeed.aggregator.methodology import Methodology
from ispeed.aggregator.simulate import SimulationConfig, simulate
from ispeed.cli.main import main
from ispeed.core.store import open_store
from ispeed.server.app import make_app, running
from ispeed.server.audit import read_entries
from ispeed.server.config import ServerConfig
from ispeed.server.isp_data import STATS_OUT
from ispeed.server.isp_keys import create_key, revoke_key
from ispeed.server.isp_portal import PORTAL, PortalConfig
from ispeed.server.keys import INGEST, METRICS
from ispeed.server.limits import RateLimiter

SECRET = b"isp-portal-test-secret-0123456789"
MONTH = "2025-07"
OWN, OTHER = "VNPT", "Viettel"
TEST_ID = re.compile(r"sim\d+-\d{6}-\d{10}")


@dataclass
class PortalData:
    url: str
    keys: dict[str, str]  # name -> full key
    key_ids: dict[str, str]
    own_stats: int  # monthly_stats rows of OWN (every cell)
    own_unpublished: int
    visible_others: int  # published rows of other providers and all-provider rows
    export_rows: dict[str, list[list[str]]] = field(default_factory=dict)  # provider -> export rows
    other_ids: set[str] = field(default_factory=set)


@pytest.fixture(scope="module", params=["chdb", "clickhouse"])
def portal_data(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalData]:
    if request.param == "chdb":
        url = f"chdb:{tmp_path_factory.mktemp('isp') / 'store'}"
    else:
        server = request.getfixturevalue("clickhouse_server")
        url = f"{server.url}/isp{os.getpid()}_{request.param}"
    with open_store(url) as store:
        simulate(store, SimulationConfig(2025, 7, 20_000, seed=8))
        aggregate_month(store, 2025, 7, Methodology(min_samples=25, include_simulated=True), None)
        now = dt.datetime.now(dt.UTC)
        keys = {
            "own": create_key(store, OWN, now + dt.timedelta(days=30)),
            "other": create_key(store, OTHER),
            "expired": create_key(store, OWN, now - dt.timedelta(seconds=1)),
            "revoked": create_key(store, OWN),
        }
        revoke_key(store, keys["revoked"].record.key_id)
        counts = store.query(
            "SELECT provider = {own}, published, count() FROM {db}.monthly_stats WHERE month = {m}"
            " GROUP BY provider = {own}, published",
            {"own": OWN, "m": MONTH},
        )
        by = {(int(a), int(b)): int(c) for a, b, c in counts}
        buf = io.StringIO()
        write_month(store, 2025, 7, buf)
    rows = list(csv.reader(io.StringIO(buf.getvalue())))
    header, body = rows[0], rows[1:]
    at = header.index("provider")
    data = PortalData(
        url=url,
        keys={k: v.key for k, v in keys.items()},
        key_ids={k: v.record.key_id for k, v in keys.items()},
        own_stats=by.get((1, 0), 0) + by.get((1, 1), 0),
        own_unpublished=by.get((1, 0), 0),
        visible_others=by.get((0, 1), 0),
    )
    for row in body:
        data.export_rows.setdefault(row[at], []).append(row)
    data.other_ids = {r[0] for p, rs in data.export_rows.items() if p != OWN for r in rs}
    assert data.own_unpublished > 0 and by.get((1, 1), 0) > 0 and by.get((0, 0), 0) > 0  # both kinds exist
    yield data


def with_portal(
    data: PortalData,
    body: Callable[[str, aiohttp.ClientSession, Any], Awaitable[Any]],
    portal: PortalConfig | None = None,
) -> Any:
    async def run() -> Any:
        config = ServerConfig(host="127.0.0.1", port=0, store_url=data.url, secret=SECRET)
        app = make_app(config)
        if portal is not None:
            app[PORTAL].config = portal
            app[PORTAL].bad_keys = RateLimiter(portal.bad_keys_per_min, portal.bad_key_burst)
            app[PORTAL].keys.scan_interval_s = portal.key_scan_interval_s
        async with running(config, app) as (url, app), aiohttp.ClientSession() as http:
            return await body(url, http, app)

    return asyncio.run(run())


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def raw(
    url: str, target: str, headers: dict[str, str] | None = None, method: str = "GET", extra: bytes = b""
) -> tuple[int, dict[str, str], str]:
    """One HTTP/1.1 request with the request target sent byte for byte (no client normalisation)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    headers = {"Host": host, "Connection": "close", **(headers or {})}
    lines = [f"{method} {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    writer.write("\r\n".join(lines).encode("utf-8") + b"\r\n" + extra + b"\r\n")
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    got = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    if got.get("transfer-encoding") == "chunked":
        out, rest = b"", body
        while rest:
            size_text, _, rest = rest.partition(b"\r\n")
            size = int(size_text.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2 :]
        body = out
    return int(status_line.split()[1]), got, body.decode("utf-8", "replace")


def test_own_key_reads_own_stats_and_tests_streamed_in_pages(portal_data: PortalData) -> None:
    async def body(url: str, http: aiohttp.ClientSession, app: Any) -> None:
        async with http.get(url + "/isp/v1/months", headers=bearer(portal_data.keys["own"])) as r:
            assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
            months = await r.json()
        assert months["provider"] == OWN and months["key_id"] == portal_data.key_ids["own"]
        assert months["months"] == [
            {
                "month": MONTH,
                "stats": True,
                "tests": True,
                "stats_csv": f"{url}/isp/v1/{MONTH}/stats.csv",
                "tests_csv": f"{url}/isp/v1/{MONTH}/tests.csv",
            }
        ]

        async with http.get(f"{url}/isp/v1/{MONTH}/stats.csv", headers=bearer(portal_data.keys["own"])) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv")
            assert r.headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in r.headers
            assert f"ispeed-vnpt-{MONTH}-stats.csv" in r.headers["Content-Disposition"]
            text = await r.text()
        assert text.splitlines()[0].split(",") == list(STATS_OUT)
        rows = parse_csv(text)
        own = [c for c in rows if c["provider"] == OWN]
        others = [c for c in rows if c["provider"] != OWN]
        assert len(own) == portal_data.own_stats and len(others) == portal_data.visible_others
        assert all(c["published"] == "true" for c in others)  # nobody else's suppressed cells
        hidden = [c for c in own if c["published"] == "false"]
        assert len(hidden) == portal_data.own_unpublished
        assert all(int(c["tests"]) > 0 and int(c["samples"]) < 25 for c in hidden)  # below threshold, counted
        assert {c["level"] for c in own} == {"national", "province", "commune"}
        assert {c["provider"] for c in others} >= {"", OTHER}
        # the public order: network type, then national, province, commune
        levels = [c["level"] for c in rows if c["network_type"] == "fixed"]
        assert levels == sorted(levels, key=["national", "province", "commune"].index)

        async with http.get(f"{url}/isp/v1/{MONTH}/tests.csv", headers=bearer(portal_data.keys["own"])) as r:
            assert r.status == 200 and r.headers.get("Transfer-Encoding") == "chunked"
            text = await r.text()
        lines = list(csv.reader(io.StringIO(text)))
        assert "ip_hash" not in lines[0] and "ip_network" not in lines[0] and "lat" not in lines[0]
        expected = portal_data.export_rows[OWN]
        assert len(lines) - 1 == len(expected) > 3 * 700  # several pages of 700 rows
        assert sorted(lines[1:]) == sorted(expected)  # exactly the open-data rows of OWN
        assert not TEST_ID.findall(text) or not set(TEST_ID.findall(text)) & portal_data.other_ids

    with_portal(portal_data, body, PortalConfig(page_rows=700))


def test_bad_keys_get_401_and_every_attempt_is_audited(portal_data: PortalData) -> None:
    own, other = portal_data.keys["own"], portal_data.keys["other"]
    kid = portal_data.key_ids["own"]
    secret = own.split("_", 2)[2]
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    cases: list[tuple[dict[str, str], str]] = [
        ({}, "no_key"),
        ({"Authorization": f"Bearer isp_{kid}_{flipped}"}, "bad_secret"),
        ({"Authorization": f"Bearer isp_000000000000_{secret}"}, "unknown_key"),
        ({"Authorization": f"Bearer {portal_data.keys['expired']}"}, "expired"),
        ({"Authorization": f"Bearer {portal_data.keys['revoked']}"}, "revoked"),
        ({"Authorization": f"Basic {own}"}, "malformed_key"),
        ({"Authorization": own}, "malformed_key"),
        ({"Authorization": "Bearer"}, "malformed_key"),
        ({"Authorization": f"Bearer {own.upper()}"}, "malformed_key"),
        ({"Authorization": f"Bearer {own} {own}"}, "malformed_key"),
        ({"Authorization": f"Bearer {own[:-1]}"}, "malformed_key"),
        ({"Authorization": f"Bearer {own}x"}, "malformed_key"),
        ({"Authorization": f"Bearer {own.replace('isp_', 'ısp_')}"}, "malformed_key"),  # dotless i
        ({"Authorization": f"Bearer {own[:-1]}\u0430"}, "malformed_key"),  # Cyrillic a
        ({"Authorization": "Bearer " + "A" * 5000}, "malformed_key"),
        ({"Authorization": f"Bearer {other.replace(other.split('_')[1], kid)}"}, "bad_secret"),  # id swap
    ]

    run = os.urandom(6).hex()

    async def body(url: str, http: aiohttp.ClientSession, app: Any) -> list[Any]:
        for headers, _ in cases:
            for path in (
                f"/isp/v1/months?run={run}",
                f"/isp/v1/{MONTH}/stats.csv?run={run}",
                f"/isp/v1/{MONTH}/tests.csv?run={run}",
                f"/isp/v1/{MONTH}/tests.csv?access_token={own}&run={run}",
            ):
                status, got, text = await raw(url, path, headers)
                assert status == 401, (headers, path, status, text)
                assert got["www-authenticate"].startswith('Bearer realm="ispeed-isp"')
                assert TEST_ID.search(text) is None and "error" in json.loads(text)
        status, _, _ = await raw(url, f"/isp/v1/months?run={run}", {"Authorization": f"bearer {own}"})  # any case
        assert status == 200
        found = await app[INGEST].run_in_store(lambda s: read_entries(s))
        return [e for e in found if f"run={run}" in e.path]

    entries = with_portal(portal_data, body, PortalConfig(bad_keys_per_min=1e6, bad_key_burst=1e6))
    assert len(entries) == 4 * len(cases) + 1
    assert sorted(e.outcome for e in entries if e.outcome != "allowed") == sorted(o for _, o in cases for _ in range(4))
    assert {e.client_network for e in entries} == {"127.0.0.0/24"}
    assert all(e.status == 401 for e in entries if e.outcome != "allowed")
    allowed = [e for e in entries if e.outcome == "allowed"]
    assert len(allowed) == 1 and (allowed[0].key_id, allowed[0].provider) == (kid, OWN)
    by_outcome = {e.outcome: e for e in entries}
    assert by_outcome["bad_secret"].key_id == kid and by_outcome["expired"].provider == OWN
    assert by_outcome["no_key"].key_id == "" and by_outcome["revoked"].key_id == portal_data.key_ids["revoked"]
    assert any("access_token=" in e.path for e in entries)


def test_no_trick_reaches_another_providers_rows(portal_data: PortalData, capsys: pytest.CaptureFixture[str]) -> None:
    own = portal_data.keys["own"]
    paths = [
        f"/isp/v1/{OTHER}/{MONTH}/stats.csv",
        f"/isp/v1/{MONTH}/{OTHER}/tests.csv",
        f"/isp/v1/{MONTH}/stats.csv/{OTHER}",
        f"/isp/v1/{OTHER}/months",
        "/isp/v1/..%2F..%2Fapi/v1/servers",
        "/isp/v1/%2e%2e/%2e%2e/Viettel/stats.csv",
        f"/isp/v1/{MONTH}%2F..%2FViettel/stats.csv",
        f"/isp/v1/{MONTH}%252F..%252FViettel/tests.csv",
        f"/isp/v1/..%252F{MONTH}/tests.csv",
        f"/isp/v1/{MONTH}/../../v1/{MONTH}/tests.csv",
        f"/isp/v1/{MONTH}/stats.csv;provider=Viettel",
        f"/isp/v1/{MONTH}/tests.csv%00Viettel",
        f"/isp/v1/{MONTH}/TESTS.CSV",
        f"/ISP/v1/{MONTH}/tests.csv",
        f"/Isp/v1/{MONTH}/stats.csv",
        "/isp/v1/２０２５-０７/tests.csv",
        "/isp/v1/%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%95-07/tests.csv",
        "/isp/v1/2025-7/tests.csv",
        "/isp/v1/2025-07%0A/tests.csv",
        "/isp/v1/2025-13/stats.csv",
        "/isp/v1/2099-01/stats.csv",
        "/isp/v1/months/Viettel",
        "/isp/v1/months?provider=Viettel",
        f"/isp/v1/{MONTH}/stats.csv?provider=Viettel",
        f"/isp/v1/{MONTH}/tests.csv?provider=viettel",
        f"/isp/v1/{MONTH}/tests.csv?PROVIDER=Viettel",
        f"/isp/v1/{MONTH}/tests.csv?provider=VNPT&provider=Viettel",
        f"/isp/v1/{MONTH}/tests.csv?isp=Viettel",
        f"/isp/v1/{MONTH}/tests.csv?provider=Viettel%00",
        f"/isp/v1/{MONTH}/tests.csv?provider%3DViettel",
        f"/isp/v1/{MONTH}/tests.csv?provider=VNPT",  # its own name: ignored, 200 own rows
        f"/isp/v1/{MONTH}/tests.csv",
        f"/isp/v1//{MONTH}/tests.csv",
        f"//isp/v1/{MONTH}/tests.csv",
        f"/isp/v1/{MONTH}/./tests.csv",
        f"/isp/./v1/{MONTH}/stats.csv",
        "/isp/v2/months",
        "/isp/",
    ]
    header_tricks = [
        {"X-Provider": OTHER},
        {"X-ISP": "viettel"},
        {"X-Provider": "VNPT"},
        {"Forwarded": "for=1.2.3.4"},
        {"X-Forwarded-For": "10.0.0.1"},
        {"Host": "viettel.example"},
    ]
    methods = ["POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"]
    attempts: list[tuple[str, str, int]] = []
    leaks: list[tuple[str, str]] = []

    def check(label: str, status: int, text: str) -> None:
        attempts.append((label, text[:80], status))
        assert status in (200, 400, 403, 404, 405), (label, status, text[:200])
        ids = set(TEST_ID.findall(text))
        if ids & portal_data.other_ids:
            leaks.append((label, "foreign test ids"))
        if status == 200 and text.startswith("month,"):
            bad = [c for c in parse_csv(text) if c["provider"] != OWN and c["published"] != "true"]
            if bad:
                leaks.append((label, f"{len(bad)} foreign suppressed cells"))
        if status == 200 and text.startswith("test_id,"):
            if any(c["provider"] != OWN for c in parse_csv(text)):
                leaks.append((label, "foreign tests"))

    async def body(url: str, http: aiohttp.ClientSession, app: Any) -> None:
        for path in paths:
            status, _, text = await raw(url, path, bearer(own))
            check(path, status, text)
        for headers in header_tricks:
            status, _, text = await raw(url, f"/isp/v1/{MONTH}/tests.csv", {**bearer(own), **headers})
            check(str(headers), status, text)
            if "X-" in str(headers) and "VNPT" not in str(headers) and "Forwarded" not in str(headers):
                assert status == 403
        for method in methods:
            status, _, text = await raw(
                url, f"/isp/v1/{MONTH}/tests.csv", {**bearer(own), "Content-Length": "0"}, method
            )
            check(method, status, text)
            assert status in (404, 405) or (method == "OPTIONS" and status == 403)

    with_portal(portal_data, body, PortalConfig(bad_keys_per_min=1e6, bad_key_burst=1e6))
    statuses = {label: status for label, _, status in attempts}
    assert statuses[f"/isp/v1/{MONTH}/stats.csv?provider=Viettel"] == 403
    assert statuses[f"/isp/v1/{MONTH}/tests.csv?PROVIDER=Viettel"] == 403
    assert statuses[f"/isp/v1/{MONTH}/tests.csv?provider=VNPT"] == 200
    assert (
        statuses["/isp/v1/%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%95-07/tests.csv"] == 400
        and statuses["/isp/v1/2099-01/stats.csv"] == 404
    )
    assert statuses[f"/ISP/v1/{MONTH}/tests.csv"] == 404
    assert leaks == []
    with capsys.disabled():
        print(
            f"\n[isp portal] {portal_data.url.split(':')[0]}: {len(attempts)} access tricks with a valid key "
            f"of {OWN}; unauthorized successes: {len(leaks)}"
        )


def test_repeated_bad_keys_are_rate_limited_per_network(portal_data: PortalData) -> None:
    async def body(url: str, http: aiohttp.ClientSession, app: Any) -> None:
        bad = bearer(f"isp_{portal_data.key_ids['own']}_{'x' * 43}")
        statuses = [(await raw(url, "/isp/v1/months", bad))[0] for _ in range(4)]
        assert statuses == [401, 401, 401, 401]
        status, headers, text = await raw(url, "/isp/v1/months", bad)
        assert status == 429 and int(headers["retry-after"]) >= 1 and "retry" in text
        assert (await raw(url, "/isp/v1/months", {}))[0] == 429
        # the block is for bad keys: the ISP's own key, from the same network, is still served
        assert (await raw(url, "/isp/v1/months", bearer(portal_data.keys["own"])))[0] == 200
        assert (await raw(url, "/isp/v1/months", bad))[0] == 429

    with_portal(portal_data, body, PortalConfig(bad_keys_per_min=6, bad_key_burst=3))


def test_a_valid_key_is_served_from_a_network_blocked_for_bad_keys(portal_data: PortalData) -> None:
    """Others' bad keys from the ISP's /24 never lock its valid key out, and cost the store almost nothing."""
    own, kid = portal_data.keys["own"], portal_data.key_ids["own"]
    flood = [
        bearer(f"isp_{kid}_{'x' * 43}"),
        bearer(f"isp_{'0' * 12}_{'y' * 43}"),
        {},
        bearer("garbage"),
        bearer(portal_data.keys["revoked"]),
    ]

    async def body(url: str, http: aiohttp.ClientSession, app: Any) -> None:
        statuses = [(await raw(url, "/isp/v1/months", flood[i % len(flood)]))[0] for i in range(40)]
        assert statuses[:3] == [401, 401, 401] and statuses[3:].count(429) >= 33, statuses
        # the ISP's own key, from the same /24, is served while the block lasts
        for _ in range(3):
            status, _, text = await raw(url, "/isp/v1/months", bearer(own))
            assert status == 200 and json.loads(text)["provider"] == OWN
        assert [(await raw(url, "/isp/v1/months", h))[0] for h in flood] == [429] * len(flood)
        # while blocked, wrong secrets of a known key id are refused without reading the store, and
        # unknown ids cost at most one read of the (small) key table per second, however many arrive
        counters = app[METRICS].counters
        before = counters["isp_key_lookups_total"], counters["isp_key_scans_total"]
        wrong = [raw(url, "/isp/v1/months", bearer(f"isp_{kid}_{os.urandom(32).hex()[:43]}")) for _ in range(100)]
        unknown = [raw(url, "/isp/v1/months", bearer(f"isp_{os.urandom(6).hex()}_{'z' * 43}")) for _ in range(100)]
        got = await asyncio.gather(*wrong, *unknown)
        assert {status for status, _, _ in got} == {429}
        assert counters["isp_key_lookups_total"] == before[0]
        assert counters["isp_key_scans_total"] - before[1] <= 3
        # a key created after the last scan still works at once from the blocked network
        fresh = await app[INGEST].run_in_store(lambda s: create_key(s, OWN))
        assert (await raw(url, "/isp/v1/months", bearer(fresh.key)))[0] == 200

    with_portal(portal_data, body, PortalConfig(bad_keys_per_min=6, bad_key_burst=3))


def test_rate_limited_requests_write_a_bounded_number_of_audit_rows(portal_data: PortalData) -> None:
    """A flood of refused requests writes one audit row per network and minute, with its count."""
    run = os.urandom(6).hex()
    kid = portal_data.key_ids["own"]
    kinds = [{}, bearer("garbage"), bearer(f"isp_{kid}_{'x' * 43}"), bearer(f"isp_{'0' * 12}_{'y' * 43}")]
    n_requests = 300

    async def body(url: str, http: aiohttp.ClientSession, app: Any) -> list[int]:
        path = f"/isp/v1/months?run={run}&pad={'p' * 600}"  # a long path: stored cut, once
        return [(await raw(url, f"{path}&i={i}", kinds[i % len(kinds)]))[0] for i in range(n_requests)]

    statuses = with_portal(
        portal_data, body, PortalConfig(bad_keys_per_min=0.6, bad_key_burst=3, key_scan_interval_s=0.02)
    )
    limited_n = statuses.count(429)
    assert statuses.count(401) + limited_n == n_requests and limited_n >= n_requests - 10
    with open_store(portal_data.url) as store:  # the server has stopped: its rows are written
        rows = [e for e in read_entries(store) if f"run={run}" in e.path]
    limited = [e for e in rows if e.outcome == "rate_limited"]
    assert 1 <= len(limited) <= 2, len(limited)  # one per minute (two if the flood crossed one)
    assert sum(e.requests for e in limited) == limited_n
    assert all(e.status == 429 and e.client_network == "127.0.0.0/24" and len(e.path) <= 512 for e in limited)
    assert all(e.at.second == 0 for e in limited)  # the row stands for its minute
    refused = [e for e in rows if e.outcome != "rate_limited"]  # the 401s before the block: one row each
    assert len(refused) == statuses.count(401) and all(e.requests == 1 and e.status == 401 for e in refused)
    assert {"no_key", "malformed_key", "bad_secret"} <= {e.outcome for e in refused}


def test_revocation_applies_to_the_next_request(portal_data: PortalData, capsys: pytest.CaptureFixture[str]) -> None:
    async def body(url: str, http: aiohttp.ClientSession, app: Any) -> None:
        with_new = await app[INGEST].run_in_store(lambda s: create_key(s, OWN))
        key = with_new.key
        assert (await raw(url, "/isp/v1/months", bearer(key)))[0] == 200
        if portal_data.url.startswith("chdb:"):
            # the server holds the embedded store: without its secret the CLI says so in one line, exit 2;
            # with it, the CLI revokes through this server's admin API
            assert await asyncio.to_thread(main, ["isp-key", "list", "--store", portal_data.url, "--secret", ""]) == 2
            assert "in use" in capsys.readouterr().err
            assert (
                await asyncio.to_thread(
                    main,
                    [
                        "isp-key",
                        "revoke",
                        with_new.record.key_id,
                        "--store",
                        portal_data.url,
                        "--server",
                        url,
                        "--secret",
                        SECRET.decode(),
                    ],
                )
                == 0
            )
        else:  # a ClickHouse store: the operator's CLI works while servers run
            assert (
                await asyncio.to_thread(main, ["isp-key", "revoke", with_new.record.key_id, "--store", portal_data.url])
                == 0
            )
        status, headers, text = await raw(url, "/isp/v1/months", bearer(key))
        assert status == 401 and "revoked" in text and 'error="invalid_token"' in headers["www-authenticate"]

    with_portal(portal_data, body)


def test_isp_page_explains_keys(portal_data: PortalData) -> None:
    async def body(url: str, http: aiohttp.ClientSession, app: Any) -> None:
        async with http.get(url + "/isp/") as r:
            assert r.status == 200 and "Authorization: Bearer" in await r.text()
        async with http.get(url + "/isp/?lang=en") as r:
            text = await r.text()
            assert "ispeed isp-key create --provider" in text and f"{url}/isp/v1/months" in text
        async with http.get(url + "/isp/?lang=<script>") as r:
            assert "<script>" not in await r.text()

    with_portal(portal_data, body)


def test_stats_of_a_month_never_aggregated_is_404_and_tests_csv_empty(portal_data: PortalData) -> None:
    async def body(url: str, http: aiohttp.ClientSession, app: Any) -> None:
        status, _, text = await raw(url, "/isp/v1/2025-08/stats.csv", bearer(portal_data.keys["own"]))
        assert status == 404 and "no statistics" in text
        status, _, text = await raw(url, "/isp/v1/2025-08/tests.csv", bearer(portal_data.keys["own"]))
        assert status == 200 and text.strip().split(",")[0] == "test_id" and len(text.splitlines()) == 1

    with_portal(portal_data, body)
