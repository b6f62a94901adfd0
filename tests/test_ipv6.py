"""IPv6 (spec/method-v2.md, IPv6): a dual-stack `ispeed serve --host ::`, tests pinned to one
family (`ispeed test --ip 4|6|both`), and the IP version the server records for each result."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
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
