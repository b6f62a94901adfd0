"""How perf/rpm_lab judges the idle RPM (no lab needed): against 60,000 / the nominal RTT in a
faithful run, and against the RTT the link really delivered (the server's own handshakes) when
every attempt's delay line stalled and so added delay of its own."""

from __future__ import annotations

from typing import Any

from perf.netlab import LinkSpec
from perf.rpm_lab import expected, judge


def _row(late_ms: float, rpm_idle: float, handshake_ms: float) -> dict[str, Any]:
    # the CI run at 1834157: bbr 100 Mbit/s x 10 ms, three attempts 7.6-25.9 ms late, idle WS latency 11.47 ms
    return {
        "cc": "bbr",
        "rtt_ms": 10.0,
        "expected": expected(LinkSpec(100, 10)),
        "late_max_ms": late_ms,
        "rpm_idle": rpm_idle,
        "rpm_down": 2050.2,
        "rpm_up": 2035.4,
        "rpm_server": {"idle": {"probes": 10, "handshake_ms": handshake_ms, "rpm": 60000 / handshake_ms}},
    }


def test_a_stalled_line_is_judged_against_the_rtt_it_delivered() -> None:
    row = judge(_row(7.619, 5053.3, 11.066))
    assert row["idle_expected_rpm"] == round(60000 / 11.066, 1) and row["idle_err"] == round(5053.3 / 5421.9 - 1, 4)
    assert "delivered" in row["idle_reference"] and row["checks"]["idle"]


def test_a_faithful_line_is_judged_against_the_nominal_rtt() -> None:
    row = judge(_row(3.0, 5053.3, 11.066))  # the same figures in a run whose line kept time: a failure
    assert (row["idle_expected_rpm"], row["idle_reference"]) == (6000.0, "nominal RTT")
    assert not row["checks"]["idle"] and row["idle_err"] == round(5053.3 / 6000 - 1, 4)


def test_a_handshake_under_the_nominal_rtt_keeps_the_nominal_reference() -> None:
    row = judge(_row(9.0, 6500.0, 9.5))  # a handshake under the nominal RTT: the nominal stays the reference
    assert row["idle_expected_rpm"] == 6000.0 and row["idle_reference"] == "nominal RTT"
