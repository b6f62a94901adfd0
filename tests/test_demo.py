"""`ispeed demo`: real loopback tests, a simulated month, the published site served at a printed URL."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ispeed.core.store import open_store

pytestmark = pytest.mark.slow


def test_demo_serves_the_published_site_and_stores_real_loopback_tests(tmp_path: Path) -> None:
    args = [
        sys.executable,
        "-m",
        "ispeed.cli.main",
        "demo",
        "--port",
        "0",
        "--workdir",
        str(tmp_path / "demo"),
        "--out",
        str(tmp_path / "site"),
        "--tests",
        "20000",
        "--history-months",
        "1",
        "--loopback-tests",
        "2",
    ]
    started = time.monotonic()
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    lines: list[str] = []
    url = ""
    try:
        while time.monotonic() - started < 120:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"the published site is at (http://\S+)", line)
            if m:
                url = m.group(1)
                break
        assert url, "".join(lines)
        with urllib.request.urlopen(url, timeout=10) as answer:
            home = answer.read().decode()
        assert '<html lang="vi">' in home and "Tốc độ Internet Việt Nam" in home
        with urllib.request.urlopen(url + "en/archive.html", timeout=10) as answer:
            assert "Published months" in answer.read().decode()
        with urllib.request.urlopen(url.replace("/site/", "/healthz"), timeout=10) as answer:
            assert answer.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    text = "".join(lines) + err
    assert proc.returncode == 0, text
    # no declared type: the demo's connection-type database says the loopback is a fixed line
    assert (
        len(
            re.findall(
                r"loopback test \d/2: .* stored as Viettel / province 01, fixed \(from ip\), "
                r"device issued",
                text,
            )
        )
        == 2
    ), text
    assert "simulated 20,000 national tests" in text
    with open_store(f"chdb:{tmp_path / 'demo' / 'store-demo'}") as store:
        real = store.query(
            "SELECT provider, province_code, valid, network_type, network_type_source, "
            "connection_type, device_source FROM {db}.measurements WHERE simulated = 0"
        )
    assert sorted(real) == [("Viettel", "01", 1, "fixed", "ip", "Cable/DSL", "issued")] * 2


def test_demo_no_serve_publishes_and_exits(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ispeed.cli.main",
            "demo",
            "--no-serve",
            "--workdir",
            str(tmp_path / "demo"),
            "--out",
            str(tmp_path / "site"),
            "--tests",
            "5000",
            "--history-months",
            "0",
            "--loopback-tests",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "site" / "index.html").is_file() and (tmp_path / "site" / "en" / "index.html").is_file()
    assert "site written to" in proc.stderr
