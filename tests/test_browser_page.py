"""The citizens' test page in real headless Chromium (Debian's package) against `ispeed serve`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ispeed.core import method, submission
from ispeed.core.store import open_store
from tests.serve_process import ServeProcess

pytestmark = pytest.mark.slow

PHASE_S = 2.0
STREAMS = 4


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ServeProcess, str]]:
    store = f"chdb:{tmp_path / 'store'}"
    proc = ServeProcess(store).start()
    try:
        yield proc, store
    finally:
        proc.stop()


def _console_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def _python_client(url: str) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ispeed.cli.main",
            "test",
            "--server",
            url,
            "--json",
            "--streams",
            str(STREAMS),
            "--duration",
            str(PHASE_S),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_autostart_test_completes_is_stored_and_shareable(browser: Any, server: tuple[ServeProcess, str]) -> None:
    proc, store = server
    context = browser.new_context()
    page = context.new_page()
    errors = _console_errors(page)
    page.goto(f"{proc.url}/?autostart=1&duration={PHASE_S:g}&streams={STREAMS}&network_type=mobile")
    page.wait_for_function("document.getElementById('result').textContent.length > 0", timeout=60_000)
    result = json.loads(page.text_content("#result") or "{}")
    assert "error" not in result, result
    assert errors == []
    # plausible for loopback: fast, with small latency, and accepted as consistent by the server
    assert result["download_mbps"] > 200 and result["upload_mbps"] > 200, result  # 2 s on 2 busy cores
    assert 0 < result["latency_ms"] < 50 and result["jitter_ms"] is not None
    assert result["loaded_latency_down_ms"] is not None and result["loaded_latency_up_ms"] is not None
    assert result["streams"] == STREAMS and result["network_type"] == "mobile"
    assert result["submitted"] and result["valid"] and result["invalid_reason"] == ""
    assert page.text_content("#download-value").endswith("Mbps")
    assert page.get_attribute("#share-link", "href") == f"/r/{result['test_id']}"

    python = _python_client(proc.url)  # the reference in the same run, same server
    ratio_down = result["download_mbps"] / python["download_mbps"]
    ratio_up = result["upload_mbps"] / python["upload_mbps"]
    print(
        f"\nloopback, {STREAMS} streams × {PHASE_S:g} s: browser ↓ {result['download_mbps']:.0f} ↑ "
        f"{result['upload_mbps']:.0f} Mbit/s; Python client ↓ {python['download_mbps']:.0f} ↑ "
        f"{python['upload_mbps']:.0f} Mbit/s; browser/Python ↓ {ratio_down:.2f} ↑ {ratio_up:.2f}"
    )

    # the shareable page reads the stored result
    answer = page.goto(f"{proc.url}/r/{result['test_id']}?lang=en")
    assert answer is not None and answer.status == 200
    assert page.text_content("h1") == "Speed test result"
    down = result["download_mbps"]
    assert page.text_content("#download-value") == (f"{down:.0f}" if down >= 1000 else f"{down:.1f}") + " Mbps"
    missing = page.goto(f"{proc.url}/r/00000000-0000-0000-0000-000000000000")
    assert missing is not None and missing.status == 404
    assert "Không tìm thấy" in (page.text_content("h1") or "")
    assert errors == [] or all("404" in e for e in errors)
    context.close()
    proc.stop()

    with open_store(store) as s:
        rows = s.query(
            "SELECT test_id, client_kind, client_version, network_type, download_mbps, upload_mbps,"
            " server_bytes_up, valid FROM {db}.measurements ORDER BY client_kind"
        )
    kinds = {row[1]: row for row in rows}
    assert set(kinds) == {"browser", "cli"}
    test_id, _, version, network, down, up, server_up, valid = kinds["browser"]
    assert (test_id, version, network, valid) == (result["test_id"], "ispeed-web/0.1.0", "mobile", 1)
    assert down == pytest.approx(result["download_mbps"]) and up == pytest.approx(result["upload_mbps"], rel=1e-3)
    assert server_up == result["bytes_up"] > 0


def test_vietnamese_by_default_with_an_english_switch(browser: Any, server: tuple[ServeProcess, str]) -> None:
    proc, _ = server
    page = browser.new_page()
    errors = _console_errors(page)
    page.goto(proc.url + "/")
    assert page.get_attribute("html", "lang") == "vi"
    assert page.text_content("#start") == "Bắt đầu đo"
    assert page.text_content("h1") == "Đo tốc độ Internet"
    page.click("#lang-switch")
    assert page.text_content("#start") == "Start test" and page.get_attribute("html", "lang") == "en"
    page.goto(proc.url + "/?lang=en")
    page.wait_for_function("document.getElementById('start').textContent === 'Start test'")
    assert [o.strip() for o in page.locator("#network-type option").all_text_contents()] == [
        "Don't know (let the server decide)",
        "Fixed (fibre, DSL)",
        "Mobile (3G/4G)",
        "5G",
    ]
    assert errors == []
    page.close()


def test_the_page_posts_only_fields_of_the_core_submission(browser: Any, server: tuple[ServeProcess, str]) -> None:
    """Every key the page's engine sends is a field of core.submission, and it states core's method version."""
    proc, _ = server
    context = browser.new_context(
        geolocation={"latitude": 21.03, "longitude": 105.85, "accuracy": 15}, permissions=["geolocation"]
    )
    page = context.new_page()
    errors = _console_errors(page)
    posted: list[Any] = []
    answers: list[int] = []
    page.on("request", lambda r: posted.append(r.post_data_json) if r.url.endswith("/api/v1/results") else None)
    page.on("response", lambda r: answers.append(r.status) if r.url.endswith("/api/v1/results") else None)
    page.goto(f"{proc.url}/?duration=1&streams=1")
    engine = page.evaluate("document.querySelector('script[type=module]').src").replace("/app.js", "/engine.js")
    assert page.evaluate("(url) => import(url).then((m) => m.METHOD_VERSION)", engine) == method.METHOD_VERSION
    page.select_option("#network-type", "5g")
    page.check("#use-location")
    page.click("#start")
    page.wait_for_function("document.getElementById('result').textContent.length > 0", timeout=60_000)
    assert len(posted) == 1, posted
    sent = posted[0]
    unknown = set(sent) - set(submission.FIELDS)
    assert not unknown, f"the page sends keys that are no field of core.submission: {sorted(unknown)}"
    result = json.loads(page.text_content("#result") or "{}")
    assert "error" not in result and answers == [201], (result, answers)
    # the page's optional fields were all exercised: the check above covered them
    for name in ("token", "download_mbps", "upload_mbps", "network_type", "lat", "lon", "accuracy_m", "device_id"):
        assert name in sent, name
    assert (sent["client_kind"], sent["method_version"], sent["network_type"]) == (
        "browser",
        method.METHOD_VERSION,
        "5g",
    )
    assert (sent["lat"], sent["lon"], sent["accuracy_m"]) == (21.03, 105.85, 15)
    assert errors == []
    context.close()
