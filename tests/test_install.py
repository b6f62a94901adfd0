"""A citizen's `pip install ispeed`: the wheel without extras, in a fresh venv, is light and tests a full server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import tomllib
import venv
from pathlib import Path

import pytest

from ispeed.cli import extras
from ispeed.cli.main import build_parser
from tests.serve_process import ServeProcess

ROOT = Path(__file__).parents[1]
HEAVY = ("chdb", "chdb-core", "pandas", "numpy", "scipy", "clickhouse-driver", "pyarrow", "jinja2", "maxminddb")
IMPORT_NAMES = {"pillow": "PIL"}  # distributions whose module is named otherwise
_OFFLINE = (  # pip's words when the package registry cannot be reached at all
    "NewConnectionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Connection refused",
)


def _requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_extras_table_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    assert _requirement_names(project["dependencies"]) == {"aiohttp", "uvloop"}
    for extra in ("server", "aggregator"):
        modules = {IMPORT_NAMES.get(name, name.replace("-", "_")) for name in _requirement_names(optional[extra])}
        assert modules == set(extras.EXTRA_MODULES[extra]), extra
    assert optional["all"] == ["ispeed[server,aggregator]"]
    assert set(extras.EXTRA_MODULES["all"]) == set(extras.EXTRA_MODULES["server"]) | set(
        extras.EXTRA_MODULES["aggregator"]
    )


def test_libraries_whose_private_parts_are_used_are_bounded_above() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for rs in project["optional-dependencies"].values() for r in rs]
    for name, use, where in (
        ("aiohttp", "transport.set_protocol(sink)", "server/ispeed/server/upload_fast.py"),
        ("scipy", "_binom_ppf", "aggregator/ispeed/aggregator/ci.py"),
    ):
        bounds = {re.search(r"<([\d.]+)", r).group(1) for r in requirements if _requirement_names([r]) == {name}}  # type: ignore[union-attr]
        (bound,) = bounds  # one upper bound, the same in every extra
        lines = (ROOT / where).read_text().splitlines()
        at = next(i for i, line in enumerate(lines) if use in line)
        assert f"{name} <{bound}" in " ".join(lines[at - 1 : at + 1]), (where, use)  # a comment names it
    server = "\n".join(p.read_text() for p in (ROOT / "server/ispeed/server").glob("*.py"))
    assert "._server" not in server  # the listening port comes from runner.addresses (public)


def test_every_command_is_on_the_base_install_or_names_its_extra() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    commands = set(sub.choices)  # type: ignore[arg-type]
    assert commands == set(extras.BASE_COMMANDS) | set(extras.COMMAND_EXTRA)
    assert set(extras.COMMAND_EXTRA.values()) <= set(extras.EXTRA_MODULES)
    assert all(extras.missing_extra_message(command) is None for command in commands)  # this venv has all


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel installed without extras; its bin/ folder."""
    tmp = tmp_path_factory.mktemp("install")
    started = time.monotonic()
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp / "dist"), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp / "dist").glob("ispeed-*.whl")
    venv.create(tmp / "venv", with_pip=True)
    bin_dir = tmp / "venv" / "bin"
    pip = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if pip.returncode != 0 and any(word in pip.stderr for word in _OFFLINE):
        pytest.skip(f"the package registry is unreachable from here: {pip.stderr.strip().splitlines()[-1]}")
    assert pip.returncode == 0, pip.stderr[-3000:]
    print(f"built and installed the base package in {time.monotonic() - started:.0f} s")
    return bin_dir


def _installed(bin_dir: Path) -> set[str]:
    code = (
        "import importlib.metadata as m, json; print(json.dumps(sorted(d.metadata['Name'] for d in m.distributions())))"
    )
    out = subprocess.run([str(bin_dir / "python"), "-c", code], capture_output=True, text=True, check=True)
    return {name.lower().replace("_", "-") for name in json.loads(out.stdout)}


@pytest.mark.slow
def test_base_install_pulls_only_the_client(base_venv: Path) -> None:
    installed = _installed(base_venv)
    assert {"ispeed", "aiohttp", "uvloop"} <= installed
    assert not installed & set(HEAVY), sorted(installed & set(HEAVY))


@pytest.mark.slow
def test_base_install_names_the_missing_extra(base_venv: Path, tmp_path: Path) -> None:
    ispeed = str(base_venv / "ispeed")
    for argv, extra in (
        (["serve", "--port", "0"], "server"),
        (["isp-key", "list"], "server"),
        (["geo", "units"], "server"),
        (["export", "--month", "2025-07", "--out", "x.csv"], "aggregator"),
        (["aggregate", "--month", "2025-07", "--out", "x"], "aggregator"),
        (["simulate", "--month", "2025-07", "--tests", "10"], "aggregator"),
        (["publish", "--out", "x"], "aggregator"),
        (["demo", "--no-serve"], "all"),
    ):
        out = subprocess.run([ispeed, *argv], capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert out.returncode == 2, (argv, out.stderr)
        lines = out.stderr.splitlines()
        assert len(lines) == 1, (argv, out.stderr)
        assert lines[0].startswith(f"ispeed {argv[0]}: needs the '{extra}' extra"), lines
        assert lines[0].endswith(f"pip install 'ispeed[{extra}]'"), lines
        helped = subprocess.run([ispeed, *argv[:1], "--help"], capture_output=True, text=True, timeout=60)
        assert helped.returncode == 0 and "usage: ispeed" in helped.stdout, (argv, helped.stderr)


@pytest.mark.slow
def test_base_install_tests_a_full_server(base_venv: Path, tmp_path: Path) -> None:
    with ServeProcess(f"chdb:{tmp_path / 'store'}") as server:
        out = subprocess.run(
            [str(base_venv / "ispeed"), "test", "--server", server.url, "--json", "--duration", "2", "--streams", "2"]
            + ["--state-dir", str(tmp_path / "state")],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 0, out.stderr
    (line,) = out.stdout.strip().splitlines()
    result = json.loads(line)
    assert result["submitted"] is True and result["valid"] is True, result
    assert result["download_mbps"] > 100 and result["upload_mbps"] > 100, result
    assert result["streams"] == 2 and result["server"] == server.url, result
