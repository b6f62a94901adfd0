"""The client stays light: importing it must not load pandas, scipy, chDB or clickhouse-driver."""

import json
import subprocess
import sys

HEAVY = ("pandas", "scipy", "chdb", "clickhouse_driver", "numpy", "ispeed.server", "ispeed.admin_geo")


def test_client_imports_no_heavy_modules() -> None:
    code = (
        "import sys, json, ispeed.client, ispeed.client.engine, ispeed.client.cli, ispeed.client.config;"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} "
        f"or any(m.startswith(h) for h in {HEAVY!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_cli_test_command_parses_without_heavy_modules() -> None:
    code = (
        "import sys, json; from ispeed.cli.main import build_parser; build_parser();"
        "heavy = ('pandas', 'scipy', 'chdb', 'clickhouse_driver');"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
