"""Typed contracts between the parts: cells, the site's month, the simulation, rows of store queries."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import typing
from typing import Any

import numpy as np
import pytest

from ispeed.aggregator import server_health
from ispeed.aggregator.aggregate import month_query_params
from ispeed.aggregator.cells_sql import CELL_COLUMNS, PlaceRow, month_cells_query, places_query
from ispeed.aggregator.estimates_sql import SAMPLES_QUERY, SampleRow
from ispeed.aggregator.methodology import Methodology
from ispeed.aggregator.places import load_places
from ispeed.aggregator.simulate import SimulationConfig, generate
from ispeed.core.stats import ADDED_COLUMNS, METHOD_COLUMNS, STATS_COLUMNS, STATS_CSV_COLUMNS, Cell, empty_cell
from ispeed.core.store import Store
from ispeed.publisher.model import Geography, MonthData
from ispeed.server import audit, isp_keys


def _optional_keys() -> set[str]:
    # stats.py's postponed annotations hide NotRequired from Cell.__optional_keys__ before Python 3.12
    hints = typing.get_type_hints(Cell, include_extras=True)
    return {k for k, v in hints.items() if typing.get_origin(v) is typing.NotRequired}


def test_a_cell_has_the_stats_csv_columns_and_only_those() -> None:
    # every key the aggregator writes is required; the methodology columns come with stored cells only
    assert set(Cell.__annotations__) == set(STATS_CSV_COLUMNS)
    assert _optional_keys() == set(METHOD_COLUMNS)


def test_an_empty_cell_is_suppressed_with_empty_figures() -> None:
    cell = empty_cell("2025-07", "5g", "commune", "01", "00004", "Viettel")
    assert set(cell) == set(STATS_COLUMNS + ADDED_COLUMNS) == set(Cell.__annotations__) - _optional_keys()
    assert (cell["month"], cell["network_type"], cell["level"]) == ("2025-07", "5g", "commune")
    assert (cell["province_code"], cell["commune_code"], cell["provider"]) == ("01", "00004", "Viettel")
    assert (cell["tests"], cell["samples"], cell["devices"], cell["rank"], cell["published"]) == (0, 0, 0, None, False)
    assert [k for k, v in cell.items() if v is not None and k not in STATS_COLUMNS[:9] + ("published",)] == []


def test_month_data_takes_keywords_only() -> None:
    values = {
        "month": "2025-07",
        "status": "final",
        "data_until": dt.date(2025, 7, 31),
        "method": Methodology(),
        "built_at": dt.datetime(2025, 8, 1, tzinfo=dt.UTC),
        "cells": [empty_cell("2025-07", "fixed", "national")],
        "changes": [],
        "trend_months": ["2025-07"],
        "trend": {},
        "export_tests": None,
        "geo": Geography({}, {}),
    }
    with pytest.raises(TypeError):
        MonthData(*values.values())  # type: ignore[misc]
    md = MonthData(**values)  # type: ignore[arg-type]
    assert md.cell("fixed", "national") == values["cells"][0]  # type: ignore[index]
    assert [f.name for f in dataclasses.fields(MonthData)][: len(values)] == list(values)


# drawn after every other column (method v2's): a seed's other columns stay what they were
QUALITY_DRAWS = frozenset(
    {"method_version", "ip_version", "udp_status", "udp_probes", "loss_down_pct", "loss_up_pct", "udp_rtt_ms"}
    | {"udp_rtt_p90_ms", "rpm_down", "rpm_up", "server_delay_p99_ms", "flags"}
)


def _simulated_digest(cfg: SimulationConfig, only: frozenset[str] | None = None) -> str:
    digest = hashlib.sha256()
    for columns in generate(cfg, load_places()):
        for name, values in columns.items():
            if (name in QUALITY_DRAWS) != (only == QUALITY_DRAWS):
                continue
            array = np.asarray(values)
            digest.update(f"{name}:{array.dtype}:{array.tolist()!r}\n".encode())
    return digest.hexdigest()


def test_a_seed_simulates_the_same_tests_as_before() -> None:
    """The simulation's typed context (and any refactor) keeps every value of a seed's tests; a new
    numpy whose random streams changed would fail here too (then say so in the release notes).
    Changed on purpose with #22 item 5 (the speeds of Vietnam in 2025: plan tiers, commune factors)."""
    cfg = SimulationConfig(year=2025, month=7, tests=3000, seed=3)
    # the columns before method v2's (method_version aside, which v2 tests change), then method
    # v2's own draws; both pinned again when the simulation took Vietnam's 2025 speeds (the quality
    # draws read the loaded latency, so they moved with them)
    assert _simulated_digest(cfg) == "0f8244d60fbbbb85e605924ae9c410267fe200307c10488485bce3dfa7e6a4a5"
    assert _simulated_digest(cfg, QUALITY_DRAWS) == "2d40a64c4d53e6c7959819d61a5570350bd96d2baa6ca0304c7fb5eb5d8265bd"


def _column_names(store: Store, sql: str, params: dict[str, Any]) -> list[str]:
    return [str(row[0]) for row in store.query(f"DESCRIBE ({sql})", params)]


def _read_as(field: str, column: str) -> bool:
    """A row field reads a query column of its own name, or `X_s` the Unix seconds of `X`."""
    return column == field or (field.endswith("_s") and column == f"toUnixTimestamp({field[:-2]})")


def test_named_rows_are_their_queries_columns_in_order(store: Store) -> None:
    """Rows are read by name (a NamedTuple or a column tuple per query); the names must be the
    query's own columns, in its order, so a column added or moved in the SQL fails here."""
    method = Methodology()
    month = month_query_params(2025, 7, method)
    health = server_health._params(2025, 7, True, {"hn-1": 10.0}, 0.8)
    cases: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
        (month_cells_query(method.ci_level, len(method.network_types)), month, CELL_COLUMNS),
        (server_health._TOTALS, health, server_health._Totals._fields),
        (server_health._REASONS, health, server_health._Reason._fields),
        (server_health._PEAKS, health, server_health._Peaks._fields),
        (audit._SELECT_ENTRIES, {"since": dt.datetime(2025, 1, 1, tzinfo=dt.UTC)}, audit._AuditRow._fields),
        (isp_keys._SELECT_KEYS % "1", {}, isp_keys._KeyRow._fields),
        (SAMPLES_QUERY, {**month, "network_types": list(method.network_types)}, SampleRow._fields),
    ]
    for sql, params, fields in cases:
        columns = _column_names(store, sql, params)
        assert len(columns) == len(fields) and all(map(_read_as, fields, columns)), (fields, columns)
    # the places query names its hashes by expression: each is the hash of the column it follows by three
    columns = _column_names(store, places_query(), {**month, "network_types": list(method.network_types)})
    names = PlaceRow._fields
    assert columns == list(names[:3]) + [f"cityHash64({n})" for n in names[:3]]
    assert names[3:] == ("province_h", "commune_h", "provider_h")
