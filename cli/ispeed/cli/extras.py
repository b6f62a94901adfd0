"""Which install extra each command needs, and one line naming it when it is missing.

`pip install ispeed` holds the client and the agent (`ispeed test`, `ispeed agent`); the other
commands need an extra of pyproject.toml's `[project.optional-dependencies]`. Whether an extra is
there is probed with `importlib.util.find_spec`, which finds a module without importing it
(importing chDB costs a second). `tests/test_cli.py` checks these tables against pyproject.toml.
"""

from __future__ import annotations

import importlib.util

# extra -> the top-level modules its distributions provide (in pyproject.toml's order)
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "server": (
        "chdb",
        "clickhouse_driver",
        "pandas",
        "numpy",
        "scipy",
        "jinja2",
        "maxminddb",
        "mmdb_writer",
        "PIL",
        "segno",
    ),
    "aggregator": ("chdb", "clickhouse_driver", "pandas", "numpy", "scipy", "jinja2", "weasyprint"),
}
EXTRA_MODULES["all"] = tuple(dict.fromkeys(EXTRA_MODULES["server"] + EXTRA_MODULES["aggregator"]))

# command -> the extra it needs; commands not named here run on the base install
COMMAND_EXTRA: dict[str, str] = {
    "serve": "server",
    "isp-key": "server",
    "geo": "server",
    "export": "aggregator",
    "aggregate": "aggregator",
    "simulate": "aggregator",
    "publish": "aggregator",
    "report": "aggregator",
    "demo": "all",
}
BASE_COMMANDS = ("test", "agent")

# module -> its distribution's name, where they differ (what `pip` would call it)
_DISTRIBUTION = {"clickhouse_driver": "clickhouse-driver", "mmdb_writer": "mmdb-writer"}


def missing_modules(extra: str) -> list[str]:
    """The modules of `extra` that cannot be found (none: the extra is installed)."""
    return [name for name in EXTRA_MODULES[extra] if importlib.util.find_spec(name) is None]


def missing_extra_message(command: str) -> str | None:
    """One line naming the extra `command` needs and how to install it, or None when it is there."""
    extra = COMMAND_EXTRA.get(command)
    if extra is None:
        return None
    missing = missing_modules(extra)
    if not missing:
        return None
    names = ", ".join(_DISTRIBUTION.get(name, name) for name in missing)
    return f"ispeed {command}: needs the '{extra}' extra (missing {names}): pip install 'ispeed[{extra}]'"
