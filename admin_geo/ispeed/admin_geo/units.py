"""The 34 provinces and 3,321 communes in force since 1 July 2025, loaded once from the shipped CSVs."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ispeed.core.errors import ValidationError

PROVINCE_COUNT = 34
COMMUNE_COUNT = 3321

# Unit type codes used in the data files -> the Vietnamese name of the type.
TYPE_NAMES: dict[str, str] = {
    "thanh_pho": "thành phố trực thuộc trung ương",
    "tinh": "tỉnh",
    "phuong": "phường",
    "xa": "xã",
    "dac_khu": "đặc khu",
}


@dataclass(frozen=True, slots=True)
class Province:
    """A province or centrally-run city (level 1)."""

    code: str
    name: str
    full_name: str
    slug: str
    type: str
    lat: float
    lon: float
    area_km2: float | None

    level = "province"

    @property
    def parent_code(self) -> str | None:
        return None

    @property
    def type_name(self) -> str:
        return TYPE_NAMES[self.type]


@dataclass(frozen=True, slots=True)
class Commune:
    """A commune, ward or special zone (level 2)."""

    code: str
    name: str
    full_name: str
    slug: str
    type: str
    province_code: str
    lat: float
    lon: float
    area_km2: float | None

    level = "commune"

    @property
    def parent_code(self) -> str:
        return self.province_code

    @property
    def type_name(self) -> str:
        return TYPE_NAMES[self.type]


def read_data_text(name: str) -> str:
    """The text of one shipped data file (package data, so it works from a wheel too)."""
    return resources.files("ispeed.admin_geo").joinpath("data", name).read_text(encoding="utf-8")


def _area(text: str) -> float | None:
    return float(text) if text else None


@lru_cache(maxsize=1)
def province_index() -> dict[str, Province]:
    rows = csv.DictReader(read_data_text("provinces.csv").splitlines())
    return {
        r["code"]: Province(
            r["code"],
            r["name"],
            r["full_name"],
            r["slug"],
            r["type"],
            float(r["lat"]),
            float(r["lon"]),
            _area(r["area_km2"]),
        )
        for r in rows
    }


@lru_cache(maxsize=1)
def commune_index() -> dict[str, Commune]:
    rows = csv.DictReader(read_data_text("communes.csv").splitlines())
    return {
        r["code"]: Commune(
            r["code"],
            r["name"],
            r["full_name"],
            r["slug"],
            r["type"],
            r["province_code"],
            float(r["lat"]),
            float(r["lon"]),
            _area(r["area_km2"]),
        )
        for r in rows
    }


@lru_cache(maxsize=1)
def _communes_by_province() -> dict[str, tuple[Commune, ...]]:
    grouped: dict[str, list[Commune]] = {code: [] for code in province_index()}
    for c in commune_index().values():
        grouped[c.province_code].append(c)
    return {code: tuple(items) for code, items in grouped.items()}


def normalize_code(value: object, width: int, field: str) -> str:
    """'1' or 1 -> '01' (width 2); anything but digits is a ValidationError naming the field."""
    text = str(value).strip()
    if not text.isdigit() or len(text) > width:
        raise ValidationError(field, f"{value!r} is not a {width}-digit code")
    return text.zfill(width)


def provinces() -> tuple[Province, ...]:
    """All 34 provinces and centrally-run cities, by code."""
    return tuple(province_index().values())


def province(code: object) -> Province:
    """The province with this 2-digit code; ValidationError if there is none."""
    key = normalize_code(code, 2, "province")
    try:
        return province_index()[key]
    except KeyError:
        raise ValidationError(
            "province", f"no province has code {key!r}; list them with `ispeed geo units --level province`"
        ) from None


def communes(province_code: object | None = None) -> tuple[Commune, ...]:
    """All 3,321 communes, or those of one province, by code."""
    if province_code is None:
        return tuple(commune_index().values())
    return _communes_by_province()[province(province_code).code]


def commune(code: object) -> Commune:
    """The commune with this 5-digit code; ValidationError if there is none."""
    key = normalize_code(code, 5, "commune")
    try:
        return commune_index()[key]
    except KeyError:
        raise ValidationError(
            "commune", f"no commune has code {key!r}; list them with `ispeed geo units --level commune`"
        ) from None
