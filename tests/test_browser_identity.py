"""The test page in real headless Chromium keeps a server-issued device id in localStorage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ispeed.core.store import open_store
from ispeed.server.devices import verify_device_id
from ispeed.server.privacy import keyed_hash
from tests.serve_process import ServeProcess

pytestmark = pytest.mark.slow

SERVE_SECRET = b"functional-test-secret-000"  # tests/serve_process.py


def _run_page_test(page: Any, url: str) -> dict[str, Any]:
    page.goto(f"{url}/?autostart=1&duration=1&streams=2")
    page.wait_for_function("document.getElementById('result').textContent.length > 0", timeout=60_000)
    result: dict[str, Any] = json.loads(page.text_content("#result") or "{}")
    assert "error" not in result, result
    return result


def test_the_page_gets_an_id_once_keeps_it_and_drops_the_old_random_one(browser: Any, tmp_path: Path) -> None:
    store = f"chdb:{tmp_path / 'store'}"
    with ServeProcess(store, ["--spool-dir", "none"]) as proc:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{proc.url}/")
        page.evaluate("localStorage.setItem('ispeed-device', 'a-self-chosen-uuid')")  # what the page kept before
        first = _run_page_test(page, proc.url)
        device = page.evaluate("localStorage.getItem('ispeed-device-id')")
        assert page.evaluate("localStorage.getItem('ispeed-device')") is None
        second = _run_page_test(context.new_page(), proc.url)  # a later visit, same browser
        assert page.evaluate("localStorage.getItem('ispeed-device-id')") == device
        context.close()
    assert verify_device_id(SERVE_SECRET, device) == device
    with open_store(store) as s:
        rows = dict(s.query("SELECT test_id, device_hash FROM {db}.measurements"))
    assert rows == {
        first["test_id"]: keyed_hash(SERVE_SECRET, "device", device),
        second["test_id"]: keyed_hash(SERVE_SECRET, "device", device),
    }
