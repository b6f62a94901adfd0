"""Vietnam's two-level administrative units, and IP/GPS to ISP and place.

Public surface (importing this package is cheap; scipy, numpy and maxminddb load on first use):

    Geo(GeoConfig(asn_db=..., city_db=..., boundaries=..., connection_db=..., network_prefixes=...))
        .locate(lat, lon, accuracy_m=None) -> Placement | None
        .lookup_ip(ip) -> IpInfo (… location: IpLocation(latitude, longitude, accuracy_radius_km) | None)
        .classify_connection(ip) -> ConnectionClass(connection_type, family, source)
        .enrich(ip, lat, lon, accuracy_m, declared_network_type=None, device_network_type=None)
            -> Enrichment(provider, asn, province_code, commune_code, location_source,
                          location_accuracy_m, location_conflict, connection_type, connection_family,
                          connection_source, network_type, network_type_source, network_type_conflict)
    check_gps(...), decide_network_type(declared, device, connection): the evidence rules (evidence.py)
    provinces(), communes(province=None), province(code), commune(code), find(name),
    convert_old_province(code), convert_old_ward(code), providers(),
    DEMO_PREFIXES / demo_prefixes, build_mmdb(rows, path), build_demo_mmdb(path),
    build_connection_mmdb(rows, path), build_demo_connection_mmdb(path)
"""

from __future__ import annotations

from ispeed.admin_geo.connection import CONNECTION_TYPES, ConnectionClass, ConnectionClassifier, family_of
from ispeed.admin_geo.evidence import (
    LOCATION_CHECK_MAX_RADIUS_KM,
    LOCATION_CONFLICT_MARGIN_KM,
    NetworkTypeEvidence,
    check_gps,
    decide_network_type,
)
from ispeed.admin_geo.geo import LOCATION_SOURCES, Enrichment, Geo, GeoConfig
from ispeed.admin_geo.ipdb import IpInfo, IpLocation
from ispeed.admin_geo.legacy import Conversion, convert_old_province, convert_old_ward
from ispeed.admin_geo.mmdb import (
    DEMO_PREFIXES,
    PrefixRow,
    build_connection_mmdb,
    build_demo_connection_mmdb,
    build_demo_mmdb,
    build_mmdb,
    demo_prefixes,
)
from ispeed.admin_geo.names import Match, find, fold
from ispeed.admin_geo.providers import Provider, canonical_provider, provider_for_asn, providers
from ispeed.admin_geo.units import (
    COMMUNE_COUNT,
    PROVINCE_COUNT,
    TYPE_NAMES,
    Commune,
    Province,
    commune,
    communes,
    province,
    provinces,
)

__all__ = [
    "COMMUNE_COUNT",
    "CONNECTION_TYPES",
    "DEMO_PREFIXES",
    "LOCATION_CHECK_MAX_RADIUS_KM",
    "LOCATION_CONFLICT_MARGIN_KM",
    "LOCATION_SOURCES",
    "PROVINCE_COUNT",
    "TYPE_NAMES",
    "Commune",
    "ConnectionClass",
    "ConnectionClassifier",
    "Conversion",
    "Enrichment",
    "Geo",
    "GeoConfig",
    "IpInfo",
    "IpLocation",
    "Match",
    "NetworkTypeEvidence",
    "PrefixRow",
    "Province",
    "Provider",
    "build_connection_mmdb",
    "build_demo_connection_mmdb",
    "build_demo_mmdb",
    "build_mmdb",
    "canonical_provider",
    "check_gps",
    "decide_network_type",
    "family_of",
    "commune",
    "communes",
    "convert_old_province",
    "convert_old_ward",
    "demo_prefixes",
    "find",
    "fold",
    "province",
    "provider_for_asn",
    "providers",
    "provinces",
]
