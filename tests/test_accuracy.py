"""Accuracy through an emulated link (CI two-point version of perf/accuracy.py --quick).

100 Mbit/s × 10 ms and 20 Mbit/s × 80 ms, 5 s phases, with the kernel's default congestion
control and with cubic. A run whose delay line stalled (> 5 ms late) is run again, up to three
times (perf/accuracy.py). Needs root and `ip netns`; skips with the reason otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

PERF = Path(__file__).resolve().parent.parent / "perf"

from perf.accuracy import ATTEMPTS, STALL_LIMIT_MS  # noqa: E402
from perf.netlab import unavailable  # noqa: E402

from tests.lab_runs import quick_rows  # noqa: E402

_REASON = unavailable()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=f"accuracy lab unavailable: {_REASON}")


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return quick_rows(tmp_path_factory, "accuracy")


def _label(row: dict[str, Any]) -> str:
    return f"{row['cc']} {row['link']}"


def test_matrix_covers_both_points_and_both_ccs(rows: list[dict[str, Any]]) -> None:
    assert {(r["rate_mbit"], r["rtt_ms"]) for r in rows} == {(100.0, 10.0), (20.0, 80.0)}
    assert "cubic" in {r["cc"] for r in rows} and len({r["cc"] for r in rows}) >= 1
    assert all(r["truth_mbps"] == pytest.approx(r["rate_mbit"] * 1448 / 1514, abs=0.01) for r in rows)


def test_download_within_2_percent_of_truth(rows: list[dict[str, Any]]) -> None:
    """Both the server's own download (the published figure) and the client's."""
    bad = {_label(r): r["down_err"] for r in rows if abs(r["down_err"]) > 0.02}
    assert not bad, f"server-side download off truth by more than 2 %: {bad}"
    bad = {_label(r): r["down_client_err"] for r in rows if abs(r["down_client_err"]) > 0.02}
    assert not bad, f"client-side download off truth by more than 2 %: {bad}"


def test_idle_latency_within_1ms_plus_3_percent(rows: list[dict[str, Any]]) -> None:
    bad = {_label(r): r["latency_ms"] for r in rows if abs(r["latency_err_ms"]) > 1 + 0.03 * r["rtt_ms"]}
    assert not bad, f"idle latency off the added RTT: {bad}"


def test_loaded_latency_above_idle(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        assert r["loaded_latency_down_ms"] > r["latency_ms"], _label(r)
        assert r["loaded_latency_up_ms"] > r["latency_ms"], _label(r)


def test_upload_within_2_percent_of_truth(rows: list[dict[str, Any]]) -> None:
    bad = {_label(r): r["up_err"] for r in rows if abs(r["up_err"]) > 0.02}
    assert not bad, f"upload off truth by more than 2 %: {bad}"


def test_judged_run_is_the_first_faithful_attempt_or_the_least_stalled(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        lates = [a["late_max_ms"] for a in r["attempts"]]
        faithful = [i for i, late in enumerate(lates) if late <= STALL_LIMIT_MS]
        assert r["attempt"] - 1 == (faithful[0] if faithful else lates.index(min(lates))), _label(r)
        # attempts stop at the first faithful one; all of them are used only when each stalled
        assert len(lates) == (faithful[0] + 1 if faithful else ATTEMPTS), _label(r)
        judged = r["attempts"][r["attempt"] - 1]
        assert (judged["download_mbps"], judged["upload_mbps"]) == (r["download_mbps"], r["upload_mbps"])
