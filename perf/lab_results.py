"""How the network labs (accuracy, quality, RPM) keep their results: JSON beside a Markdown table."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write(
    out: Path, meta: dict[str, Any], rows: list[dict[str, Any]], markdown: Callable[[list[dict[str, Any]], Any], str]
) -> None:
    """`out`.json holds meta and rows, `out`.md the table `markdown` makes of them (also printed)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    table = markdown(rows, meta)
    out.with_suffix(".md").write_text(table)
    print(table)
