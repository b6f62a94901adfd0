"""Responsiveness through an emulated link (CI two-point version of perf/rpm_lab.py --quick).

100 Mbit/s × 10 ms and 20 Mbit/s × 80 ms, 5 s phases, with the kernel's default congestion
control and with cubic: the idle RPM within 10 % of 60,000 / RTT, and under load lower, by no
more than the tbf's queue allows (perf/rpm_lab.py states the expected figures). Needs root and
`ip netns`; skips with the reason otherwise.
"""

from __future__ import annotations

from typing import Any

import pytest
from perf.netlab import LinkSpec, unavailable
from perf.rpm_lab import IDLE_TOLERANCE, LOADED_MARGIN, expected

from ispeed.server.rpm_evidence import RPM_TOLERANCE
from tests.lab_runs import quick_rows

_REASON = unavailable()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=f"network lab unavailable: {_REASON}")


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return quick_rows(tmp_path_factory, "rpm_lab")


def _label(row: dict[str, Any]) -> str:
    return f"{row['cc']} {row['link']}"


def test_both_points_with_both_ccs_and_the_stated_expectations(rows: list[dict[str, Any]]) -> None:
    assert {(r["rate_mbit"], r["rtt_ms"]) for r in rows} == {(100.0, 10.0), (20.0, 80.0)}
    assert "cubic" in {r["cc"] for r in rows}
    # 100 Mbit/s × 10 ms: a 250 kB queue, 20 ms; 20 Mbit/s × 80 ms: 400 kB, 160 ms
    assert expected(LinkSpec(100, 10)) == {
        "queue_ms": 20.0,
        "idle_rpm": 6000.0,
        "full_queue_rpm": 2000.0,
        "half_queue_rpm": 3000.0,
    }
    assert expected(LinkSpec(20, 80))["full_queue_rpm"] == 250.0
    assert all(r["expected"] == expected(LinkSpec(r["rate_mbit"], r["rtt_ms"])) for r in rows)


def test_idle_rpm_within_10_percent_of_60000_over_rtt(rows: list[dict[str, Any]]) -> None:
    # against the nominal RTT; against the RTT the link delivered only when every attempt's delay line stalled
    bad = {
        _label(r): (r["rpm_idle"], r["idle_expected_rpm"], r["idle_reference"])
        for r in rows
        if abs(r["idle_err"]) > IDLE_TOLERANCE
    }
    assert not bad, f"idle RPM off 60000 / RTT by more than 10 %: {bad}"


def test_loaded_rpm_lower_by_no_more_than_the_queue_allows(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        exp = r["expected"]
        for direction in ("down", "up"):
            rpm = r[f"rpm_{direction}"]
            assert rpm <= exp["idle_rpm"] * (1 - LOADED_MARGIN), (_label(r), direction, rpm, exp)
            assert rpm >= exp["full_queue_rpm"] * (1 - LOADED_MARGIN), (_label(r), direction, rpm, exp)


def test_cubic_keeps_the_queue_at_least_half_full(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        if r["cc"] == "cubic":
            for direction in ("down", "up"):
                assert r[f"rpm_{direction}"] <= r["expected"]["half_queue_rpm"], (_label(r), direction, r)


def test_the_servers_handshakes_see_the_same_queue(rows: list[dict[str, Any]]) -> None:
    """The server's kernel timed the same probes' handshakes: its round trip under load sits in
    [RTT, RTT + Q] too, and the client's RPM is not above the server's by more than the check allows."""
    for r in rows:
        exp = r["expected"]
        for phase, direction in (("download", "down"), ("upload", "up")):
            handshake = r["rpm_server"][phase]["handshake_ms"]
            assert r["rtt_ms"] <= handshake <= (r["rtt_ms"] + exp["queue_ms"]) * (1 + LOADED_MARGIN), (_label(r), phase)
            limit = r["rpm_server"][phase]["rpm"] * (1 + RPM_TOLERANCE)
            assert r[f"rpm_{direction}"] <= limit, (_label(r), phase)
