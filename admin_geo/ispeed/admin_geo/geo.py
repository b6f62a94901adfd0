"""The admin_geo facade the server calls: one object holding the locator and the IP databases."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ispeed.admin_geo import legacy, names, units
from ispeed.admin_geo import providers as providers_mod
from ispeed.core.errors import ValidationError
from ispeed.core.schema import NETWORK_TYPES

if TYPE_CHECKING:
    from ispeed.admin_geo.connection import ConnectionClass, ConnectionClassifier
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
    connection_db: Path | None = None  # MaxMind GeoIP2-Connection-Type
    network_prefixes: Path | None = None  # CSV prefix,network (fixed/mobile), wins over connection_db


class Enrichment(NamedTuple):
    """What the server stores with every accepted result, with the evidence for its place and network type."""

    provider: str | None
    asn: int | None
    province_code: str | None
    commune_code: str | None
    location_source: str  # "gps" (GPS decided the place), "ip" or "none"
    location_accuracy_m: float | None = None  # the GPS fix's accuracy when GPS placed the result
    location_conflict: str = ""  # '' or why the GPS fix was not used (then placed by IP)
    connection_type: str = ""  # Cellular, Cable/DSL, Corporate, Satellite, Dialup; '' unknown
    connection_family: str = ""  # mobile / fixed / ''
    connection_source: str = ""  # prefixes / connection-db / ''
    network_type: str = ""  # fixed / mobile / 5g; '' when nobody said
    network_type_source: str = "none"  # declared / device / ip / none
    network_type_conflict: str = ""  # '' or why the evidence contradicts network_type


def _coordinate(value: object) -> float:
    """A coordinate the locator has already accepted (so it converts), as a float."""
    return float(value)  # type: ignore[arg-type]


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
        self._connection: ConnectionClassifier | None = None

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

    @property
    def connection_classifier(self) -> ConnectionClassifier:
        if self._connection is None:
            from ispeed.admin_geo.connection import ConnectionClassifier

            self._connection = ConnectionClassifier(self.config.connection_db, self.config.network_prefixes)
        return self._connection

    def close(self) -> None:
        if self._ip is not None:
            self._ip.close()
            self._ip = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def locate(self, lat: object, lon: object, accuracy_m: object = None) -> Placement | None:
        """GPS -> commune and province (see ispeed.admin_geo.locate for the approximation)."""
        return self.locator.locate(lat, lon, accuracy_m)

    def lookup_ip(self, ip: str) -> IpInfo:
        """IP -> ASN, provider, province and location from the configured MaxMind-format databases."""
        return self.ip_locator.lookup(ip)

    def classify_connection(self, ip: str) -> ConnectionClass:
        """IP -> connection type and family from --network-prefixes, else --connection-db."""
        return self.connection_classifier.classify(ip)

    def enrich(
        self,
        ip: str | None,
        lat: object = None,
        lon: object = None,
        accuracy_m: object = None,
        declared_network_type: str | None = None,
        device_network_type: str | None = None,
    ) -> Enrichment:
        """Provider/ASN from the IP; place from GPS when usable and not contradicted by the IP
        databases, else from the IP, else none; the network type and its evidence.

        A missing, malformed or out-of-Vietnam GPS position is not an error here: the result is
        kept and placed by its IP instead (the server validates inputs before calling this). A GPS
        fix that the IP location of a fixed-line address contradicts (ispeed.admin_geo.evidence) is
        not used either: the result is placed by IP and `location_conflict` says why.
        """
        from ispeed.admin_geo.connection import UNKNOWN
        from ispeed.admin_geo.evidence import check_gps, decide_network_type

        for field, value in (("network_type", declared_network_type), ("device_network_type", device_network_type)):
            if value is not None and value not in NETWORK_TYPES:
                raise ValidationError(field, f"{value!r} is not one of {', '.join(NETWORK_TYPES)}")
        info = self.lookup_ip(ip) if ip else None
        conn = self.classify_connection(ip) if ip and self.connection_classifier.configured else UNKNOWN
        network = decide_network_type(declared_network_type, device_network_type, conn)
        provider, asn = (info.provider, info.asn) if info else (None, None)
        evidence = dict(
            connection_type=conn.connection_type,
            connection_family=conn.family,
            connection_source=conn.source,
            network_type=network.network_type,
            network_type_source=network.source,
            network_type_conflict=network.conflict,
        )
        conflict = ""
        if lat is not None and lon is not None:
            try:
                placed = self.locate(lat, lon, accuracy_m)
            except ValidationError as exc:
                log.debug("ignoring GPS position: %s", exc)
                placed = None
            if placed is not None:
                gps_accuracy_m = float(accuracy_m) if accuracy_m is not None else None  # type: ignore[arg-type]
                conflict = check_gps(
                    gps_lat=_coordinate(lat),
                    gps_lon=_coordinate(lon),
                    gps_accuracy_m=gps_accuracy_m,
                    gps_province_code=placed.province_code,
                    ip_location=info.location if info else None,
                    ip_province_code=info.province_code if info else None,
                    connection_family=conn.family,
                    network_type=declared_network_type or device_network_type,
                )
                if not conflict:
                    return Enrichment(
                        provider, asn, placed.province_code, placed.commune_code, "gps", gps_accuracy_m, **evidence
                    )
        if info is not None and info.province_code:
            return Enrichment(provider, asn, info.province_code, None, "ip", None, conflict, **evidence)
        return Enrichment(provider, asn, None, None, "none", None, conflict, **evidence)

    # Data-only helpers, the same as the module-level functions.
    provinces = staticmethod(units.provinces)
    communes = staticmethod(units.communes)
    province = staticmethod(units.province)
    commune = staticmethod(units.commune)
    find = staticmethod(names.find)
    convert_old_province = staticmethod(legacy.convert_old_province)
    convert_old_ward = staticmethod(legacy.convert_old_ward)
    providers = staticmethod(providers_mod.providers)
