"""UDP loss and delay through an emulated link (CI two-point version of perf/quality.py --quick).

50 Mbit/s × 40 ms with 1 % loss server → client only, and with 5 % client → server only; one
run of 2,000 idle probes each. The measured losses must be exactly the delay line's drops. A run
whose delay line stalled (> 5 ms late) is run again, up to three times. Needs root and `ip netns`;
skips with the reason otherwise.
"""

from __future__ import annotations

from typing import Any

import pytest
from perf.netlab import unavailable
from perf.quality import OTHER_LIMIT_PCT, PROBES, se_pp

from tests.lab_runs import quick_rows

_REASON = unavailable()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=f"quality lab unavailable: {_REASON}")


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return quick_rows(tmp_path_factory, "quality")


def _run(row: dict[str, Any]) -> dict[str, Any]:
    assert len(row["runs"]) == 1, row["point"]
    run: dict[str, Any] = row["runs"][0]
    return run


def test_both_points_ran_with_udp_and_enough_probes(rows: list[dict[str, Any]]) -> None:
    assert [r["point"] for r in rows] == ["50x40d1", "50x40u5"]
    for r in rows:
        run = _run(r)
        assert run["udp"] == "ok" and run["probes"] >= PROBES - 5 and run["echoed"] >= 0.9 * PROBES, r["point"]


def test_the_losses_measured_are_exactly_the_lines_drops(rows: list[dict[str, Any]]) -> None:
    """The delay line counts the idle probes (up) and echoes (down) it drops: the server's and the
    client's counts account for each of them."""
    for r in rows:
        run = _run(r)
        up, down = run["line"]["up"], run["line"]["down"]
        assert (up["taken"], up["lost"]) == (run["probes_client"], run["probes_client"] - run["received"]), r["point"]
        assert (down["taken"], down["lost"]) == (run["echoed"], run["echoed"] - run["echoes"]), r["point"]


@pytest.mark.parametrize(
    ("point", "way", "truth", "sent"), [("50x40d1", "down", 0.01, "echoed"), ("50x40u5", "up", 0.05, "probes")]
)
def test_loss_is_measured_in_the_right_direction_within_3_standard_errors(
    rows: list[dict[str, Any]], point: str, way: str, truth: float, sent: str
) -> None:
    """Within 3 SE of the injected loss, unless the line's own seeded draws were that far off
    (then the exact count above is the measurement's check)."""
    run = _run(next(r for r in rows if r["point"] == point))
    measured = run[f"loss_{way}_pct"]
    line = run["line"][way]
    line_z = (100 * line["lost"] / line["taken"] - 100 * truth) / se_pp(truth, line["taken"])
    assert abs(measured - 100 * truth) <= 3 * se_pp(truth, run[sent]) or abs(line_z) > 3, (point, measured, line)
    other = run["loss_up_pct" if way == "down" else "loss_down_pct"]
    assert other < OTHER_LIMIT_PCT, (point, other)


def test_idle_udp_round_trip_within_1ms_plus_3_percent(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        rtt = _run(r)["udp_rtt_ms"]
        assert abs(rtt - r["rtt_ms"]) <= 1 + 0.03 * r["rtt_ms"], (r["point"], rtt)


def test_the_judged_rows_agree_with_these_checks(rows: list[dict[str, Any]]) -> None:
    assert all(r["ok"] for r in rows), [(r["point"], r["checks"]) for r in rows]
