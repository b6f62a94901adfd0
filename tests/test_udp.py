"""UDP loss and delay (method v2) against a real `ispeed serve`: who gets an answer, how much, what is stored.

Probes are sent by hand (plain sockets, from chosen loopback addresses) so each attack is exactly
what a stranger or a dishonest client can do; whole tests run the real client. Stored rows are
read back from both store backends.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ispeed.client import udp
from ispeed.client.config import TestConfig
from ispeed.client.engine import Engine
from ispeed.core import udp_probe
from ispeed.core.store import open_store
from ispeed.core.udp_probe import ANSWER_BURST, ANSWER_RATE_PER_S
from ispeed.server.app import running
from ispeed.server.config import ServerConfig
from ispeed.server.keys import UDP
from tests.raw_client import counters, paced_download, paced_upload
from tests.serve_process import ServeProcess

SECRET = b"udp-test-secret-0123456789"
QUIET_S = 0.3  # an answer to a loopback probe comes within microseconds; this long without one is none


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("udp")
    with ServeProcess(
        f"chdb:{root / 'store'}", ["--site-dir", "none", "--spool-dir", "none", "--rate-per-network", "1000"]
    ) as proc:
        yield proc


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def session(source: str = "127.0.0.1") -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)))


async def start(http: aiohttp.ClientSession, url: str, duration_s: float = 1.0) -> dict[str, Any]:
    async with http.post(url + "/api/v1/tests", json={"streams": 1, "duration_s": duration_s}) as r:
        assert r.status == 201, await r.text()
        ticket: dict[str, Any] = await r.json()
        return ticket


def ticket_from(url: str, source: str = "127.0.0.1") -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with session(source) as http:
            return await start(http, url)

    ticket: dict[str, Any] = run(go())
    return ticket


class Prober:
    """A plain UDP socket from `source` toward the server's probe port, with one test's key."""

    def __init__(self, url: str, ticket: dict[str, Any], source: str = "127.0.0.1") -> None:
        self.target = (url.split("//")[1].split(":")[0], ticket["udp"]["port"])
        self.key = udp_probe.decode_key(ticket["udp"]["key"])
        self.test_id = udp_probe.id_bytes(ticket["test_id"])
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.sent_bytes = 0
        self.received_bytes = 0

    def probe(self, seq: int, phase: int = 0, size: int = 100) -> bytes:
        return udp_probe.pack(self.key, self.test_id, phase, seq, time.monotonic_ns(), size)

    def send(self, data: bytes) -> None:
        self.sent_bytes += self.sock.sendto(data, self.target)

    def ask(self, data: bytes) -> bytes | None:
        """Send one datagram; the answer, or None when none comes within QUIET_S."""
        self.send(data)
        self.sock.settimeout(QUIET_S)
        try:
            answer = self.sock.recv(4096)
        except TimeoutError:
            return None
        self.received_bytes += len(answer)
        return answer

    async def ask_async(self, data: bytes) -> bytes | None:
        """`ask` off the event loop (for a server running in this process)."""
        return await asyncio.to_thread(self.ask, data)

    def take(self) -> list[bytes]:
        """What has arrived by now (read while flooding: the socket's buffer holds only ~100 answers)."""
        out = []
        while True:
            try:
                data = self.sock.recv(4096, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return out
            self.received_bytes += len(data)
            out.append(data)

    def collect(self, quiet_s: float) -> list[bytes]:
        """Every datagram that arrives until none has for `quiet_s`."""
        out = []
        self.sock.settimeout(quiet_s)
        try:
            while True:
                data = self.sock.recv(4096)
                self.received_bytes += len(data)
                out.append(data)
        except TimeoutError:
            return out

    def close(self) -> None:
        self.sock.close()


def metric(url: str, name: str) -> float:
    async def go() -> str:
        async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as r:
            return await r.text()

    for line in run(go()).splitlines():
        if line.startswith(f"ispeed_{name} "):
            return float(line.split()[1])
    return 0.0


def test_a_tagged_probe_gets_an_echo_of_its_own_size_and_the_ticket_names_the_port(server: ServeProcess) -> None:
    ticket = ticket_from(server.url)
    assert ticket["udp"]["port"] == int(server.url.rsplit(":", 1)[1])  # the TCP port's number by default
    p = Prober(server.url, ticket)
    try:
        for seq, size in enumerate((udp_probe.MIN_PROBE_BYTES, 100, udp_probe.MAX_PROBE_BYTES)):
            answer = p.ask(p.probe(seq, size=size))
            assert answer is not None and len(answer) == size, size
            echo = udp_probe.parse(answer)
            assert echo is not None and echo.is_echo and echo.seq == echo.arrival == seq
            assert udp_probe.tag_ok(p.key, answer)
    finally:
        p.close()


def test_a_udp_port_in_use_or_malformed_is_one_line_at_startup(tmp_path: Path) -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    try:
        port = taken.getsockname()[1]
        proc = ServeProcess(
            f"chdb:{tmp_path / 'store'}", ["--udp-port", str(port), "--site-dir", "none", "--spool-dir", "none"]
        )
        with pytest.raises(RuntimeError, match=rf"--udp-port has value {port}: cannot listen on UDP there"):
            proc.start()
    finally:
        taken.close()
    out = subprocess.run(
        [sys.executable, "-m", "ispeed.cli.main", "serve", "--udp-port", "udp", "--secret", "x" * 20],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        out.returncode == 2 and "--udp-port has value 'udp': use a UDP port between 0 and 65535, or off" in out.stderr
    )


def test_untagged_forged_replayed_and_foreign_probes_get_no_answer(server: ServeProcess) -> None:
    ticket, other = ticket_from(server.url), ticket_from(server.url)
    p = Prober(server.url, ticket)
    before = {
        why: metric(server.url, f"udp_refused_{why}_total")
        for why in ("malformed", "unknown_test", "tag", "duplicate", "sequence")
    }
    try:
        good = p.probe(0)
        untagged = good[: udp_probe.TAG_OFFSET] + bytes(udp_probe.TAG_BYTES) + good[udp_probe.HEADER_BYTES :]
        other_key = udp_probe.pack(udp_probe.decode_key(other["udp"]["key"]), p.test_id, 0, 1, 0)
        moved = bytearray(p.probe(2))
        moved[21] ^= 1  # the sequence number changed after tagging
        unknown = udp_probe.pack(p.key, uuid.uuid4().bytes, 0, 3, 0)
        cases = {
            "untagged": untagged,
            "tagged with another test's key": other_key,
            "changed after tagging": bytes(moved),
            "of an unknown test": unknown,
            "oversize": p.probe(4, size=udp_probe.MAX_PROBE_BYTES) + b"\0",
            "undersize": good[: udp_probe.MIN_PROBE_BYTES - 1],
            "garbage": b"GET / HTTP/1.0\r\n\r\n" * 4,
            "far ahead of the phase's pace": p.probe(5000),
        }
        for what, data in cases.items():
            assert p.ask(data) is None, what
        answer = p.ask(good)
        assert answer is not None
        assert p.ask(good) is None, "a replayed probe"
        assert p.ask(answer) is None, "the server's own echo sent back"
    finally:
        p.close()
    after = {why: metric(server.url, f"udp_refused_{why}_total") - n for why, n in before.items()}
    assert after == {"malformed": 4, "unknown_test": 1, "tag": 3, "duplicate": 1, "sequence": 1}


def test_the_endpoint_never_sends_more_bytes_than_it_receives(server: ServeProcess) -> None:
    """A flood of the largest valid probes in all three phases (840 a second, within each phase's
    sequence pace but over the test's answer rate), each followed by a replay or garbage."""
    ticket = ticket_from(server.url)
    p = Prober(server.url, ticket)
    before_in, before_out = metric(server.url, "udp_bytes_in_total"), metric(server.url, "udp_bytes_out_total")
    before_rate = metric(server.url, "udp_refused_rate_total")
    started = time.monotonic()
    answers: list[bytes] = []
    try:
        for seq in range(500):  # ~1.8 s at 280 sequence numbers a second
            for phase in (0, 1, 2):
                data = p.probe(seq, phase, size=udp_probe.MAX_PROBE_BYTES)
                p.send(data)
                p.send(data if seq % 2 else bytes(udp_probe.MAX_PROBE_BYTES))
            answers += p.take()
            time.sleep(max(0.0, started + (seq + 1) / 280 - time.monotonic()))
        elapsed = time.monotonic() - started
        answers += p.collect(QUIET_S)
    finally:
        p.close()
    assert 0 < p.received_bytes <= p.sent_bytes / 2  # at most one answer per valid probe, of its size
    assert ANSWER_RATE_PER_S * elapsed * 0.8 < len(answers) <= ANSWER_BURST + ANSWER_RATE_PER_S * elapsed + 1
    assert all(len(a) == udp_probe.MAX_PROBE_BYTES for a in answers)
    bytes_in = metric(server.url, "udp_bytes_in_total") - before_in
    bytes_out = metric(server.url, "udp_bytes_out_total") - before_out
    assert bytes_out == p.received_bytes and bytes_out <= bytes_in / 2 and bytes_in <= p.sent_bytes
    assert metric(server.url, "udp_refused_rate_total") - before_rate > 500


def test_probes_from_another_network_get_no_answer(server: ServeProcess) -> None:
    ticket = ticket_from(server.url, "127.0.0.1")
    stranger, neighbour = Prober(server.url, ticket, "127.0.1.5"), Prober(server.url, ticket, "127.0.0.9")
    try:
        assert stranger.ask(stranger.probe(0)) is None  # a spoofed source elsewhere: no reflection
        assert neighbour.ask(neighbour.probe(1)) is not None  # the /24 that took the token
    finally:
        stranger.close()
        neighbour.close()


def test_probes_of_a_submitted_test_get_no_answer(server: ServeProcess) -> None:
    async def honest_test() -> dict[str, Any]:
        async with session() as http:
            ticket = await start(http, server.url)
            begun = asyncio.get_running_loop().time()
            await asyncio.gather(
                paced_download(http, server.url, ticket["token"], 0.95, 16 << 10),
                paced_upload(http, server.url, ticket["token"], 0.95, 16 << 10),
            )
            await asyncio.sleep(max(0.0, begun + 1.2 - asyncio.get_running_loop().time()))
            seen = await counters(http, server.url, ticket["test_id"], ticket["token"])
            body = {
                "token": ticket["token"],
                "download_mbps": seen["download_mbps"],
                "upload_mbps": seen["upload_mbps"],
            }
            async with http.post(server.url + "/api/v1/results", json=body) as r:
                assert r.status == 201, await r.text()
            return ticket

    ticket = run(honest_test())
    p = Prober(server.url, ticket)
    try:
        assert p.ask(p.probe(0)) is None
    finally:
        p.close()


def test_round_trips_end_when_the_echo_arrives_not_when_a_busy_client_reads_it(server: ServeProcess) -> None:
    """The client's event loop is held for 200 ms while the echoes come in: their round trips are
    still the path's (kernel receive times), not 200 ms."""

    async def go() -> tuple[bool, list[float]]:
        async with session() as http:
            ticket = await start(http, server.url)
        prober = await udp.open_prober(server.url, ticket["udp"], ticket["test_id"])
        assert prober is not None
        try:
            for _ in range(20):
                prober._send(0)
            time.sleep(0.2)  # a busy client: nothing reads the socket meanwhile
            await asyncio.sleep(0.05)
            return getattr(prober, "kernel_stamps", False), list(prober.phases[0].rtt_by_seq.values())
        finally:
            prober.close()

    stamped, rtts = run(go())
    # every echo is read after the 200 ms: a client that timed them when it read them would put all
    # 20 at >= 200 ms. A few may be long for the server's own reasons (a fresh server answered its
    # first one to three echoes ~200 ms late in 2 of 9 runs, 1 of 6 fresh-clone CI runs), so the
    # test asks for 16 of 20 at the path's round trip.
    assert len(rtts) == 20 and sorted(rtts)[15] < 100, rtts
    assert stamped == (sys.platform == "linux")


def test_ispeed_test_reports_udp_loss_and_delay(server: ServeProcess, tmp_path: Path) -> None:
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
            "1",
            "--duration",
            "1",
            "--state-dir",
            str(tmp_path / "state"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert (r["udp"], r["udp_status"], r["udp_probes"], r["method_version"]) == ("ok", "ok", 300, "2"), r
    assert (r["loss_down_pct"], r["loss_up_pct"]) == (0.0, 0.0)
    assert 0 < r["udp_rtt_ms"] <= r["udp_rtt_p90_ms"] < 50
    assert set(r["phases"]) == {"idle", "download", "upload"}
    for name, phase in r["phases"].items():
        assert phase["probes"] == phase["probes_client"] == phase["echoes"] > 0, name
        assert (phase["loss_up_pct"], phase["loss_down_pct"]) == (0.0, 0.0), name
    # 50 probes a second under load, over the 1 s phase
    assert 40 <= r["phases"]["download"]["probes"] <= 70


# -- stored rows, both backends -------------------------------------------------------------------


def _stored(store_url: str, test_id: str) -> dict[str, Any]:
    names = (
        "udp_status, udp_probes, loss_down_pct, loss_up_pct, udp_rtt_ms, udp_rtt_p90_ms, "
        "quality_phases, method_version, flags"
    )
    with open_store(store_url) as store:
        rows = store.query(f"SELECT {names} FROM {{db}}.measurements FINAL WHERE test_id = {{t}}", {"t": test_id})
    assert len(rows) == 1, rows
    return dict(zip(names.split(", "), rows[0], strict=True))


def _config(store_url: str, **extra: Any) -> ServerConfig:
    return ServerConfig(host="127.0.0.1", port=0, store_url=store_url, secret=SECRET, **extra)


def test_a_whole_test_is_stored_with_its_udp_figures(store_url: str) -> None:
    async def main() -> dict[str, Any]:
        async with running(_config(store_url)) as (url, _app):
            result: dict[str, Any] = await Engine(TestConfig(server_url=url, streams=1, duration_s=1.0)).run()
            return result

    result = run(main())
    row = _stored(store_url, result["test_id"])
    assert (row["udp_status"], row["udp_probes"], row["method_version"], row["flags"]) == ("ok", 300, "2", "")
    assert (row["loss_down_pct"], row["loss_up_pct"]) == (0.0, 0.0)
    assert row["udp_rtt_ms"] == result["udp_rtt_ms"] and row["udp_rtt_p90_ms"] == result["udp_rtt_p90_ms"]
    assert json.loads(row["quality_phases"]) == result["phases"]  # the client printed what the server stored


async def _honest_transfers(http: aiohttp.ClientSession, url: str, ticket: dict[str, Any]) -> dict[str, Any]:
    begun = asyncio.get_running_loop().time()
    await asyncio.gather(
        paced_download(http, url, ticket["token"], 0.95, 16 << 10),
        paced_upload(http, url, ticket["token"], 0.95, 16 << 10),
    )
    await asyncio.sleep(max(0.0, begun + 1.2 - asyncio.get_running_loop().time()))
    return await counters(http, url, ticket["test_id"], ticket["token"])


def test_claims_of_a_clean_link_are_stored_with_the_servers_upstream_count(store_url: str) -> None:
    """The client sends every other probe (the server sees 50 % upstream loss), then claims 1000
    probes, every echo received, and no upstream loss: the server's count is stored."""

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        async with running(_config(store_url)) as (url, _app), session() as http:
            ticket = await start(http, url)
            p = Prober(url, ticket)
            try:
                echoes = 0
                for seq in range(0, 200, 2):  # 100 a second: sequence numbers at 200/s, a pace the server allows
                    echoes += await p.ask_async(p.probe(seq)) is not None
                    await asyncio.sleep(0.01)
            finally:
                p.close()
            seen = await _honest_transfers(http, url, ticket)
            claim = {"idle": {"probes": 1000, "echoes": echoes, "rtt_ms": 0.1, "rtt_p90_ms": 0.2, "jitter_ms": 0.0}}
            body = {
                "token": ticket["token"],
                "download_mbps": seen["download_mbps"],
                "upload_mbps": seen["upload_mbps"],
                "udp_status": "ok",
                "quality_phases": json.dumps(claim),
            }
            async with http.post(url + "/api/v1/results", json=body) as r:
                assert r.status == 201, await r.text()
                return seen, await r.json()

    seen, answer = run(main())
    assert seen["udp"]["idle"] == {
        "probes": 199,
        "received": 100,
        "echoed": 100,
        "duplicates": 0,
        "reordered": 0,
        "refused": 0,
    }
    row = _stored(store_url, answer["test_id"])
    assert (row["udp_probes"], row["loss_up_pct"], row["loss_down_pct"]) == (199, 49.749, 0.0)
    assert row["flags"] == "udp_disagrees"  # 1000 probes claimed of 199 the server can account for
    assert json.loads(row["quality_phases"])["idle"]["probes_client"] == 1000


def test_impossible_echo_counts_leave_the_downstream_figure_out(store_url: str) -> None:
    async def main() -> dict[str, Any]:
        async with running(_config(store_url)) as (url, _app), session() as http:
            ticket = await start(http, url)
            p = Prober(url, ticket)
            try:
                for seq in range(20):
                    assert await p.ask_async(p.probe(seq)) is not None
            finally:
                p.close()
            seen = await _honest_transfers(http, url, ticket)
            body = {
                "token": ticket["token"],
                "download_mbps": seen["download_mbps"],
                "upload_mbps": seen["upload_mbps"],
                "udp_status": "ok",
                "quality_phases": json.dumps({"idle": {"probes": 20, "echoes": 25}}),
            }
            async with http.post(url + "/api/v1/results", json=body) as r:
                assert r.status == 201, await r.text()
                answer: dict[str, Any] = await r.json()
                return answer

    answer = run(main())
    row = _stored(store_url, answer["test_id"])
    assert (row["udp_status"], row["loss_up_pct"], row["loss_down_pct"]) == ("ok", 0.0, None)
    assert row["flags"] == "udp_disagrees"


def test_blocked_udp_still_completes_the_test(store_url: str) -> None:
    """The offered port stops answering: first closed (an ICMP unreachable comes back), then a
    black hole (nothing comes back); either way the result says blocked and is stored."""

    async def main() -> list[tuple[dict[str, Any], float]]:
        out = []
        async with running(_config(store_url)) as (url, app):
            for transport in app[UDP].transports:
                transport.close()
            await asyncio.sleep(0.05)
            begun = time.monotonic()
            out.append((await Engine(TestConfig(server_url=url, streams=1, duration_s=1.0)).run(), begun))
            hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            hole.bind(("127.0.0.1", app[UDP].port or 0))  # takes everything, answers nothing
            try:
                begun = time.monotonic()
                out.append((await Engine(TestConfig(server_url=url, streams=1, duration_s=1.0)).run(), begun))
            finally:
                hole.close()
        return out

    for result, _ in run(main()):
        assert result["submitted"] and result["valid"] and result["download_mbps"] > 0, result
        assert (result["udp"], result["udp_status"], result["loss_down_pct"], result["phases"]) == (
            "blocked",
            "blocked",
            None,
            None,
        )
        row = _stored(store_url, result["test_id"])
        assert (row["udp_status"], row["loss_up_pct"], row["quality_phases"], row["method_version"]) == (
            "blocked",
            None,
            "",
            "2",
        )


def test_a_server_without_udp_offers_none_and_results_stay_method_v1(store_url: str) -> None:
    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        async with running(_config(store_url, udp=False)) as (url, _app), session() as http:
            ticket = await start(http, url)
            result: dict[str, Any] = await Engine(TestConfig(server_url=url, streams=1, duration_s=1.0)).run()
            return ticket, result

    ticket, result = run(main())
    assert "udp" not in ticket
    assert (result["udp"], result["udp_probes"], result["method_version"]) == (None, None, "1")
    row = _stored(store_url, result["test_id"])
    assert (row["udp_status"], row["udp_probes"], row["loss_up_pct"], row["method_version"]) == ("", 0, None, "1")


def test_malformed_quality_phases_are_refused_with_the_part_named(server: ServeProcess) -> None:
    async def go() -> tuple[int, dict[str, Any]]:
        async with session() as http:
            ticket = await start(http, server.url)
            body = {
                "token": ticket["token"],
                "download_mbps": 1,
                "upload_mbps": 1,
                "udp_status": "ok",
                "quality_phases": json.dumps({"idle": {"echoes": "all"}}),
            }
            async with http.post(server.url + "/api/v1/results", json=body) as r:
                return r.status, await r.json()

    status, answer = run(go())
    assert status == 400 and answer["field"] == "quality_phases.idle.echoes", answer
