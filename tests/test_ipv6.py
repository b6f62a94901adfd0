"""IPv6 (spec/method-v2.md, IPv6): a dual-stack `ispeed serve --host ::`, tests pinned to one
family (`ispeed test --ip 4|6|both`), and the IP version the server records for each result."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest

from ispeed.core.errors import ConfigError
from ispeed.server.sockets import dual_stack, listening_sockets
from tests.serve_process import ServeProcess


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


@pytest.fixture(scope="module")
def dual(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """A real `ispeed serve --host ::` on an embedded store."""
    store = tmp_path_factory.mktemp("dual") / "store"
    with ServeProcess(f"chdb:{store}", extra=["--host", "::", "--site-dir", "none"]) as server:
        yield server


def test_serve_on_double_colon_answers_ipv4_and_ipv6_on_one_port(dual: ServeProcess) -> None:
    port = _port(dual.url)
    for base in (f"http://127.0.0.1:{port}", f"http://[::1]:{port}"):
        with urlopen(base + "/healthz", timeout=10) as answer:
            assert answer.status == 200 and json.loads(answer.read())["status"] == "ok", base


def test_listening_sockets_double_colon_is_one_dual_stack_socket_and_a_port_in_use_is_one_line() -> None:
    socks = listening_sockets("::", 0)
    try:
        assert len(socks) == 1 and dual_stack(socks[0])
        port = socks[0].getsockname()[1]
        for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with socket.socket(family, socket.SOCK_STREAM) as c:
                c.settimeout(5)
                c.connect((address, port))  # accepted by the kernel's backlog
        with pytest.raises(ConfigError, match=rf"--host/--port.*:{port}.*cannot listen there"):
            listening_sockets("127.0.0.1", port)
        # the UDP socket of the same number (method v2's UDP probes) takes both families too
        udp = listening_sockets("::", port, socket.SOCK_DGRAM)
        try:
            assert len(udp) == 1 and dual_stack(udp[0]) and udp[0].getsockname()[1] == port
        finally:
            for s in udp:
                s.close()
    finally:
        for s in socks:
            s.close()
    v4 = listening_sockets("127.0.0.1", 0)
    try:
        assert [s.family for s in v4] == [socket.AF_INET]
    finally:
        for s in v4:
            s.close()


@pytest.mark.parametrize(
    "peer,trusted,client",
    [
        ("::ffff:127.0.0.1", (), "127.0.0.1"),  # an IPv4 client of a dual-stack socket
        ("::ffff:198.51.100.9", ("127.0.0.1",), "198.51.100.9"),  # untrusted peer, mapped
        ("::1", (), "::1"),
        ("2001:db8::7", (), "2001:db8::7"),
        ("198.51.100.9", (), "198.51.100.9"),
    ],
)
def test_an_ipv4_mapped_peer_is_the_ipv4_client_it_stands_for(peer: str, trusted: tuple[str, ...], client: str) -> None:
    """Its hash, network, place and IP version are those of the IPv4 address: the same client is
    the same whether it reached an IPv4 socket or the dual-stack one."""
    from ispeed.server.proxy import forwarded_client, parse_trusted

    assert forwarded_client(peer, [], parse_trusted(trusted)) == client


def test_the_ip_version_column_keeps_its_number() -> None:
    """UInt8 holds flags and ip_version alike: 4 and 6 were written as 1 (true)."""
    import datetime as dt

    from ispeed.core.schema import Measurement, to_columns

    started = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = [Measurement(f"t{v}", started, started.date(), "fixed", ip_version=v) for v in (0, 4, 6)]
    columns = to_columns(rows)
    assert columns["ip_version"] == [0, 4, 6]
    assert columns["valid"] == [1, 1, 1] and columns["simulated"] == [0, 0, 0]


# -- `ispeed test --ip` against a dual-stack server ------------------------------------------
NAME = "dual.ispeed.test"  # resolves to ::1 and 127.0.0.1 in the tests' own /etc/hosts


def _hosts_namespace(tmp: Path) -> list[str] | None:
    """A command prefix that runs its command with an /etc/hosts where NAME has both addresses
    (a private mount namespace: nothing outside it changes); None where that is not permitted."""
    hosts = tmp / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n::1 {NAME}\n127.0.0.1 {NAME}\n")
    prefix = ["unshare", "--mount", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts)]
    try:
        probe = subprocess.run([*prefix, "getent", "ahosts", NAME], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return prefix if probe.returncode == 0 and "::1" in probe.stdout and "127.0.0.1" in probe.stdout else None


def _ispeed_test(url: str, tmp: Path, *extra: str, prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "ispeed.cli.main", "test", "--server", url, "--json", "--streams", "1"]
    argv += ["--duration", "1", "--state-dir", str(tmp / "state"), *extra]
    return subprocess.run([*(prefix or []), *argv], capture_output=True, text=True, timeout=180)


def _stored(store_url: str) -> dict[str, tuple[int, str, str]]:
    from ispeed.core.store import open_store

    store = open_store(store_url)
    try:
        rows = store.query("SELECT test_id, ip_version, ip_network, ip_hash FROM {db}.measurements FINAL")
    finally:
        store.close()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_ip_4_and_6_to_a_dual_stack_server_run_and_are_stored_over_their_family(tmp_path: Path) -> None:
    from ispeed.server.privacy import keyed_hash
    from tests.serve_process import SECRET

    store_url = f"chdb:{tmp_path / 'store'}"
    with ServeProcess(store_url, extra=["--host", "::", "--site-dir", "none"]) as server:
        port = _port(server.url)
        runs = {
            4: _ispeed_test(f"http://127.0.0.1:{port}", tmp_path, "--ip", "4"),
            6: _ispeed_test(f"http://[::1]:{port}", tmp_path, "--ip", "6"),
        }
        refused = _ispeed_test(f"http://127.0.0.1:{port}", tmp_path, "--ip", "6")
    results = {}
    for version, out in runs.items():
        assert out.returncode == 0, out.stderr
        results[version] = json.loads(out.stdout)
        assert results[version]["ip_version"] == version and results[version]["valid"] is True
    assert results[4]["server_address"] == "127.0.0.1" and results[6]["server_address"] == "::1"
    # a family the server's address does not have: one line naming the flag, exit 2
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "--ip has value '6'" in refused.stderr and "IPv4 address" in refused.stderr
    stored = _stored(store_url)
    assert stored[results[4]["test_id"]] == (4, "127.0.0.0/24", keyed_hash(SECRET.encode(), "ip", "127.0.0.1"))
    assert stored[results[6]["test_id"]][:2] == (6, "::/48")


def test_ip_choices_with_a_name_of_both_families(tmp_path: Path) -> None:
    """The name resolves to ::1 then 127.0.0.1 (the system prefers IPv6): no --ip runs over IPv6,
    --ip 4 over IPv4, --ip both over IPv6 and then a short test over IPv4, both stored."""
    prefix = _hosts_namespace(tmp_path)
    if prefix is None:
        pytest.skip("a private mount namespace (unshare --mount, as root) is needed for a test /etc/hosts")
    store_url = f"chdb:{tmp_path / 'store'}"
    with ServeProcess(store_url, extra=["--host", "::", "--site-dir", "none"]) as server:
        url = f"http://{NAME}:{_port(server.url)}"
        outs = {
            "default": _ispeed_test(url, tmp_path, prefix=prefix),
            "4": _ispeed_test(url, tmp_path, "--ip", "4", prefix=prefix),
            "both": _ispeed_test(url, tmp_path, "--ip", "both", "--duration", "2", prefix=prefix),
        }
    results: dict[str, dict[str, Any]] = {}
    for key, out in outs.items():
        assert out.returncode == 0, (key, out.stderr)
        results[key] = json.loads(out.stdout)
    assert (results["default"]["ip_version"], results["default"]["server_address"]) == (6, "::1")
    assert (results["4"]["ip_version"], results["4"]["server_address"]) == (4, "127.0.0.1")
    both = results["both"]
    other = both["other_family"]
    assert (both["ip_version"], both["duration_s"], both["submitted"]) == (6, 2.0, True)
    assert (other["ip_version"], other["server_address"], other["duration_s"], other["submitted"]) == (
        4,
        "127.0.0.1",
        2.0,
        True,
    )
    assert other["test_id"] != both["test_id"] and "other_family" not in other
    stored = _stored(store_url)
    expected = {results["default"]["test_id"]: 6, results["4"]["test_id"]: 4, both["test_id"]: 6, other["test_id"]: 4}
    assert {test_id: stored[test_id][0] for test_id in expected} == expected


def test_a_tests_requests_cannot_mix_families(tmp_path: Path) -> None:
    """The token's network is an IPv6 /48 (or an IPv4 /24): the other family's streams, probes
    and WebSocket are refused, so one test never mixes families."""
    import asyncio

    import aiohttp

    from ispeed.server.app import running
    from ispeed.server.config import ServerConfig

    async def main() -> None:
        config = ServerConfig(host="::", port=0, store_url=f"chdb:{tmp_path / 'store'}", secret=b"s" * 20)
        connector = aiohttp.TCPConnector(force_close=True)  # a probe needs a new connection
        async with running(config) as (url, _app), aiohttp.ClientSession(connector=connector) as http:
            port = _port(url)
            for took, other in (("[::1]", "127.0.0.1"), ("127.0.0.1", "[::1]")):
                async with http.post(f"http://{took}:{port}/api/v1/tests", json={"duration_s": 2}) as r:
                    assert r.status == 201
                    token = (await r.json())["token"]
                base = f"http://{other}:{port}/api/v1"
                for path, params in (
                    ("/download", {"token": token, "bytes": "1000"}),
                    ("/rpm", {"token": token}),
                    ("/latency", {"token": token}),
                ):
                    async with http.get(base + path, params=params) as r:
                        assert r.status == 403, (took, path, r.status)
                        assert "another network" in (await r.json())["error"]
                async with http.post(base + "/upload", params={"token": token}, data=b"x" * 1000) as r:
                    assert r.status == 403, (took, "upload")
                # the family that took the token is served
                async with http.get(f"http://{took}:{port}/api/v1/rpm", params={"token": token}) as r:
                    assert r.status == 200 and await r.read() == b"1"

    asyncio.run(main())


def test_the_test_page_runs_against_a_dual_stack_server_over_both_families(browser: Any, tmp_path: Path) -> None:
    store_url = f"chdb:{tmp_path / 'store'}"
    results = {}
    with ServeProcess(store_url, extra=["--host", "::", "--site-dir", "none"]) as server:
        port = _port(server.url)
        for version, host in ((4, "127.0.0.1"), (6, "[::1]")):
            context = browser.new_context()
            page = context.new_page()
            page.goto(f"http://{host}:{port}/?autostart=1&duration=1&streams=1")
            page.wait_for_function("document.getElementById('result').textContent.length > 0", timeout=60_000)
            results[version] = json.loads(page.text_content("#result") or "{}")
            context.close()
    for version, result in results.items():
        assert "error" not in result and result["valid"] is True, (version, result)
    stored = _stored(store_url)
    assert {stored[r["test_id"]][0] for r in results.values()} == {4, 6}
    assert stored[results[4]["test_id"]][:2] == (4, "127.0.0.0/24")


@pytest.mark.parametrize(
    "argv,hint",
    [
        (["test", "--server", "http://127.0.0.1:9", "--ip", "5"], "use 4, 6 or both"),
        (["agent", "--server", "http://127.0.0.1:9", "--every", "1h", "--ip", "both"], "`both` is for `ispeed test`"),
    ],
)
def test_a_bad_ip_choice_is_one_line_before_any_traffic(argv: list[str], hint: str, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ispeed.cli.main", *argv, "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "--ip has value" in out.stderr, out.stderr
    assert hint in out.stderr
