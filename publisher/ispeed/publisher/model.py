"""What one month of the site shows: its cells indexed by place and ISP, names, and the tables of its pages.

A table is a list of rows (dicts with the `TABLE_COLUMNS` keys) plus an id; the same rows are
rendered as HTML and written as CSV and JSON (`data/YYYY-MM/tables/<id>.csv|json`), so every
table on the site can be downloaded exactly as shown.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ispeed.aggregator.estimates import Estimate
from ispeed.aggregator.methodology import Methodology
from ispeed.aggregator.targets import TargetsFile
from ispeed.core.stats import DISTRIBUTION_COLUMNS, QUALITY_COLUMNS, Cell, empty_cell

TABLE_COLUMNS: tuple[str, ...] = (
    "month",
    "network_type",
    "level",
    "province_code",
    "province_name",
    "commune_code",
    "commune_name",
    "provider",
    "tests",
    "samples",
    "devices",
    "download_median_mbps",
    "download_ci_low_mbps",
    "download_ci_high_mbps",
    "upload_median_mbps",
    "latency_median_ms",
    "jitter_median_ms",
    "rank",
    "rank_shared",
    "published",
    # added with method v2's figures (issues #21, #22), as stats.csv names them
    *QUALITY_COLUMNS,
    *DISTRIBUTION_COLUMNS,
)
CellKey = tuple[str, str, str, str, str]  # network type, level, province, commune, provider


def slugify(text: str) -> str:
    """ASCII URL slug: `FPT Telecom` -> `fpt-telecom`, `Hà Nội` -> `ha-noi`."""
    text = text.replace("đ", "d").replace("Đ", "D")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "x"


@dataclass(frozen=True)
class Place:
    code: str
    name: str  # short name, e.g. "Hà Nội"
    full_name: str  # e.g. "Thành phố Hà Nội"
    lat: float
    lon: float
    province_code: str = ""


@dataclass
class Geography:
    """Provinces and communes (admin_geo), looked up by code; unknown codes show as themselves."""

    provinces: dict[str, Place]
    communes: dict[str, Place]

    @classmethod
    def load(cls) -> Geography:
        from ispeed.admin_geo import communes, provinces

        provs = {p.code: Place(p.code, p.name, p.full_name, p.lat, p.lon) for p in provinces()}
        comms = {c.code: Place(c.code, c.name, c.full_name, c.lat, c.lon, c.province_code) for c in communes()}
        return cls(provs, comms)

    def province(self, code: str) -> Place:
        return self.provinces.get(code) or Place(code, code, code, 0.0, 0.0)

    def commune(self, code: str) -> Place:
        return self.communes.get(code) or Place(code, code, code, 0.0, 0.0)

    def communes_of(self, province_code: str) -> list[Place]:
        return sorted((c for c in self.communes.values() if c.province_code == province_code), key=lambda c: c.code)


@dataclass(kw_only=True)
class MonthData:
    """A month as published: cells, changes, the 12-month national trend, and how it was built.

    Built with keywords only (eleven fields, several of one type: a positional slip would pass).
    """

    month: str
    status: str  # "final" or "provisional"
    data_until: dt.date  # last local day the figures cover
    method: Methodology
    built_at: dt.datetime
    cells: list[Cell]
    changes: list[dict[str, Any]]
    trend_months: list[str]
    trend: dict[tuple[str, str], list[float | None]]  # (network type, provider) -> download per month
    export_tests: int | None = None
    geo: Geography = field(default_factory=Geography.load)
    servers: list[dict[str, Any]] = field(default_factory=list)  # per-test-server health (server_health)
    estimates: list[Estimate] = field(default_factory=list)  # commune cells below min_samples (estimates.py)
    targets: TargetsFile | None = None  # the national targets the Targets page follows
    target_history: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)  # month -> its cells
    reports: dict[str, str] = field(default_factory=dict)  # language -> the month's PDF file name

    @cached_property
    def estimate_index(self) -> dict[tuple[str, str, str], Estimate]:
        """(network type, commune code, provider) -> the estimate of that commune cell."""
        return {(e.network_type, e.commune_code, e.provider): e for e in self.estimates}

    def estimate(self, network_type: str, commune: str, provider: str = "") -> Estimate | None:
        return self.estimate_index.get((network_type, commune, provider))

    @cached_property
    def index(self) -> dict[CellKey, Cell]:
        return {
            (c["network_type"], c["level"], c["province_code"], c["commune_code"], c["provider"]): c for c in self.cells
        }

    @cached_property
    def change_index(self) -> dict[CellKey, dict[str, Any]]:
        return {
            (c["network_type"], c["level"], c["province_code"], c["commune_code"], c["provider"]): c
            for c in self.changes
        }

    @cached_property
    def shared_ranks(self) -> set[tuple[Any, ...]]:
        """(group, rank) pairs held by more than one cell: shown as ties (`=2`)."""
        from collections import Counter

        from ispeed.aggregator.rank import rank_group

        counts = Counter((rank_group(c), c["rank"]) for c in self.cells if c["published"])
        return {key for key, n in counts.items() if n > 1}

    @cached_property
    def providers(self) -> list[str]:
        names = {c["provider"] for c in self.cells if c["provider"] and c["level"] == "national"}
        return sorted(names, key=lambda n: n.casefold())

    @property
    def network_types(self) -> tuple[str, ...]:
        return self.method.network_types

    def cell(
        self, network_type: str, level: str, province: str = "", commune: str = "", provider: str = ""
    ) -> Cell | None:
        return self.index.get((network_type, level, province, commune, provider))

    def change(
        self, network_type: str, level: str = "national", province: str = "", commune: str = "", provider: str = ""
    ) -> dict[str, Any] | None:
        return self.change_index.get((network_type, level, province, commune, provider))

    # -- table rows ---------------------------------------------------------------------------
    def row(
        self,
        cell: Cell | None,
        network_type: str,
        level: str,
        province: str = "",
        commune: str = "",
        provider: str = "",
    ) -> dict[str, Any]:
        """A table row for a cell; a place with no tests at all becomes an empty, unpublished row."""
        from ispeed.aggregator.rank import rank_group

        base = cell or empty_cell(self.month, network_type, level, province, commune, provider)
        row: dict[str, Any] = {k: base.get(k) for k in TABLE_COLUMNS}
        row["province_name"] = self.geo.province(province).name if province else ""
        row["commune_name"] = self.geo.commune(commune).full_name if commune else ""
        row["rank_shared"] = bool(cell and cell["published"] and (rank_group(cell), cell["rank"]) in self.shared_ranks)
        row["published"] = bool(base["published"])
        return row

    def provider_rows(
        self, network_type: str, level: str = "national", province: str = "", commune: str = ""
    ) -> list[dict[str, Any]]:
        rows = [
            self.row(self.cell(network_type, level, province, commune, p), network_type, level, province, commune, p)
            for p in self.providers
        ]
        return sort_ranked([r for r in rows if r["tests"] or level == "national"])

    def province_rows(self, network_type: str, provider: str = "") -> list[dict[str, Any]]:
        rows = [
            self.row(
                self.cell(network_type, "province", code, "", provider), network_type, "province", code, "", provider
            )
            for code in sorted(self.geo.provinces)
        ]
        return sort_ranked(rows)

    def commune_rows(self, network_type: str, province: str) -> list[dict[str, Any]]:
        rows = [
            self.row(self.cell(network_type, "commune", province, c.code), network_type, "commune", province, c.code)
            for c in self.geo.communes_of(province)
        ]
        return sort_ranked(rows)


def sort_ranked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Published rows by rank then median (best first); suppressed rows after them by tests."""
    return sorted(
        rows,
        key=lambda r: (
            not r["published"],
            r["rank"] or 0,
            -(r["download_median_mbps"] or 0.0),
            -r["tests"],
            r["province_code"],
            r["commune_code"],
            r["provider"],
        ),
    )


@dataclass(frozen=True)
class Table:
    """One table of a page: its id (file name of its CSV/JSON), the kind of its first column, rows."""

    id: str
    kind: str  # "provider", "province" or "commune"
    rows: list[dict[str, Any]]
    sortable: bool = False
