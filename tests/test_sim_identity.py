"""perf/sim_identity.py, scaled down: honest CGNAT'd phones keep every sample; minting machines gain the allowance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).parents[1] / "perf" / "sim_identity.py"
DAYS, PHONES, SPIKE, TESTS, FIXED, CELLULAR = 5, 40, 60, 20, 3, 48


def test_simulated_month_keeps_honest_phones_and_bounds_minting_machines() -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--json",
            "--days",
            str(DAYS),
            "--phones",
            str(PHONES),
            "--spike-phones",
            str(SPIKE),
            "--tests-per-day",
            str(TESTS),
            "--per-network",
            str(FIXED),
            "--per-cellular-network",
            str(CELLULAR),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    r: dict[str, Any] = json.loads(out.stdout)
    phones, spike, minter, hoarder, cminter = (r[k] for k in ("phones", "spike", "minter", "hoarder", "cminter"))
    # (a) every phone's every day is a sample, one id each; a per-/24 sample cap would have kept 3 a day
    assert phones["samples"] == PHONES * DAYS == phones["bound"] and phones["samples_by_day"] == [PHONES] * DAYS
    assert (phones["ids_issued"], phones["ids_refused"]) == (PHONES, 0)
    assert phones["network_cap_samples"] == FIXED * DAYS
    # a launch day with more first-time phones than the allowance: the rest get ids the next day
    assert (spike["ids_issued"], spike["ids_refused"]) == (SPIKE, SPIKE - CELLULAR)
    assert spike["samples_by_day"][0] <= SPIKE and spike["samples_by_day"][1:] == [SPIKE] * (DAYS - 1)
    # (b) a new id before each test: the allowance plus one (its tests without an id, under its IP) a day
    assert minter["samples_by_day"] == [FIXED + 1] * DAYS and minter["samples"] == minter["bound"]
    assert (minter["ids_issued"], minter["self_chosen_samples"]) == (FIXED * DAYS, TESTS * DAYS)
    # a machine hoarding every id it gets: allowance × d + 1 on day d, as spec/identity.md says
    assert (
        hoarder["samples_by_day"] == [FIXED * d + 1 for d in range(1, DAYS + 1)]
        and hoarder["samples"] == hoarder["bound"]
    )
    # a minting machine on a Cellular network gets the Cellular allowance (here more than its tests)
    assert cminter["samples_by_day"] == [TESTS] * DAYS and cminter["ids_issued"] == TESTS * DAYS
