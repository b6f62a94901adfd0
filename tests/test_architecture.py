"""The component borders of docs/architecture.md: which part may import which (lazy imports too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("core", "client", "admin_geo", "server", "aggregator", "publisher", "cli")
# part -> the other parts it may import (every part may import itself)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "client": {"core"},
    "admin_geo": {"core"},
    "server": {"core", "admin_geo"},
    "aggregator": {"core", "admin_geo"},
    "publisher": {"core", "aggregator", "admin_geo"},
    "cli": set(PARTS),
}


def imported_parts(path: Path) -> set[tuple[str, int]]:
    """The `ispeed.<part>` packages a module imports anywhere (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + ([f"{node.module}.{a.name}" for a in node.names] if node.module == "ispeed" else [])
        for name in names:
            parts = name.split(".")
            if parts[0] == "ispeed" and len(parts) > 1 and parts[1] in PARTS:
                found.add((parts[1], node.lineno))
    return found


def crossings() -> list[str]:
    out = []
    for part in PARTS:
        for path in sorted((ROOT / part / "ispeed" / part).rglob("*.py")):
            for other, line in sorted(imported_parts(path)):
                if other != part and other not in ALLOWED[part]:
                    out.append(f"{path.relative_to(ROOT)}:{line} imports ispeed.{other}")
    return out


def test_every_part_exists_where_the_rules_expect_it() -> None:
    for part in PARTS:
        assert (ROOT / part / "ispeed" / part / "__init__.py").is_file(), part


def test_no_import_crosses_a_component_border() -> None:
    assert crossings() == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from ispeed.aggregator.publish import publish\n", {"aggregator"}),
        ("def f():\n    from ispeed.server.app import running\n", {"server"}),
        ("import ispeed.client.engine as e\n", {"client"}),
        ("from ispeed import publisher\n", {"publisher"}),
        ("from . import sibling\nimport json\n", set()),
    ],
)
def test_the_scanner_sees_every_form_of_import(tmp_path: Path, source: str, expected: set[str]) -> None:
    module = tmp_path / "m.py"
    module.write_text(source)
    assert {part for part, _ in imported_parts(module)} == expected
