"""The wheel holds every component under the `ispeed` namespace, the migrations, and the command."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_wheel_contents(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = tmp_path.glob("ispeed-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "ispeed/core/store/migrations/0001_measurements.sql",
        "ispeed/core/store/base.py",
        "ispeed/server/app.py",
        "ispeed/client/engine.py",
        "ispeed/cli/main.py",
        "ispeed/aggregator/export.py",
        "ispeed/admin_geo/__init__.py",
        "ispeed/admin_geo/data/communes.csv",
        "ispeed/_site/testpage/index.html",
    ):
        assert required in names, required
    tops = {n.split("/")[0] for n in names}
    assert tops <= {"ispeed", next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))}
    assert "ispeed/__init__.py" not in names  # a namespace package, extendable by components
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "ispeed = ispeed.cli.main:main" in zipfile.ZipFile(wheel).read(entry).decode()
