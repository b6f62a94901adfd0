"""The evidence rules: when a GPS fix contradicts the IP databases, and how a network type is decided.

Pure functions over what the databases and the client said; `spec/evidence.md` states the same
rules for people. Place: a GPS fix decides the commune unless the IP location contradicts it.
The IP location means something only for a fixed-line address with a small accuracy radius:
mobile addresses are located at the carrier's gateway (a phone in Cà Mau may exit in Hồ Chí
Minh City or Hà Nội), so they cannot contradict GPS.

- Fixed-line: the connection family from the connection database or the prefix file is
  `fixed`; when that family is unknown, the network type the client gave (declared, else the
  device's) is `fixed`. Declaring mobile to skip the check buys nothing: the result then
  competes in the mobile ranking, not the fixed one, and a fixed-line address that *is* known
  as such is checked whatever was declared (and flagged `network_type_conflict`).
- Small radius: `accuracy_radius` <= LOCATION_CHECK_MAX_RADIUS_KM (100 km). City databases give
  fixed lines a few to a few tens of km when they know the city; beyond 100 km (a region, or
  the whole country: GeoLite2 gives 1,000 km for addresses it places only in Vietnam) the database
  says itself that it cannot tell one province from its neighbours, so it cannot overrule GPS.
- Conflict: the GPS disc (position ± its accuracy) lies entirely farther than accuracy_radius +
  LOCATION_CONFLICT_MARGIN_KM (50 km) from the IP location. The margin absorbs the databases'
  habit of placing a line at its provincial exchange or capital while the subscriber sits
  elsewhere in the province: provinces after the 2025 merger are ~50-200 km across, so
  radius + 50 km keeps a subscriber anywhere in a compact province, or a few km over the border,
  unflagged, and catches the gross cases (a GPS in Hồ Chí Minh City from a Hà Nội line, 1,100 km).
- Without an IP location (a prefix table or database that gives only the province), a fixed-line
  address conflicts when GPS lands in another province AND farther than the margin from every
  commune centroid of the IP's province (so a subscriber just over the border is not flagged).

Network type: the client's declaration wins, else what its OS/modem reported (`device`), else the
IP classification (`ip`: Cellular -> mobile, other known types -> fixed), else nothing (`none`).
The type in use is flagged `network_type_conflict` when the IP classification contradicts it
(fixed from a Cellular address; mobile/5g from a Cable/DSL one: Corporate, Satellite and Dialup
prove nothing about a phone) or when a declared `fixed` is contradicted by a device that routes
the test through its own modem. A device's `fixed` (an Ethernet port) does not contradict a
declared mobile: a 4G router may sit behind the cable.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ispeed.admin_geo.connection import ConnectionClass
from ispeed.admin_geo.ipdb import IpLocation
from ispeed.admin_geo.units import communes

LOCATION_CHECK_MAX_RADIUS_KM = 100
LOCATION_CONFLICT_MARGIN_KM = 50.0
EARTH_RADIUS_KM = 6371.0088
MOBILE_TYPES = ("mobile", "5g")


class NetworkTypeEvidence(NamedTuple):
    """The network type a result is stored with, what decided it, and what contradicts it."""

    network_type: str  # fixed / mobile / 5g; '' when nothing was said
    source: str  # declared / device / ip / none
    conflict: str  # '' or why the evidence disagrees


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2.0 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def is_fixed_line(connection_family: str, network_type: str | None) -> bool:
    """Whether the IP's location may be checked against GPS: the databases say fixed, or they do not
    know and the client said fixed."""
    if connection_family:
        return connection_family == "fixed"
    return network_type == "fixed"


def _nearest_commune_km(province_code: str, lat: float, lon: float) -> float:
    return min(distance_km(lat, lon, c.lat, c.lon) for c in communes(province_code))


def check_gps(
    *,
    gps_lat: float,
    gps_lon: float,
    gps_accuracy_m: float | None,
    gps_province_code: str,
    ip_location: IpLocation | None,
    ip_province_code: str | None,
    connection_family: str,
    network_type: str | None,
) -> str:
    """'' when the GPS fix may place the result, else the reason it contradicts the IP databases.

    gps_province_code is where the locator put the fix; connection_family comes from the
    connection database or the prefix file ('' unknown); network_type is the client's (declared,
    else device). Rules and limits: the module docstring and spec/evidence.md.
    """
    if not is_fixed_line(connection_family, network_type):
        return ""
    slack_km = (gps_accuracy_m or 0.0) / 1000.0
    if ip_location is not None and ip_location.accuracy_radius_km is not None:
        radius = ip_location.accuracy_radius_km
        if radius > LOCATION_CHECK_MAX_RADIUS_KM:
            return ""
        dist = distance_km(gps_lat, gps_lon, ip_location.latitude, ip_location.longitude)
        limit = radius + LOCATION_CONFLICT_MARGIN_KM
        if dist - slack_km > limit:
            return (
                f"GPS is {dist:,.0f} km from the IP location of this fixed-line address "
                f"(accuracy radius {radius} km + {LOCATION_CONFLICT_MARGIN_KM:g} km margin)"
            )
        return ""
    if ip_province_code and gps_province_code != ip_province_code:
        nearest = _nearest_commune_km(ip_province_code, gps_lat, gps_lon)
        if nearest - slack_km > LOCATION_CONFLICT_MARGIN_KM:
            return (
                f"GPS is in province {gps_province_code}, {nearest:,.0f} km from the nearest commune of "
                f"province {ip_province_code} where the IP databases put this fixed-line address "
                f"(margin {LOCATION_CONFLICT_MARGIN_KM:g} km)"
            )
    return ""


def decide_network_type(declared: str | None, device: str | None, connection: ConnectionClass) -> NetworkTypeEvidence:
    """The network type to store, its source, and the conflict if the evidence contradicts it."""
    if declared:
        network_type, source = declared, "declared"
    elif device:
        network_type, source = device, "device"
    elif connection.family:
        return NetworkTypeEvidence(connection.family, "ip", "")
    else:
        return NetworkTypeEvidence("", "none", "")
    conflict = ""
    where = f" ({connection.source})" if connection.source else ""
    if network_type == "fixed" and connection.connection_type == "Cellular":
        conflict = f"{source} fixed, but the IP address is Cellular{where}"
    elif network_type in MOBILE_TYPES and connection.connection_type == "Cable/DSL":
        conflict = f"{source} {network_type}, but the IP address is Cable/DSL{where}"
    elif source == "declared" and network_type == "fixed" and device in MOBILE_TYPES:
        conflict = f"declared fixed, but the device reports its own {device} modem"
    return NetworkTypeEvidence(network_type, source, conflict)
