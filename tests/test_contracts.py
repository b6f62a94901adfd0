"""Typed contracts between the parts: cells, the site's month, the simulation's context."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import typing

import numpy as np
import pytest

from ispeed.aggregator.methodology import Methodology
from ispeed.aggregator.places import load_places
from ispeed.aggregator.simulate import SimulationConfig, generate
from ispeed.core.stats import ADDED_COLUMNS, METHOD_COLUMNS, STATS_COLUMNS, STATS_CSV_COLUMNS, Cell, empty_cell
from ispeed.publisher.model import Geography, MonthData


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


def _simulated_digest(cfg: SimulationConfig) -> str:
    digest = hashlib.sha256()
    for columns in generate(cfg, load_places()):
        for name, values in columns.items():
            array = np.asarray(values)
            digest.update(f"{name}:{array.dtype}:{array.tolist()!r}\n".encode())
    return digest.hexdigest()


def test_a_seed_simulates_the_same_tests_as_before() -> None:
    """The simulation's typed context (and any refactor) keeps every value of a seed's tests; a new
    numpy whose random streams changed would fail here too (then say so in the release notes)."""
    cfg = SimulationConfig(year=2025, month=7, tests=3000, seed=3)
    assert _simulated_digest(cfg) == "535d120e5c3fb4d9bd3ce24bef34858b51318821e78fd20eba25c4a0903ab88c"
