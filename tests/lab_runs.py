"""The CI versions of the network labs: one `--quick` run per test module, its rows."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest


def quick_rows(tmp_path_factory: pytest.TempPathFactory, module: str) -> list[dict[str, Any]]:
    """Run `python -m perf.<module> --quick` into a temporary file; its rows, none of them an error."""
    out = tmp_path_factory.mktemp(module) / "quick"
    proc = subprocess.run(
        [sys.executable, "-m", f"perf.{module}", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]  # 1: a point missed its target (the tests say which)
    data = json.loads(out.with_suffix(".json").read_text())
    assert not [r for r in data["rows"] if "error" in r], data["rows"]
    rows: list[dict[str, Any]] = data["rows"]
    return rows
