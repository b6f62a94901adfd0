"""The draft's RPM arithmetic (core/responsiveness.py): trimmed mean, the TCP-only and TLS
combinations of foreign and self probes, and the classes."""

from __future__ import annotations

import pytest

from ispeed.core.responsiveness import DRAFT, label, responsiveness, trimmed_mean


def test_trimmed_mean_drops_the_top_5_percent_only() -> None:
    assert trimmed_mean([]) is None
    assert trimmed_mean([10.0] * 19 + [1000.0]) == pytest.approx(10.0)  # 20 values: the largest goes
    assert trimmed_mean([10.0] * 18 + [1000.0, 1000.0]) == pytest.approx((18 * 10 + 1000) / 19)
    assert trimmed_mean([1.0, 2.0, 3.0, 1000.0]) == pytest.approx(251.5)  # under 20 values: none dropped
    values = [float(v) for v in range(1, 101)]  # 100 values: 95 kept
    assert trimmed_mean(values) == pytest.approx(48.0)


def test_tcp_only_rpm_averages_foreign_and_self_responsiveness() -> None:
    r = responsiveness([20.0] * 10, [40.0] * 10, [25.0] * 10)
    assert r is not None
    assert r.foreign_rpm == pytest.approx(60000 / 30)  # (TM(tcp_f) + TM(http_f)) / 2 = 30 ms
    assert r.self_rpm == pytest.approx(60000 / 25)
    assert r.rpm == pytest.approx((2000 + 2400) / 2)
    assert (r.foreign_probes, r.self_probes, r.tls_ms) == (10, 10, None)


def test_tls_handshake_joins_the_foreign_mean_with_equal_weight() -> None:
    r = responsiveness([20.0] * 10, [40.0] * 10, [25.0] * 10, tls_ms=[30.0] * 10)
    assert r is not None and r.foreign_rpm == pytest.approx(60000 / 30) and r.tls_ms == 30.0
    r = responsiveness([10.0] * 10, [40.0] * 10, [25.0] * 10, tls_ms=[10.0] * 10)
    assert r is not None and r.foreign_rpm == pytest.approx(60000 / 20)


def test_too_few_probes_give_no_rpm() -> None:
    assert responsiveness([10.0] * 4, [10.0] * 4, [10.0] * 10) is None
    assert responsiveness([10.0] * 10, [10.0] * 10, [10.0] * 4) is None
    assert responsiveness([10.0] * 5, [10.0] * 5, [10.0] * 5) is not None


@pytest.mark.parametrize(
    "rpm,name",
    [
        (None, None),
        (100.0, "Poor"),
        (300.0, "Poor"),  # 200 ms: "300 RPM or worse" is poor
        (300.5, "Fair"),
        (999.0, "Fair"),
        (1000.0, "Good"),
        (5999.0, "Good"),
        (6000.0, "Excellent"),
        (40000.0, "Excellent"),
    ],
)
def test_classes_are_the_drafts(rpm: float | None, name: str | None) -> None:
    assert label(rpm) == name
    assert DRAFT == "draft-ietf-ippm-responsiveness-09"
