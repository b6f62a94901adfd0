"""Property-based fuzzing: hostile bodies, headers and query strings never cause a 5xx or a write."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ispeed.core.store import open_store
from ispeed.server.app import serve
from ispeed.server.config import ServerConfig
from ispeed.server.results import RESULT_FIELDS

SECRET = b"fuzz-secret-0123456789abcdef"


class ThreadServer:
    def __init__(self, store_url: str) -> None:
        self.config = ServerConfig(
            host="127.0.0.1",
            port=0,
            store_url=store_url,
            secret=SECRET,
            tests_per_min_per_network=1e9,
            results_per_min_per_network=1e9,
            max_tests_per_network=100_000,
            max_running_tests=100_000,
            shutdown_grace_s=0.0,
            body_timeout_s=1.0,
        )
        self.ready = threading.Event()
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()

            def ready(url: str) -> None:
                self.url = url
                self.ready.set()

            await serve(self.config, ready=ready, stop=self._stop)

        asyncio.run(main())

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        assert self.ready.wait(30), "server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(30)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    store_url = f"chdb:{tmp_path_factory.mktemp('fuzz') / 'store'}"
    server = ThreadServer(store_url)
    with server:
        yield server
    with open_store(store_url) as store:  # nothing the fuzzer sent was ever written
        assert store.query("SELECT count() FROM {db}.measurements") == [(0,)]


def request(
    server: ThreadServer, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5),
    max_leaves=20,
)
field_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False),
    st.text(max_size=300),
    st.lists(st.integers(), max_size=3),
    st.sampled_from(
        [
            1e308,
            -1e308,
            1e-308,
            2**63,
            -(2**63),
            "NaN",
            "Infinity",
            "\x00",
            "' OR 1=1 --",
            "\ud800",
            "a\udfffb",
            "\x1b[31m",
        ]
    ),
)
result_bodies = st.dictionaries(
    st.sampled_from(sorted(RESULT_FIELDS)) | st.text(max_size=30), field_values, max_size=len(RESULT_FIELDS) + 2
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _ok(status: int, raw: bytes) -> None:
    assert status < 500, raw[:300]
    if status >= 400:
        assert "error" in json.loads(raw)


@FUZZ
@given(body=result_bodies)
def test_result_bodies(fuzz_server: ThreadServer, body: dict[str, object]) -> None:
    status, raw = request(
        fuzz_server, "POST", "/api/v1/results", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    _ok(status, raw)
    assert status in (400, 403, 410, 413)


@FUZZ
@given(
    raw_body=st.binary(max_size=3000) | json_values.map(lambda v: json.dumps(v).encode()),
    content_type=st.sampled_from(
        [
            "application/json",
            "text/plain",
            "application/json; charset=latin-1",
            "",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded",
        ]
    ),
)
def test_raw_bodies_and_content_types(fuzz_server: ThreadServer, raw_body: bytes, content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    for path in ("/api/v1/results", "/api/v1/tests"):
        status, raw = request(fuzz_server, "POST", path, raw_body, headers)
        _ok(status, raw)


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["token", "stream", "bytes", "x", "token[]"]),
        st.text(max_size=80) | st.integers().map(str),
        max_size=4,
    ),
    path=st.sampled_from(["/api/v1/download", "/api/v1/latency", "/api/v1/tests/abc", "/api/v1/servers"]),
)
def test_query_strings(fuzz_server: ThreadServer, params: dict[str, str], path: str) -> None:
    query = urlencode(params, quote_via=quote)
    status, raw = request(fuzz_server, "GET", f"{path}?{query}")
    _ok(status, raw)


def _stored_so_far(server: ThreadServer) -> float:
    status, raw = request(server, "GET", "/metrics")
    assert status == 200
    counts = [
        float(line.split()[1])
        for line in raw.decode().splitlines()
        if line.split()[:1] in (["ispeed_results_stored_total"], ["ispeed_results_spooled_total"])
    ]
    return sum(counts)


def test_oversized_and_hostile_headers(fuzz_server: ThreadServer) -> None:
    """Each hostile request has one expected outcome, asserted; none may be skipped."""
    json_type = {"Content-Type": "application/json"}
    # a Content-Length over the limit: 413 before any body is read
    status, raw = request(fuzz_server, "POST", "/api/v1/results", b"{}", {**json_type, "Content-Length": "999999999"})
    assert status == 413 and json.loads(raw)["field"] == "body"
    # a header past the HTTP parser's 8190-byte limit: the parser's own 400 (no route runs; not JSON)
    status, raw = request(fuzz_server, "POST", "/api/v1/results", b"{}", {**json_type, "X-Big": "a" * 9000})
    assert status == 400 and b"Got more than 8190 bytes" in raw
    # a long, wrong content type: 415 naming the header
    status, raw = request(
        fuzz_server, "POST", "/api/v1/results", b"{}", {"Content-Type": "application/json" + "x" * 5000}
    )
    assert status == 415 and json.loads(raw)["field"] == "Content-Type"
    # a Content-Length larger than the body sent: 408 once the body timeout (1 s here) passes
    status, raw = request(
        fuzz_server, "POST", "/api/v1/results", b'{"token": "a.b"}', {**json_type, "Content-Length": "100"}
    )
    assert status == 408 and json.loads(raw)["field"] == "body"
    # the same, and the client hangs up mid-body: the server drops the connection and serves on
    host, port = fuzz_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/results HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"token": '
        )
    status, raw = request(fuzz_server, "GET", "/healthz")
    assert status == 200 and json.loads(raw)["status"] == "ok"
    assert _stored_so_far(fuzz_server) == 0  # and the fixture checks the store itself at the end


def test_upload_without_token_never_reads_the_body(fuzz_server: ThreadServer) -> None:
    status, raw = request(
        fuzz_server, "POST", "/api/v1/upload?stream=0", b"x" * (1 << 20), {"Content-Type": "application/octet-stream"}
    )
    assert status == 400 and json.loads(raw)["field"] == "token"


def test_fuzz_server_fixture_is_real(fuzz_server: ThreadServer, tmp_path: Path) -> None:
    status, raw = request(fuzz_server, "GET", "/api/v1/servers")
    assert status == 200 and json.loads(raw)["server_id"] == "local-1"
