"""Locate or install the Node harness that runs M-Lab's official ndt7 client (tests/ndt7_node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).parent / "ndt7_node"
RUNNER = NODE_DIR / "run-ndt7.js"


def ensure_node_harness() -> str:
    """Path of `node`, with `@m-lab/ndt7` and `ws` installed from the committed lock file.

    Skips (with the reason) only when node/npm are absent or npm cannot install the packages.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are needed for the official ndt7 client (Debian: apt-get install nodejs npm)")
    if not (NODE_DIR / "node_modules" / "@m-lab" / "ndt7" / "package.json").exists():
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            pytest.skip(f"npm ci --prefix {NODE_DIR} failed, cannot install @m-lab/ndt7: {proc.stderr[-500:]}")
    return node


def run_official_client(node: str, *args: str, timeout_s: float = 60.0) -> tuple[int, dict[str, Any], str]:
    """(return code, the harness's JSON answer, stderr) of one ndt7 download+upload run."""
    proc = subprocess.run([node, str(RUNNER), *args], capture_output=True, text=True, timeout=timeout_s, cwd=NODE_DIR)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    answer = json.loads(lines[-1]) if lines else {}
    return proc.returncode, answer, proc.stderr
