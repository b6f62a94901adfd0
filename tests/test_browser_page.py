"""The citizens' test page in real headless Chromium (Debian's package) against `ispeed serve`."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ispeed.core import method, responsiveness, submission
from ispeed.core.responsiveness import MIN_PROBES
from ispeed.core.store import open_store
from ispeed.server.rpm_evidence import RPM_TOLERANCE
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


RPM_PHASE_S = 3.0  # 0.75 s of ramp-up, then a foreign probe every 0.2 s: about 11 per transfer phase
LOSS_SENTENCE = {
    "vi": "Không đo trong trình duyệt: trình duyệt không gửi được các gói UDP dùng để đo mất gói. "
    "Hãy chạy “ispeed test” để đo mất gói.",
    "en": "Not measured in the browser: browsers cannot send the UDP probes that measure loss. "
    "Run “ispeed test” for packet loss.",
}


def _metric(url: str, name: str) -> float:
    """One counter of the server's /metrics (Prometheus text), 0 when it was never counted."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    values = [float(line.split()[-1]) for line in text.splitlines() if line.split(" ")[0].split("{")[0] == name]
    return sum(values)


def _stored(proc: ServeProcess, store: str, test_id: str) -> tuple[Any, ...]:
    """The stored row of a test (the server stopped first: the embedded store is one process's)."""
    proc.stop()
    with open_store(store) as s:
        rows = s.query(
            "SELECT rpm_down, rpm_up, flags, valid, method_version FROM {db}.measurements FINAL WHERE test_id = {t}",
            {"t": test_id},
        )
    assert len(rows) == 1, rows
    return tuple(rows[0])


def test_the_page_measures_rpm_that_the_servers_handshakes_support(
    browser: Any, server: tuple[ServeProcess, str]
) -> None:
    """Foreign probes on a new connection each (the server refuses a reused one and counts the
    handshakes it timed), self probes on the loaded WebSocket; the draft's figure per direction,
    at or below the server's handshake RPM, stored unflagged and shown with its class."""
    proc, store = server
    page = browser.new_page()
    errors = _console_errors(page)
    page.goto(f"{proc.url}/?autostart=1&duration={RPM_PHASE_S:g}&streams=2&lang=en")
    page.wait_for_function("document.getElementById('result').textContent.length > 0", timeout=90_000)
    result = json.loads(page.text_content("#result") or "{}")
    assert "error" not in result, result
    assert errors == []
    evidence = result["rpm_server"]  # what the server's kernel timed of the same probes
    phases = result["rpm_phases"]
    print(f"\npage RPM ↓ {result['rpm_down']} ↑ {result['rpm_up']} idle {result['rpm_idle']}")
    print(f"page phases {json.dumps(phases)}\nserver evidence {json.dumps(evidence)}")
    # every probe the page sent came on a new connection: the server refuses one that carried an
    # answer before (400) and never had to; each accepted probe is one handshake it timed
    assert _metric(proc.url, "ispeed_rpm_probes_refused_total") == 0
    assert _metric(proc.url, "ispeed_rpm_probes_total") == sum(max(evidence[p]["probes"], 0) for p in evidence) > 0
    assert phases["idle"]["foreign_probes"] >= MIN_PROBES and evidence["idle"]["probes"] >= MIN_PROBES
    for direction, phase in (("down", "download"), ("up", "upload")):
        figures = phases[phase]
        assert figures["foreign_probes"] >= MIN_PROBES and figures["self_probes"] >= MIN_PROBES, figures
        assert evidence[phase]["probes"] >= figures["foreign_probes"], (phase, evidence, figures)
        # the draft's combination, as the Python client makes it
        foreign = 60000 / ((figures["tcp_ms"] + figures["http_ms"]) / 2)
        assert figures["foreign_rpm"] == pytest.approx(foreign, rel=2e-3)
        assert figures["self_rpm"] == pytest.approx(60000 / figures["self_ms"], rel=2e-3)
        claimed = result[f"rpm_{direction}"]
        assert claimed == pytest.approx((figures["foreign_rpm"] + figures["self_rpm"]) / 2, rel=1e-3)
        # an honest client reads at or below the handshakes the server timed (spec/method-v2.md §4)
        assert 300 < claimed <= evidence[phase]["rpm"] * (1 + RPM_TOLERANCE), (phase, claimed, evidence)
    assert result["submitted"] and "rpm_disagrees" not in result["flags"], result
    # the page shows the worse direction's figure and the draft's class of it
    low = min(result["rpm_down"], result["rpm_up"])
    assert result["rpm_label"] == responsiveness.label(low)
    assert page.text_content("#rpm-value") == f"{math.floor(low + 0.5)} RPM"  # Math.round: halves go up
    assert page.text_content("#rpm-class") == result["rpm_label"]
    page.click("#lang-switch")
    viet = {"Excellent": "Rất tốt", "Good": "Tốt", "Fair": "Trung bình", "Poor": "Kém"}
    page.wait_for_function("document.documentElement.lang === 'vi'")
    # the figures are drawn again after the language changes: wait for the class's translation
    page.wait_for_function(
        "want => document.getElementById('rpm-class').textContent === want", arg=viet[result["rpm_label"]], timeout=5000
    )
    # the ratings that rest on responsiveness now have it
    view = page.request.get(f"{proc.url}/r/{result['test_id']}.json?lang=en").json()
    assert all("Responsiveness" not in r["not_measured"] for r in view["ratings"]), view["ratings"]
    page.close()
    rpm_down, rpm_up, flags, _, version = _stored(proc, store, result["test_id"])
    assert (rpm_down, rpm_up) == (result["rpm_down"], result["rpm_up"])
    assert "rpm_disagrees" not in flags and version == method.METHOD_VERSION, (flags, version)


def test_a_page_that_claims_an_rpm_its_handshakes_rule_out_is_stored_flagged(
    browser: Any, server: tuple[ServeProcess, str]
) -> None:
    """A tampered page (its fetch rewrites the submission) claims round trips of 6 µs: the
    server holds the page's figure to the handshakes it timed, as it does the CLI's."""
    proc, store = server
    page = browser.new_page()

    # (not page.route: Playwright's interception of every request stalls the 64 MiB upload bodies)
    page.add_init_script(
        """(() => {
      const fetch0 = window.fetch;
      window.fetch = (url, init) => {
        if (String(url).endsWith('/api/v1/results') && init && init.body) {
          init = {...init, body: JSON.stringify({...JSON.parse(init.body), rpm_down: 1e7, rpm_up: 1e7})};
        }
        return fetch0(url, init);
      };
    })()"""
    )
    page.goto(f"{proc.url}/?autostart=1&duration={RPM_PHASE_S:g}&streams=2")
    page.wait_for_function("document.getElementById('result').textContent.length > 0", timeout=90_000)
    result = json.loads(page.text_content("#result") or "{}")
    assert "error" not in result, result
    for phase in ("download", "upload"):  # the page probed: the flag is the handshakes' verdict, not a lack of probes
        assert result["rpm_server"][phase]["probes"] >= MIN_PROBES
        assert 1e7 > result["rpm_server"][phase]["rpm"] * (1 + RPM_TOLERANCE)
    assert "rpm_disagrees" in result["flags"] and result["valid"], result  # the speed figures stand
    page.close()
    rpm_down, rpm_up, flags, valid, _ = _stored(proc, store, result["test_id"])
    assert (rpm_down, rpm_up, valid) == (1e7, 1e7, 1) and "rpm_disagrees" in flags.split(",")


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_the_page_says_plainly_that_it_does_not_measure_loss(
    browser: Any, server: tuple[ServeProcess, str], lang: str
) -> None:
    proc, _ = server
    page = browser.new_page()
    errors = _console_errors(page)
    other = "en" if lang == "vi" else "vi"
    page.goto(f"{proc.url}/?lang={lang}")
    assert page.text_content("#loss-value") == LOSS_SENTENCE[lang]
    page.click("#lang-switch")
    page.wait_for_function(f"document.documentElement.lang === '{other}'")
    assert page.text_content("#loss-value") == LOSS_SENTENCE[other]
    page.goto(f"{proc.url}/?autostart=1&duration=1&streams=1&lang={lang}")
    page.wait_for_function("document.getElementById('result').textContent.length > 0", timeout=60_000)
    assert "error" not in json.loads(page.text_content("#result") or "{}")
    assert page.text_content("#loss-value") == LOSS_SENTENCE[lang]  # after a test too, not a bare dash
    assert errors == []
    page.close()


def test_the_pages_rpm_arithmetic_is_the_python_clients(browser: Any, server: tuple[ServeProcess, str]) -> None:
    """rpm.js ports core.responsiveness: the same trimming, formula, probe minimum and classes."""
    proc, _ = server
    page = browser.new_page()
    page.goto(proc.url + "/")
    module = page.evaluate("document.querySelector('script[type=module]').src").replace("/app.js", "/rpm.js")
    rng = random.Random(21)
    for n in (0, 1, 4, 5, 19, 20, 21, 40, 60):
        tcp, http, own = ([rng.uniform(0.01, 300) for _ in range(n)] for _ in range(3))
        tls = [rng.uniform(1, 50) for _ in range(n)] if n % 2 else None
        got = page.evaluate(
            "([url, args]) => import(url).then((m) => [m.trimmedMean(args[0]), "
            "(r => r && m.asDict(r))(m.responsiveness(...args))])",
            [module, [tcp, http, own, tls]],
        )
        want = responsiveness.responsiveness(tcp, http, own, tls)
        assert got[0] == pytest.approx(responsiveness.trimmed_mean(tcp)), n
        assert got[1] == (None if want is None else pytest.approx(want.as_dict())), n
    values = [0, 1, 300, 300.1, 999.9, 1000, 5999.9, 6000, 1e7]
    labels = page.evaluate("([url, v]) => import(url).then((m) => v.map(m.label))", [module, values])
    assert labels == [responsiveness.label(v) for v in values]
    assert page.evaluate("(url) => import(url).then((m) => m.MIN_PROBES)", module) == responsiveness.MIN_PROBES
    page.close()
