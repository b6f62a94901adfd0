"""Who and where a result comes from: provider, ASN, province, commune and location source,
with the evidence for its place and network type (spec/evidence.md)."""

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
    location_source: str = "none"  # gps / ip / none ("gps" only when GPS decided the place)
    location_accuracy_m: float | None = None  # the GPS fix's accuracy when GPS placed the result
    location_conflict: str = ""  # '' or why the GPS fix was not used (flag location_conflict)
    connection_type: str = ""  # Cellular / Cable/DSL / Corporate / Satellite / Dialup / '' unknown
    connection_family: str = ""  # mobile / fixed / ''
    connection_source: str = ""  # prefixes / connection-db / ''
    network_type: str = ""  # fixed / mobile / 5g decided from the evidence; '' nobody said
    network_type_source: str = "none"  # declared / device / ip / none
    network_type_conflict: str = ""  # '' or why the evidence contradicts network_type (flag network_type_conflict)


class Attribution(Protocol):
    def place(
        self,
        ip: str,
        lat: float | None,
        lon: float | None,
        accuracy_m: float | None,
        declared_network_type: str | None = None,
        device_network_type: str | None = None,
    ) -> Placement: ...

    def is_cellular(self, ip: str) -> bool: ...


class GeoAttribution:
    """Attribution through ispeed.admin_geo: ISP from the IP databases, place from GPS, else IP."""

    def __init__(
        self, asn_db: str = "", city_db: str = "", connection_db: str = "", network_prefixes: str = ""
    ) -> None:
        from ispeed.admin_geo import Geo, GeoConfig

        self.geo = Geo(
            GeoConfig(
                asn_db=Path(asn_db) if asn_db else None,
                city_db=Path(city_db) if city_db else None,
                connection_db=Path(connection_db) if connection_db else None,
                network_prefixes=Path(network_prefixes) if network_prefixes else None,
            )
        )

    def warm_up(self) -> None:
        """Build the locator and open the databases now (blocking; call off the event loop)."""
        self.geo.locate(21.0285, 105.8542)
        self.geo.lookup_ip("127.0.0.1")
        self.geo.classify_connection("127.0.0.1")

    def place(
        self,
        ip: str,
        lat: float | None,
        lon: float | None,
        accuracy_m: float | None,
        declared_network_type: str | None = None,
        device_network_type: str | None = None,
    ) -> Placement:
        """Place and evidence; pass the network type the result will be ranked under as declared_network_type
        (the server's default included), so that the GPS check applies to it."""
        e = self.geo.enrich(ip or None, lat, lon, accuracy_m, declared_network_type, device_network_type)
        return Placement(
            provider=e.provider or "",
            asn=e.asn or 0,
            province_code=e.province_code or "",
            commune_code=e.commune_code or "",
            location_source=e.location_source,
            location_accuracy_m=e.location_accuracy_m,
            location_conflict=e.location_conflict,
            connection_type=e.connection_type,
            connection_family=e.connection_family,
            connection_source=e.connection_source,
            network_type=e.network_type,
            network_type_source=e.network_type_source,
            network_type_conflict=e.network_type_conflict,
        )

    def is_cellular(self, ip: str) -> bool:
        """Whether the connection-type database or prefix file says `ip` is a carrier's (mobile)."""
        if not ip or not self.geo.connection_classifier.configured:
            return False
        return self.geo.classify_connection(ip).family == "mobile"

    def close(self) -> None:
        self.geo.close()
