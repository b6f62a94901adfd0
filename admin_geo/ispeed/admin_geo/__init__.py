"""Vietnam's two-level administrative units, and IP/GPS to ISP and place.

Public surface (importing this package is cheap; scipy, numpy and maxminddb load on first use):

    Geo(GeoConfig(asn_db=..., city_db=..., boundaries=...))
        .locate(lat, lon, accuracy_m=None) -> Placement | None
        .lookup_ip(ip) -> IpInfo
        .enrich(ip, lat, lon, accuracy_m) -> Enrichment(provider, asn, province_code,
                                                        commune_code, location_source)
    provinces(), communes(province=None), province(code), commune(code), find(name),
    convert_old_province(code), convert_old_ward(code), providers(),
    DEMO_PREFIXES / demo_prefixes, build_mmdb(rows, path), build_demo_mmdb(path)
"""

from __future__ import annotations

from ispeed.admin_geo.geo import Enrichment, Geo, GeoConfig, LOCATION_SOURCES
from ispeed.admin_geo.legacy import Conversion, convert_old_province, convert_old_ward
from ispeed.admin_geo.mmdb import DEMO_PREFIXES, PrefixRow, build_demo_mmdb, build_mmdb, demo_prefixes
from ispeed.admin_geo.names import Match, find, fold
from ispeed.admin_geo.providers import Provider, canonical_provider, provider_for_asn, providers
from ispeed.admin_geo.units import (
    COMMUNE_COUNT, PROVINCE_COUNT, TYPE_NAMES, Commune, Province, commune, communes, province, provinces,
)

__all__ = [
    "COMMUNE_COUNT", "DEMO_PREFIXES", "LOCATION_SOURCES", "PROVINCE_COUNT", "TYPE_NAMES",
    "Commune", "Conversion", "Enrichment", "Geo", "GeoConfig", "Match", "PrefixRow", "Province", "Provider",
    "build_demo_mmdb", "build_mmdb", "canonical_provider", "commune", "communes", "convert_old_province",
    "convert_old_ward", "demo_prefixes", "find", "fold", "province", "provider_for_asn", "providers",
    "provinces",
]
