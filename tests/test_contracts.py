"""Typed contracts between the parts: cells, the site's month, the simulation's context."""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing

import pytest

from ispeed.aggregator.methodology import Methodology
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
