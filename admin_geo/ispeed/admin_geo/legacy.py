"""Convert codes of the former 63 provinces and their wards to the units in force since 1 July 2025."""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ispeed.admin_geo.units import normalize_code, read_data_text
from ispeed.core.errors import ValidationError


@dataclass(frozen=True, slots=True)
class Conversion:
    """Where a former unit went: exact when it lies wholly in one new unit, else the candidates."""

    level: str  # "province" or "ward"
    old_code: str
    old_name: str
    new_codes: tuple[str, ...]
    exact: bool
    default_code: str | None  # the source's usual choice for a split ward; never applied silently

    @property
    def new_code(self) -> str | None:
        """The new code when the mapping is exact, else None (the caller must choose)."""
        return self.new_codes[0] if self.exact else None


@lru_cache(maxsize=1)
def _old_provinces() -> dict[str, tuple[str, str]]:
    rows = csv.DictReader(read_data_text("legacy_provinces.csv").splitlines())
    return {r["old_code"]: (r["full_name"], r["new_code"]) for r in rows}


@lru_cache(maxsize=1)
def _old_wards() -> dict[str, tuple[str, str, str, str]]:
    raw = resources.files("ispeed.admin_geo").joinpath("data", "legacy_wards.csv.gz").read_bytes()
    rows = csv.DictReader(gzip.decompress(raw).decode("utf-8").splitlines())
    return {
        r["old_code"]: (f"{r['name']}, {r['district']}", r["new_codes"], r["default_code"], r["exact"]) for r in rows
    }


def convert_old_province(code: object) -> Conversion:
    """Former province code -> its new province (every former province merged whole: always exact)."""
    key = normalize_code(code, 2, "old_province")
    try:
        name, new = _old_provinces()[key]
    except KeyError:
        raise ValidationError("old_province", f"{key!r} is not one of the 63 former province codes") from None
    return Conversion("province", key, name, (new,), True, new)


def convert_old_ward(code: object) -> Conversion:
    """Former ward/commune code -> new commune; a ward split between communes is reported ambiguous."""
    key = normalize_code(code, 5, "old_ward")
    try:
        name, new_codes, default, exact = _old_wards()[key]
    except KeyError:
        raise ValidationError("old_ward", f"{key!r} is not one of the 10,035 former ward/commune codes") from None
    return Conversion("ward", key, name, tuple(new_codes.split()), exact == "1", default or None)
