"""Hostile requests answer 4xx, and no log line of a real `ispeed -vv serve` holds a raw client IP."""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path

import pytest

from ispeed.core.redact import RedactAddresses, redact
from ispeed.core.store import open_store
from ispeed.server import tokens
from tests.serve_process import SECRET, ServeProcess

CLIENT_IP = "127.0.0.2"  # distinctive: the server itself is on 127.0.0.1


def _exchange(url: str, raw: bytes, close_early: bool = False, timeout_s: float = 15.0) -> tuple[int, bytes, bytes]:
    """Send `raw` from CLIENT_IP; (status, content type, body) of the answer, status 0 if none."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout_s, source_address=(CLIENT_IP, 0)) as sock:
        sock.sendall(raw)
        if close_early:
            return 0, b"", b""
        data = b""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head:
        return 0, b"", b""
    ctype = next(
        (
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")[1:]
            if line.lower().startswith(b"content-type:")
        ),
        b"",
    )
    return int(head.split(b" ", 2)[1]), ctype, body


def _post(path: str, body: object) -> bytes:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + data


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()


def test_garbage_answers_4xx_and_no_log_line_holds_the_client_ip(tmp_path: Path) -> None:
    store_url = f"chdb:{tmp_path / 'store'}"
    server = ServeProcess(
        store_url, ["--spool-dir", str(tmp_path / "spool"), "--site-dir", "none"], global_args=["-vv"]
    ).start()
    try:
        # a token this server really signed, for a test it never saw: the receipt path is reached
        _, unknown = tokens.issue(SECRET.encode(), "local-1", "n", 1, 1.0, ttl_s=600)
        body, sig = unknown.split(".")
        app_level = [
            _post("/api/v1/results", {"token": f"{body}.{'é' * len(sig)}", "download_mbps": 1, "upload_mbps": 1}),
            _post("/api/v1/results", {"token": "ＡＢＣ.€", "download_mbps": 1, "upload_mbps": 1}),
            _post(
                "/api/v1/results",
                {"token": unknown, "download_mbps": 1, "upload_mbps": 1, "receipt": f"{body}.{'ü' * 43}"},
            ),
            _post(
                "/api/v1/results", {"token": unknown, "download_mbps": 1, "upload_mbps": 1, "client_version": "\ud800"}
            ),
            _post("/api/v1/results", b'{"token": "a.b", "download_mbps": 1, "upload_mbps": 1, "x": "\\udfff"}'),
            _get("/api/v1/download?token=%C3%A9.%C3%A9&bytes=10"),
            _get("/api/v1/tests/abc?token=abc.%E2%82%AC"),
            _get("/api/v1/latency?token=%F0%9F%98%80.x"),
            _post("/api/v1/tests", b'{"streams": "\\ud800"}'),
        ]
        for raw in app_level:
            status, ctype, answer = _exchange(server.url, raw)
            assert 400 <= status < 500 and ctype.startswith(b"application/json"), (raw[:80], status, answer[:200])
            assert json.loads(answer)["error"]
        protocol_level = [
            b"GARBAGE\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /api/v1/results HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32),  # a TLS ClientHello on the HTTP port
            b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: \x7f\r\n\r\n",
        ]
        for raw in protocol_level:
            status, _, answer = _exchange(server.url, raw)
            assert status == 400 or status == 0, (raw[:40], status, answer[:200])
        # a lying Content-Length, then the client hangs up mid-body
        _exchange(server.url, _post("/api/v1/results", b'{"token": "a.b"')[:-3] + b"    ", close_early=True)
        time.sleep(0.5)
        status, _, answer = _exchange(server.url, _get("/healthz"))
        assert status == 200 and json.loads(answer)["status"] == "ok"  # still serving
    finally:
        assert server.stop() == 0
    log = "".join(server.stderr_lines)
    assert "Error handling request" in log and "127.0.0.0/24" in log, log[-3000:]  # the errors were logged...
    assert CLIENT_IP not in log, [line for line in log.splitlines() if CLIENT_IP in line][:5]  # ...never the IP
    assert " 500 " not in log and "Internal Server Error" not in log
    with open_store(store_url) as store:
        assert store.query("SELECT count() FROM {db}.measurements") == [(0,)]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Error handling request from 203.0.113.77", "Error handling request from 203.0.113.0/24"),
        ("peer ('198.51.100.9', 51234) went away.", "peer ('198.51.100.0/24', 51234) went away."),
        ("from 2001:db8:abcd:12::7 and [2001:db8::1]:443", "from 2001:db8:abcd::/48 and [2001:db8::/48]:443"),
        ("mapped ::ffff:192.0.2.44 here", "mapped 192.0.2.0/24 here"),
        ("at 12:34:56, version 1.2.3, listening on [::]:8080", "at 12:34:56, version 1.2.3, listening on [::]:8080"),
    ],
)
def test_redact_keeps_only_the_network(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_the_filter_redacts_arguments_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("ispeed.test.redact")
    log.addFilter(RedactAddresses())
    try:
        with caplog.at_level(logging.INFO, logger="ispeed.test.redact"):
            log.info("request from %s failed", "192.0.2.200")
            try:
                raise ConnectionResetError("reset by 192.0.2.201")
            except ConnectionResetError:
                log.exception("peer %r", ("192.0.2.202", 5))
            log.info("bad args %s %s", "192.0.2.203")  # unformattable: still redacted, never raises
        text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
        assert "192.0.2.0/24" in text and "192.0.2.20" not in text
    finally:
        log.filters.clear()
