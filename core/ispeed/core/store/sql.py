"""Render SQL with safely quoted values, one way for both backends.

Placeholders are `{name}`; `{db}` is the store's database identifier, every other name is a
value quoted here (strings escaped, numbers checked finite, sequences as tuples).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def quote(value: Any) -> str:
    """One ClickHouse literal for a Python value."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write non-finite number {value!r} into SQL")
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"toDateTime({int(value.timestamp())}, 'UTC')"
    if isinstance(value, dt.date):
        return f"toDate('{value.isoformat()}')"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        if not items:
            raise ValueError("cannot write an empty list into SQL")
        return "(" + ", ".join(quote(v) for v in items) + ")"
    raise TypeError(f"cannot write {type(value).__name__} into SQL")


def render(sql: str, database: str, params: Mapping[str, Any] | None = None) -> str:
    params = params or {}

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "db":
            return database
        if name not in params:
            raise KeyError(f"SQL placeholder {{{name}}} has no value")
        return quote(params[name])

    return _PLACEHOLDER.sub(sub, sql)
