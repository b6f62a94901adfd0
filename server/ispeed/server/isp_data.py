"""What an ISP may read, as SQL pages: its own cells and tests, and other providers' published cells.

Every query takes the provider from the verified key (the caller passes it) and never from the
request. Pages are keyset-paginated on the tables' sort keys (`... > last row`, `LIMIT n`), so a
download is many short queries on the store thread: a month is never in memory, and ingest
interleaves with a long download instead of waiting behind it.

- stats: `monthly_stats` rows of the month where `provider = <own>` (every cell, suppressed
  ones with their counts) or `published = 1` (what the public site shows of everyone else).
- tests: the month's `measurements` (FINAL: a replayed test counts once) of the own provider,
  in the open-data export's privacy-safe columns (no IP, no raw device id).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from ispeed.core.opendata import EXPORT_COLUMNS, SELECT_LIST, csv_cells
from ispeed.core.schema import NETWORK_TYPES
from ispeed.core.stats import LEVELS, STATS_CSV_COLUMNS, decode_row, format_value
from ispeed.core.store import Store
from ispeed.core.timeutil import month_bounds

STATS_OUT: tuple[str, ...] = STATS_CSV_COLUMNS
TESTS_OUT: tuple[str, ...] = EXPORT_COLUMNS

_STATS_KEY = ("province_code", "commune_code", "provider")
_TESTS_KEY = ("network_type", "province_code", "commune_code", "started_at", "test_id")


def keyset_after(columns: Sequence[str]) -> str:
    """SQL for `(c0, c1, …) > ({a0}, {a1}, …)` spelled with OR/AND (18.16 has no tuple compare)."""
    last = len(columns) - 1
    expr = f"{columns[last]} > {{a{last}}}"
    for i in range(last - 1, -1, -1):
        expr = f"({columns[i]} > {{a{i}}} OR ({columns[i]} = {{a{i}}} AND {expr}))"
    return expr


def months(store: Store, provider: str) -> list[dict[str, Any]]:
    """Months with published statistics or with tests of `provider`, newest first."""
    with_stats = {r[0] for r in store.query("SELECT DISTINCT month FROM {db}.monthly_stats")}
    with_tests = {
        f"{int(r[0]) // 100:04d}-{int(r[0]) % 100:02d}"
        for r in store.query(
            "SELECT DISTINCT toYYYYMM(local_date) FROM {db}.measurements WHERE provider = {provider}",
            {"provider": provider},
        )
    }
    return [
        {"month": m, "stats": m in with_stats, "tests": m in with_tests}
        for m in sorted(with_stats | with_tests, reverse=True)
    ]


def stats_groups(store: Store, month: str) -> list[tuple[str, str]]:
    """(network type, level) pairs of an aggregated month, in the public stats.csv order."""
    rows = store.query(
        "SELECT DISTINCT network_type, level FROM {db}.monthly_stats WHERE month = {month}", {"month": month}
    )
    nt_order = {n: i for i, n in enumerate(NETWORK_TYPES)}
    lv_order = {n: i for i, n in enumerate(LEVELS)}
    groups = [(network_type, level) for network_type, level in rows]
    return sorted(groups, key=lambda g: (nt_order.get(g[0], 99), g[0], lv_order.get(g[1], 99), g[1]))


def stats_page(
    store: Store, month: str, provider: str, group: tuple[str, str], after: Sequence[Any] | None, limit: int
) -> list[tuple[Any, ...]]:
    """One page of the month's cells visible to `provider` within a (network type, level) group."""
    params: dict[str, Any] = {"month": month, "provider": provider, "nt": group[0], "level": group[1], "limit": limit}
    cond = ""
    if after is not None:
        cond = " AND " + keyset_after(_STATS_KEY)
        params.update({f"a{i}": after[STATS_OUT.index(c)] for i, c in enumerate(_STATS_KEY)})
    return store.query(
        f"SELECT {', '.join(STATS_OUT)} FROM {{db}}.monthly_stats"
        " WHERE month = {month} AND network_type = {nt} AND level = {level}"
        f" AND (provider = {{provider}} OR published = 1){cond}"
        f" ORDER BY {', '.join(_STATS_KEY)} LIMIT {{limit}}",
        params,
    )


def tests_page(
    store: Store, year: int, month: int, provider: str, after: Sequence[Any] | None, limit: int
) -> list[tuple[Any, ...]]:
    """One page of the month's tests of `provider`, in the export columns."""
    start, end = month_bounds(year, month)
    params: dict[str, Any] = {"start": start, "end": end, "provider": provider, "limit": limit}
    cond = ""
    if after is not None:
        cond = " AND " + keyset_after(_TESTS_KEY)
        for i, c in enumerate(_TESTS_KEY):
            value = after[TESTS_OUT.index(c)]
            params[f"a{i}"] = dt.datetime.fromtimestamp(int(value), dt.UTC) if c == "started_at" else value
    return store.query(
        f"SELECT {SELECT_LIST} FROM {{db}}.measurements FINAL"
        " WHERE local_date >= {start} AND local_date < {end} AND provider = {provider}"
        f"{cond} ORDER BY {', '.join(_TESTS_KEY)} LIMIT {{limit}}",
        params,
    )


def stats_csv_row(row: Sequence[Any]) -> list[str]:
    """A monthly_stats row as the public stats.csv writes it (true/false, empty rank 0)."""
    cell = decode_row(STATS_OUT, row)
    return [format_value(cell.get(c)) for c in STATS_OUT]


def tests_csv_row(row: Sequence[Any]) -> list[str]:
    """A test row as the open-data export writes it."""
    return [str(value) for value in csv_cells(row)]
