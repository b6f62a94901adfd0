"""Locate or install axe-core (tests/axe, from the committed lock file) and audit a Playwright page with it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

AXE_DIR = Path(__file__).parent / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


def ensure_axe() -> Path:
    """Path of axe.min.js, installed with `npm ci`; skips (with the reason) only when npm cannot install it."""
    if not AXE_JS.exists():
        npm = shutil.which("npm")
        if not npm:
            pytest.skip("npm is needed to install axe-core for the accessibility audit (Debian: apt-get install npm)")
        command = [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(AXE_DIR)]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 or not AXE_JS.exists():
            pytest.skip(f"npm ci --prefix {AXE_DIR} failed, cannot install axe-core: {proc.stderr[-500:]}")
    return AXE_JS


def audit(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (every rule axe runs by default)."""
    page.add_script_tag(path=str(ensure_axe()))
    result: dict[str, Any] = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return list(result["violations"])


def blocking(violations: list[dict[str, Any]]) -> list[str]:
    """`rule (impact): the first offending nodes` for each serious or critical violation."""
    return [
        f"{v['id']} ({v['impact']}): " + "; ".join(n["target"][0] for n in v["nodes"][:3])
        for v in violations
        if v.get("impact") in BLOCKING
    ]
