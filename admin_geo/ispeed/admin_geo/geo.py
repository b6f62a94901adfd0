"""The admin_geo facade the server calls: one object holding the locator and the IP databases."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ispeed.core.errors import ValidationError
from ispeed.admin_geo import legacy, names, providers as providers_mod, units

if TYPE_CHECKING:
    from ispeed.admin_geo.ipdb import IpInfo, IpLocator
    from ispeed.admin_geo.locate import Locator, Placement

log = logging.getLogger("ispeed.admin_geo")

LOCATION_SOURCES = ("gps", "ip", "none")


@dataclass(frozen=True, slots=True)
class GeoConfig:
    """Paths an operator supplies; all optional (no database: IP lookups return unknowns)."""

    asn_db: Path | None = None
    city_db: Path | None = None
    boundaries: Path | None = None


class Enrichment(NamedTuple):
    """What the server stores with every accepted result."""

    provider: str | None
    asn: int | None
    province_code: str | None
    commune_code: str | None
    location_source: str  # "gps", "ip" or "none"


@lru_cache(maxsize=1)
def default_locator() -> Locator:
    """The shared centroid locator (built on first use: ~0.1 s)."""
    from ispeed.admin_geo.locate import Locator

    return Locator()


class Geo:
    """Units, lookups and conversions; build one per process and share it (lookups are read-only)."""

    def __init__(self, config: GeoConfig | None = None) -> None:
        self.config = config or GeoConfig()
        self._locator: Locator | None = None
        self._ip: IpLocator | None = None

    @property
    def locator(self) -> Locator:
        if self._locator is None:
            if self.config.boundaries:
                from ispeed.admin_geo.boundaries import Boundaries
                from ispeed.admin_geo.locate import Locator

                self._locator = Locator(Boundaries.from_geojson(self.config.boundaries))
            else:
                self._locator = default_locator()
        return self._locator

    @property
    def ip_locator(self) -> IpLocator:
        if self._ip is None:
            from ispeed.admin_geo.ipdb import IpLocator

            self._ip = IpLocator(self.config.asn_db, self.config.city_db)
        return self._ip

    def close(self) -> None:
        if self._ip is not None:
            self._ip.close()
            self._ip = None

    def locate(self, lat: object, lon: object, accuracy_m: object = None) -> Placement | None:
        """GPS -> commune and province (see ispeed.admin_geo.locate for the approximation)."""
        return self.locator.locate(lat, lon, accuracy_m)

    def lookup_ip(self, ip: str) -> IpInfo:
        """IP -> ASN, provider, province from the configured MaxMind-format databases."""
        return self.ip_locator.lookup(ip)

    def enrich(self, ip: str | None, lat: object = None, lon: object = None,
               accuracy_m: object = None) -> Enrichment:
        """Provider/ASN from the IP; place from GPS when usable, else from the IP, else none.

        A missing, malformed or out-of-Vietnam GPS position is not an error here: the result is
        kept and placed by its IP instead (the server validates inputs before calling this).
        """
        info = self.lookup_ip(ip) if ip else None
        if lat is not None and lon is not None:
            try:
                placed = self.locate(lat, lon, accuracy_m)
            except ValidationError as exc:
                log.debug("ignoring GPS position: %s", exc)
                placed = None
            if placed is not None:
                return Enrichment(info.provider if info else None, info.asn if info else None,
                                  placed.province_code, placed.commune_code, "gps")
        if info is not None and info.province_code:
            return Enrichment(info.provider, info.asn, info.province_code, None, "ip")
        return Enrichment(info.provider if info else None, info.asn if info else None, None, None, "none")

    # Data-only helpers, the same as the module-level functions.
    provinces = staticmethod(units.provinces)
    communes = staticmethod(units.communes)
    province = staticmethod(units.province)
    commune = staticmethod(units.commune)
    find = staticmethod(names.find)
    convert_old_province = staticmethod(legacy.convert_old_province)
    convert_old_ward = staticmethod(legacy.convert_old_ward)
    providers = staticmethod(providers_mod.providers)
