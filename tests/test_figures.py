"""The result page written by the server (`/r/<id>`, its share image) and the test page drawn by the
browser write the same stored figure the same way: a shared link never shows 40640 RPM where the
tester's page showed 40641."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from ispeed.server import figures

# halves of every kind: exact in binary (0.5, 12.25, 1234.5) and not (0.15, 2.675, 1.005)
VALUES = [0.49999999999999994, -0.04, 0.5, 1.5, 2.5, 40640.5, 0.15, 0.25, 0.35, 1.005, 2.675]
VALUES += [12.25, 12.35, 999.95, 1234.5, 99.95, 0.05, 7.0]


def _node(script: str) -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: scripts/setup.sh test installs it (Debian's nodejs)")
    out = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)


def test_fixed_writes_a_number_as_javascripts_tofixed() -> None:
    cases = [(v, d) for v in VALUES for d in (0, 1, 2)]
    browser = _node(f"console.log(JSON.stringify({json.dumps(cases)}.map(([v, d]) => v.toFixed(d))))")
    assert [figures.fixed(v, d) for v, d in cases] == browser


def test_rounded_is_javascripts_math_round() -> None:
    values = VALUES + [-0.5, -1.5, -2.5]
    browser = _node(f"console.log(JSON.stringify({json.dumps(values)}.map((v) => String(Math.round(v)))))")
    assert [str(figures.rounded(v)) for v in values] == browser
