"""Who and where a result comes from: provider, ASN, province, commune and location source."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Placement:
    provider: str = ""
    asn: int = 0
    province_code: str = ""
    commune_code: str = ""
    location_source: str = "none"   # gps / ip / none


class Attribution(Protocol):
    def place(self, ip: str, lat: float | None, lon: float | None, accuracy_m: float | None) -> Placement: ...


class GeoAttribution:
    """Attribution through ispeed.admin_geo: ISP from the IP databases, place from GPS, else IP."""

    def __init__(self, asn_db: str = "", city_db: str = "") -> None:
        from ispeed.admin_geo import Geo, GeoConfig

        self.geo = Geo(GeoConfig(asn_db=Path(asn_db) if asn_db else None,
                                 city_db=Path(city_db) if city_db else None))

    def warm_up(self) -> None:
        """Build the locator and open the databases now (blocking; call off the event loop)."""
        self.geo.locate(21.0285, 105.8542)
        self.geo.lookup_ip("127.0.0.1")

    def place(self, ip: str, lat: float | None, lon: float | None, accuracy_m: float | None) -> Placement:
        e = self.geo.enrich(ip or None, lat, lon, accuracy_m)
        return Placement(provider=e.provider or "", asn=e.asn or 0, province_code=e.province_code or "",
                         commune_code=e.commune_code or "", location_source=e.location_source)

    def close(self) -> None:
        self.geo.close()
