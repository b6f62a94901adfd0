"""Responsiveness (spec/method-v2.md, Responsiveness (RPM)): the foreign probe endpoint and its
refusals, the client's RPM per direction, the server's evidence and the check of a client's
figure against it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from ispeed.client.config import TestConfig
from ispeed.client.engine import Engine
from ispeed.core.responsiveness import MIN_PROBES
from ispeed.core.store import open_store
from ispeed.server import rpm_evidence
from ispeed.server.app import running
from ispeed.server.config import ServerConfig
from ispeed.server.receipts import Counters
from ispeed.server.registry import Registry
from ispeed.server.results import quality_flags
from ispeed.server.rpm import phase_at
from ispeed.server.timeline import DownloadTimeline
from ispeed.server.tokens import issue
from tests.raw_client import counters, paced_download, paced_upload

SECRET = b"rpm-test-secret-0123456789"
CLASSES = ("Excellent", "Good", "Fair", "Poor")


def with_server(store_url: str, body: Callable[[str, aiohttp.ClientSession], Awaitable[Any]], **cfg: Any) -> Any:
    async def main() -> Any:
        config = ServerConfig(host="127.0.0.1", port=0, store_url=store_url, secret=SECRET, **cfg)
        async with running(config) as (url, _app), aiohttp.ClientSession() as http:
            return await body(url, http)

    return asyncio.run(main())


async def start(http: aiohttp.ClientSession, url: str, duration_s: float = 1.0) -> dict[str, Any]:
    async with http.post(url + "/api/v1/tests", json={"streams": 1, "duration_s": duration_s}) as r:
        assert r.status == 201, await r.text()
        ticket: dict[str, Any] = await r.json()
        return ticket


async def probe(url: str, token: str | None, source: str = "127.0.0.1") -> tuple[int, bytes, dict[str, str]]:
    """One foreign probe on a new connection from `source`: status, body, headers."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0), force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        params = {"token": token} if token is not None else {}
        async with http.get(url + "/api/v1/rpm", params=params) as r:
            return r.status, await r.read(), dict(r.headers)


def test_rpm_probes_are_answered_only_for_a_valid_token_from_the_tests_network(tmp_path: Path) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> None:
        ticket = await start(http, url)
        assert ticket["paths"]["rpm"] == "/api/v1/rpm"
        status, data, _ = await probe(url, None)
        assert status == 400 and data != b"1"  # no token: the server answers nothing but the refusal
        forged = ticket["token"][:-4] + ("AAAA" if not ticket["token"].endswith("AAAA") else "BBBB")
        status, data, _ = await probe(url, forged)
        assert status == 403 and data != b"1"
        status, data, _ = await probe(url, ticket["token"], source="127.0.9.9")  # another /24
        assert status == 403 and b"another network" in data
        status, data, headers = await probe(url, ticket["token"])
        assert (status, data) == (200, b"1") and headers["Connection"] == "close"
        summary = await counters(http, url, ticket["test_id"], ticket["token"])
        assert summary["rpm_server"]["idle"]["probes"] == 1  # only the answered probe counts

    with_server(f"chdb:{tmp_path / 'store'}", body)


def test_a_probe_on_a_connection_that_carried_an_answer_is_refused(tmp_path: Path) -> None:
    """Its round trip would be the earlier exchange's, not this probe's handshake."""

    async def body(url: str, http: aiohttp.ClientSession) -> None:
        ticket = await start(http, url)
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        host = f"{parts.hostname}:{parts.port}"
        writer.write(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))[15:])
        await reader.readexactly(length)
        writer.write(f"GET /api/v1/rpm?token={ticket['token']} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        writer.close()
        assert head.startswith(b"HTTP/1.1 400"), head
        summary = await counters(http, url, ticket["test_id"], ticket["token"])
        assert summary["rpm_server"]["idle"]["probes"] == 0

    with_server(f"chdb:{tmp_path / 'store'}", body)


def test_probes_are_bounded_per_test(tmp_path: Path) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> None:
        ticket = await start(http, url, duration_s=30)
        statuses = [(await probe(url, ticket["token"]))[0] for _ in range(rpm_evidence.MAX_PROBES_PER_TEST)]
        assert statuses == [200] * rpm_evidence.MAX_PROBES_PER_TEST
        status, data, _ = await probe(url, ticket["token"])
        assert status == 429 and data != b"1"

    with_server(f"chdb:{tmp_path / 'store'}", body)


def test_engine_reports_rpm_per_direction_and_the_server_stores_it_with_its_evidence(tmp_path: Path) -> None:
    store_url = f"chdb:{tmp_path / 'store'}"

    async def body(url: str, http: aiohttp.ClientSession) -> dict[str, Any]:
        result: dict[str, Any] = await Engine(TestConfig(server_url=url, streams=2, duration_s=3)).run()
        # after submission the test is closed: no more probes
        status, _, _ = await probe(url, None)
        assert status == 400
        return result

    result = with_server(store_url, body)
    assert result["valid"] is True and "rpm_disagrees" not in result["flags"], result
    for direction, phase in (("down", "download"), ("up", "upload")):
        figures = result["rpm_phases"][phase]
        assert figures["foreign_probes"] >= MIN_PROBES and figures["self_probes"] >= MIN_PROBES, figures
        # the draft's combination of the figures it lists
        foreign = 60000 / ((figures["tcp_ms"] + figures["http_ms"]) / 2)
        assert figures["foreign_rpm"] == pytest.approx(foreign, rel=2e-3)
        assert figures["self_rpm"] == pytest.approx(60000 / figures["self_ms"], rel=2e-3)
        assert result[f"rpm_{direction}"] == pytest.approx((figures["foreign_rpm"] + figures["self_rpm"]) / 2, rel=1e-3)
        # the server answered at least the probes the client timed, in the same phase by its clock
        assert result["rpm_server"][phase]["probes"] >= figures["foreign_probes"]
        assert result["rpm_server"][phase]["handshake_ms"] > 0
    assert result["rpm_idle"] > 0 and result["rpm_phases"]["idle"]["foreign_probes"] == 10
    assert result["rpm_label"] in CLASSES
    assert result["ip_version"] == 4 and result["server_address"] == "127.0.0.1"
    store = open_store(store_url)
    try:
        row = store.query(
            "SELECT rpm_down, rpm_up, ip_version, server_delay_p99_ms FROM {db}.measurements FINAL WHERE test_id = {t}",
            {"t": result["test_id"]},
        )
    finally:
        store.close()
    assert row == [(result["rpm_down"], result["rpm_up"], 4, result["server_delay_p99_ms"])]


def test_a_claimed_rpm_the_servers_evidence_contradicts_is_stored_flagged(tmp_path: Path) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> list[dict[str, Any]]:
        answers = []
        # a real test whose client then claims an RPM its handshakes rule out
        engine = Engine(TestConfig(server_url=url, streams=1, duration_s=3, submit=False))
        _, submission = await engine.measure()
        submission["rpm_down"] = 1e7  # 6 µs round trips under load: above any loopback handshake
        answers.append(await engine.submit(submission))
        # a client that sent no probe at all, claiming an RPM
        ticket = await start(http, url, duration_s=1)
        started = asyncio.get_running_loop().time()
        await asyncio.gather(
            paced_download(http, url, ticket["token"], 0.95, 16 << 10),
            paced_upload(http, url, ticket["token"], 0.95, 16 << 10),
        )
        await asyncio.sleep(max(0.0, started + 1.2 - asyncio.get_running_loop().time()))
        summary = await counters(http, url, ticket["test_id"], ticket["token"])
        async with http.post(
            url + "/api/v1/results",
            json={
                "token": ticket["token"],
                "download_mbps": summary["download_mbps"],
                "upload_mbps": summary["upload_mbps"],
                "rpm_up": 2000.0,
            },
        ) as r:
            assert r.status == 201, await r.text()
            answers.append(await r.json())
        return answers

    lied, unprobed = with_server(f"chdb:{tmp_path / 'store'}", body)
    for answer in (lied, unprobed):
        assert "rpm_disagrees" in answer["flags"] and answer["valid"] is True, answer  # speed figures stand
    assert lied["rpm_down"] == 1e7 and unprobed["rpm_up"] == 2000.0  # kept for audit


def test_behind_a_trusted_proxy_the_server_has_no_handshake_evidence_and_checks_nothing(tmp_path: Path) -> None:
    """The probes' connections are the proxy's: their handshakes say nothing of the client."""
    from ispeed.server.proxy import parse_trusted

    async def body(url: str, http: aiohttp.ClientSession) -> dict[str, Any]:
        result: dict[str, Any] = await Engine(TestConfig(server_url=url, streams=1, duration_s=2)).run()
        return result

    result = with_server(f"chdb:{tmp_path / 'store'}", body, trusted_proxies=parse_trusted(["127.0.0.1"]))
    assert result["rpm_down"] is not None and result["rpm_server"]["download"]["probes"] == -1
    assert "rpm_disagrees" not in result["flags"], result


def _counters(**rpm: Any) -> Counters:
    base: dict[str, Any] = {
        "test_id": "t",
        "issued_at": 0.0,
        "streams": 1,
        "duration_s": 10.0,
        "bytes_down": 1,
        "bytes_up": 1,
        "upload_mbps": 1.0,
        "tcp_min_rtt_ms": None,
        "tcp_retrans_ratio": None,
    }
    return Counters(**{**base, **rpm})


def test_the_rpm_check_rule() -> None:
    evidence = {"rpm_down_probes": 30, "rpm_down_server": 2000.0, "rpm_up_probes": 30, "rpm_up_server": 800.0}
    agree = _counters(**evidence)
    assert quality_flags({"rpm_down": 2400.0, "rpm_up": 1000.0}, agree) == []  # within 25 % above
    assert quality_flags({"rpm_down": 2600.0, "rpm_up": None}, agree) == ["rpm_disagrees"]
    assert quality_flags({"rpm_down": 10.0, "rpm_up": 1001.0}, agree) == ["rpm_disagrees"]
    assert quality_flags({"rpm_down": 10.0, "rpm_up": 10.0}, agree) == []  # lower than the network allows: the
    # client's own delays count in the draft's responsiveness
    few = _counters(**{**evidence, "rpm_up_probes": MIN_PROBES - 1, "rpm_up_server": -1.0})
    assert quality_flags({"rpm_up": 100.0}, few) == ["rpm_disagrees"]
    old_receipt = _counters()  # from before method v2: nothing to check against
    assert quality_flags({"rpm_down": 1e6, "rpm_up": 1e6}, old_receipt) == []
    delayed = _counters(server_delay_p99_ms=rpm_evidence.SERVER_DELAY_BOUND_MS + 1)
    assert quality_flags({}, delayed) == ["server_delayed"]
    assert quality_flags({}, _counters(server_delay_p99_ms=rpm_evidence.SERVER_DELAY_BOUND_MS)) == []


def test_probes_belong_to_the_phase_running_by_the_servers_clock() -> None:
    claims, _ = issue(SECRET, "s", "net", 1, 10.0, 600)
    state = Registry().add(claims)
    assert phase_at(state, 5.0) == "idle"
    state.down = DownloadTimeline(100.0, 10.0)
    assert [phase_at(state, t) for t in (99.0, 100.0, 111.9, 112.1)] == ["idle", "download", "download", "between"]
    state.up_started = 120.0
    assert [phase_at(state, t) for t in (119.0, 120.0, 131.9, 132.1)] == ["between", "upload", "upload", "after"]


def test_trimmed_delay_percentile() -> None:
    assert rpm_evidence.delay_p99([]) is None
    assert rpm_evidence.delay_p99([float(v) for v in range(1, 101)]) == 99.0
    assert rpm_evidence.delay_p99([3.0]) == 3.0


def test_the_probe_target_keeps_host_and_path() -> None:
    from ispeed.client.rpm import Target

    t = Target.of("::1", 8080, "[::1]:8080", "/prefix/api/v1/rpm", "a.b", None, "::1")
    assert (t.address, t.target, t.host_header, t.server_hostname) == (
        "::1",
        "/prefix/api/v1/rpm?token=a.b",
        "[::1]:8080",
        None,
    )


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_foreign_probe_over_tls_times_the_handshake_apart(tmp_path: Path, loop: str) -> None:
    """https: the TCP handshake, the TLS handshake (normalised to its round trips) and the request
    are timed apart, with the URL's name for the certificate and the Host header."""
    import shutil
    import ssl
    import subprocess

    from ispeed.client.rpm import Target, foreign_probe

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    requests: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n1")
        await writer.drain()
        writer.close()

    async def main() -> tuple[float, float | None, float, int, str]:
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=served)
        port = server.sockets[0].getsockname()[1]
        async with server:
            trusting = ssl.create_default_context(cafile=str(cert))
            target = Target.of("127.0.0.1", port, f"localhost:{port}", "/api/v1/rpm", "tok", trusting, "localhost")
            return await foreign_probe(target)

    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            tcp_ms, tls_ms, http_ms, status, body = runner.run(main())
    else:
        tcp_ms, tls_ms, http_ms, status, body = asyncio.run(main())
    assert (status, body) == (200, "1")
    assert tcp_ms > 0 and http_ms > 0 and tls_ms is not None and tls_ms > 0
    assert requests[0].startswith(b"GET /api/v1/rpm?token=tok HTTP/1.1\r\n")
    assert b"\r\nHost: localhost:" in requests[0]


def test_a_client_that_did_not_probe_sends_no_rpm_fields(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server before method v2 lists no RPM probe and refuses unknown submission fields: a client
    facing it (here: made to see no `paths.rpm`) submits what it did before, and its result is stored."""
    from ispeed.client import rpm as client_rpm

    monkeypatch.setattr(client_rpm, "prober", lambda *args: None)

    async def body(url: str, http: aiohttp.ClientSession) -> tuple[dict[str, Any], dict[str, Any]]:
        engine = Engine(TestConfig(server_url=url, streams=1, duration_s=1))
        result, submission = await engine.measure()
        answer = await engine.submit(submission)
        return result, {**submission, "answer": answer}

    result, submission = with_server(f"chdb:{tmp_path / 'store'}", body)
    assert result["rpm_down"] is None and result["rpm_label"] is None
    assert "rpm_down" not in submission and "rpm_up" not in submission
    assert submission["answer"]["valid"] is True
