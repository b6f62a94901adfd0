"""Operator-supplied commune boundary polygons (GeoJSON), preferred over centroids when present."""

from __future__ import annotations

import json
from pathlib import Path

from ispeed.core.errors import ConfigError

CODE_PROPERTIES = ("code", "commune_code", "ma_xa", "maXa", "ward_code")

Ring = list[tuple[float, float]]  # (lon, lat) vertices
Polygon = list[Ring]  # outer ring, then holes


def _inside_ring(ring: Ring, lon: float, lat: float) -> bool:
    """Even-odd ray casting on (lon, lat) as planar coordinates (fine at commune scale)."""
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


class Boundaries:
    """Polygons by 5-digit commune code, read from a GeoJSON FeatureCollection."""

    def __init__(self, polygons: dict[str, list[Polygon]]) -> None:
        self._polygons = polygons
        self._bbox = {
            code: (
                min(x for p in polys for x, _ in p[0]),
                min(y for p in polys for _, y in p[0]),
                max(x for p in polys for x, _ in p[0]),
                max(y for p in polys for _, y in p[0]),
            )
            for code, polys in polygons.items()
        }

    @classmethod
    def from_geojson(cls, path: str | Path) -> Boundaries:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError("boundaries", str(path), f"cannot read a GeoJSON file ({exc})") from exc
        polygons: dict[str, list[Polygon]] = {}
        for feature in doc.get("features", []):
            props = feature.get("properties") or {}
            code = next((str(props[k]).zfill(5) for k in CODE_PROPERTIES if props.get(k) is not None), None)
            geom = feature.get("geometry") or {}
            if code is None or geom.get("type") not in ("Polygon", "MultiPolygon"):
                continue
            parts = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
            for part in parts:
                polygons.setdefault(code, []).append([[(float(x), float(y)) for x, y, *_ in ring] for ring in part])
        if not polygons:
            raise ConfigError(
                "boundaries",
                str(path),
                f"no Polygon/MultiPolygon feature with a commune code property {CODE_PROPERTIES}",
            )
        return cls(polygons)

    def __len__(self) -> int:
        return len(self._polygons)

    def contains(self, code: str, lat: float, lon: float) -> bool | None:
        """Whether the commune's polygon holds the point; None when no polygon was supplied for it."""
        polys = self._polygons.get(code)
        if polys is None:
            return None
        x0, y0, x1, y1 = self._bbox[code]
        if not (x0 <= lon <= x1 and y0 <= lat <= y1):
            return False
        return any(
            _inside_ring(poly[0], lon, lat) and not any(_inside_ring(hole, lon, lat) for hole in poly[1:])
            for poly in polys
        )
