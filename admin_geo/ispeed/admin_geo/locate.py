"""GPS position -> commune and province by the nearest commune centroid (a documented approximation).

Method. Each commune is represented by its centroid. A position belongs to the commune whose
centroid is nearest (great-circle), found with a scipy KD-tree over unit vectors, so that chord
length is monotonic in distance. This is a Voronoi approximation of the real boundaries: near a
boundary a point can be given to the neighbour, more often where communes differ much in size.
When an operator supplies real boundary polygons (`boundaries.Boundaries`), they are preferred.

Guards, all documented in `ispeed geo locate --help`:
- outside Vietnam's bounding box (mainland and the Hoàng Sa / Trường Sa archipelagos) -> None;
- farther from the nearest centroid than that commune's reach -> None (sea, neighbouring country).
  Reach = max(MIN_REACH_KM, REACH_FACTOR x the radius of a disc of the commune's area); the two
  archipelago special zones have a fixed reach (their land area says nothing about their extent);
- a coarse fix (accuracy_m) larger than the commune's radius (at least COMMUNE_MIN_ACCURACY_M)
  keeps only the province; larger than PROVINCE_MAX_ACCURACY_M -> None.

Single lookups use a lazily filled grid of candidate lists (exact: every centroid that can be the
nearest for some point of the cell, from one KD-tree ball query per cell), so a repeated cell
costs a few float operations in Python; `locate_many` queries the KD-tree in bulk.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ispeed.admin_geo.units import Commune, communes, province_index
from ispeed.core.errors import ValidationError

if TYPE_CHECKING:
    from ispeed.admin_geo.boundaries import Boundaries

EARTH_RADIUS_KM = 6371.0088
# Vietnam including Hoàng Sa (~16.5N 112E) and Trường Sa (~7.5-11.5N 111.5-117.8E).
LAT_RANGE = (6.0, 23.5)
LON_RANGE = (102.0, 118.0)
MIN_REACH_KM = 8.0
REACH_FACTOR = 3.0
ARCHIPELAGO_REACH_KM = {"20333": 200.0, "22736": 450.0}  # Đặc khu Hoàng Sa, Đặc khu Trường Sa
COMMUNE_MIN_ACCURACY_M = 500.0
PROVINCE_MAX_ACCURACY_M = 20_000.0
GRID_DEG = 0.02
GRID_CACHE_MAX_CELLS = 200_000


class Placement(NamedTuple):
    """Where a position was placed; commune fields are None when only the province is known."""

    province_code: str
    province_name: str
    commune_code: str | None
    commune_name: str | None
    distance_km: float | None  # to the commune centroid (None for polygons and province-only)
    method: str  # "centroid" or "polygon"


def check_position(lat: object, lon: object, accuracy_m: object = None) -> tuple[float, float, float | None]:
    """Validated floats; ValidationError names the bad field and the allowed range."""
    out = []
    for field, value, limit in (("lat", lat, 90.0), ("lon", lon, 180.0)):
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValidationError(field, f"{value!r} is not a number of degrees") from None
        if not math.isfinite(number) or abs(number) > limit:
            raise ValidationError(field, f"{value!r} is outside -{limit:g}..{limit:g} degrees")
        out.append(number)
    acc: float | None = None
    if accuracy_m is not None:
        try:
            acc = float(accuracy_m)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValidationError("accuracy_m", f"{accuracy_m!r} is not a number of metres") from None
        if not math.isfinite(acc) or acc < 0:
            raise ValidationError("accuracy_m", f"{accuracy_m!r} must be a finite number of metres >= 0")
    return out[0], out[1], acc


def _unit_vector(lat: float, lon: float) -> tuple[float, float, float]:
    la, lo = math.radians(lat), math.radians(lon)
    c = math.cos(la)
    return c * math.cos(lo), c * math.sin(lo), math.sin(la)


def _chord_to_km(chord: float) -> float:
    return 2.0 * EARTH_RADIUS_KM * math.asin(min(1.0, chord / 2.0))


class Locator:
    """Nearest-centroid placement over the shipped communes, optionally refined by polygons."""

    def __init__(self, boundaries: Boundaries | None = None) -> None:
        from scipy.spatial import cKDTree  # heavy: only when a locator is built

        self._communes: tuple[Commune, ...] = communes()
        self._xyz = [_unit_vector(c.lat, c.lon) for c in self._communes]
        self._tree: Any = cKDTree(self._xyz)
        areas = sorted(c.area_km2 for c in self._communes if c.area_km2)
        median_area = areas[len(areas) // 2]
        self._radius_km = [math.sqrt((c.area_km2 or median_area) / math.pi) for c in self._communes]
        self._reach_km = [
            ARCHIPELAGO_REACH_KM.get(c.code, max(MIN_REACH_KM, REACH_FACTOR * r))
            for c, r in zip(self._communes, self._radius_km, strict=True)
        ]
        self._provinces = province_index()
        self._grid: dict[tuple[int, int], tuple[tuple[int, float, float, float], ...]] = {}
        self._boundaries = boundaries

    def _cell(self, key: tuple[int, int]) -> tuple[tuple[int, float, float, float], ...]:
        lat0, lon0 = key[0] * GRID_DEG, key[1] * GRID_DEG
        center = _unit_vector(lat0 + GRID_DEG / 2, lon0 + GRID_DEG / 2)
        half_diag = max(
            math.dist(center, _unit_vector(lat0 + dy, lon0 + dx)) for dy in (0, GRID_DEG) for dx in (0, GRID_DEG)
        )
        nearest, _ = self._tree.query(center)
        # Any point p of the cell has |p-c| <= h; its nearest centroid n has |p-n| <= |p-c| + |c-i0|,
        # hence |c-n| <= d0 + 2h: the ball below holds every possible nearest centroid.
        radius = float(nearest) + 2.0 * half_diag + 1e-12
        idx = sorted(self._tree.query_ball_point(center, radius))
        cell = tuple((i, *self._xyz[i]) for i in idx)
        if len(self._grid) >= GRID_CACHE_MAX_CELLS:
            self._grid.clear()
        self._grid[key] = cell
        return cell

    def nearest(self, lat: float, lon: float) -> tuple[int, float]:
        """Index of the nearest commune centroid and its distance in km (position already validated)."""
        key = (math.floor(lat / GRID_DEG), math.floor(lon / GRID_DEG))
        cell = self._grid.get(key) or self._cell(key)
        x, y, z = _unit_vector(lat, lon)
        best_i, best_d2 = -1, 9.0
        for i, cx, cy, cz in cell:
            d2 = (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2
            if d2 < best_d2:
                best_i, best_d2 = i, d2
        return best_i, _chord_to_km(math.sqrt(best_d2))

    def locate(self, lat: object, lon: object, accuracy_m: object = None) -> Placement | None:
        """Commune and province of a position, province only for a coarse fix, None outside Vietnam."""
        la, lo, acc = check_position(lat, lon, accuracy_m)
        if not (LAT_RANGE[0] <= la <= LAT_RANGE[1] and LON_RANGE[0] <= lo <= LON_RANGE[1]):
            return None
        if acc is not None and acc > PROVINCE_MAX_ACCURACY_M:
            return None
        method = "centroid"
        dist: float | None = None
        i = -1
        if self._boundaries is not None:
            i, covered = self._polygon_index(la, lo)
            if i < 0 and covered:
                return None
            method = "polygon" if i >= 0 else method
        if i < 0:
            i, dist_km = self.nearest(la, lo)
            if dist_km > self._reach_km[i]:
                return None
            dist = round(dist_km, 3)
        c = self._communes[i]
        prov = self._provinces[c.province_code]
        if acc is not None and acc > max(COMMUNE_MIN_ACCURACY_M, 1000.0 * self._radius_km[i]):
            return Placement(prov.code, prov.name, None, None, None, method)
        return Placement(prov.code, prov.name, c.code, c.full_name, dist, method)

    def _polygon_index(self, lat: float, lon: float) -> tuple[int, bool]:
        """(index of the commune whose polygon holds the point or -1, whether polygons cover the area)."""
        assert self._boundaries is not None
        _, idx = self._tree.query(_unit_vector(lat, lon), k=min(24, len(self._communes)))
        covered = False
        for i in idx.tolist():
            inside = self._boundaries.contains(self._communes[i].code, lat, lon)
            if inside:
                return i, True
            covered = covered or inside is not None
        return -1, covered

    def locate_many(self, lats: Sequence[float], lons: Sequence[float]) -> list[str | None]:
        """Commune codes for many valid positions at once (bulk KD-tree query; no accuracy handling)."""
        import numpy as np

        la = np.radians(np.asarray(lats, dtype=float))
        lo = np.radians(np.asarray(lons, dtype=float))
        xyz = np.column_stack((np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)))
        chord, idx = self._tree.query(xyz)
        dist_km = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, chord / 2.0))
        reach = np.asarray(self._reach_km)[idx]
        lat_deg, lon_deg = np.degrees(la), np.degrees(lo)
        ok = (
            (dist_km <= reach)
            & (lat_deg >= LAT_RANGE[0])
            & (lat_deg <= LAT_RANGE[1])
            & (lon_deg >= LON_RANGE[0])
            & (lon_deg <= LON_RANGE[1])
        )
        return [self._communes[i].code if good else None for i, good in zip(idx.tolist(), ok.tolist(), strict=True)]
