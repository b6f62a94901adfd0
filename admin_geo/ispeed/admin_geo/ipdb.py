"""IP address -> ASN, provider and province from operator-supplied MaxMind-format databases.

Records are read in the GeoLite2/GeoIP2 shapes (`autonomous_system_number`,
`autonomous_system_organization`; `country.iso_code`, `subdivisions[].names`, `location.latitude`,
`location.longitude`, `location.accuracy_radius` in km) plus an `ispeed`
map written by `ispeed geo build-mmdb` (`provider`, `province_code`), which wins when present.
A subdivision name from a commercial database (often a former province) is resolved by name,
former provinces converted to their new province.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from ispeed.admin_geo.legacy import _old_provinces
from ispeed.admin_geo.names import fold, strip_type_word
from ispeed.admin_geo.providers import canonical_provider, provider_for_asn
from ispeed.admin_geo.units import province_index
from ispeed.core.errors import ConfigError, ValidationError


class IpLocation(NamedTuple):
    """Where the city database puts an address, and how sure it is (GeoIP2-City `location`)."""

    latitude: float
    longitude: float
    accuracy_radius_km: int | None  # None: the database does not say


class IpInfo(NamedTuple):
    """What the databases say about one address; fields are None when unknown."""

    ip: str
    asn: int | None
    as_org: str | None
    provider: str | None
    province_code: str | None
    location: IpLocation | None = None


def location_of(record: dict[str, Any]) -> IpLocation | None:
    """The record's `location` (latitude, longitude, accuracy_radius), None without a usable position."""
    loc = record.get("location")
    if not isinstance(loc, dict):
        return None
    lat, lon, radius = loc.get("latitude"), loc.get("longitude"), loc.get("accuracy_radius")
    if not isinstance(lat, (int, float)) or not isinstance(lon, (int, float)):
        return None
    return IpLocation(float(lat), float(lon), int(radius) if isinstance(radius, (int, float)) else None)


@lru_cache(maxsize=1)
def _province_by_name() -> dict[str, str]:
    """Folded province names (new and former, with and without type word) -> new province code."""
    index: dict[str, str] = {}
    for full_name, new_code in _old_provinces().values():
        index[strip_type_word(fold(full_name))] = new_code
    for p in province_index().values():
        index[fold(p.name)] = p.code
    index.update(
        {
            "ho chi minh": "79",
            "hanoi": "01",
            "thua thien hue": "46",
            "hue": "46",
            "ba ria vung tau": "79",
            "da nang": "48",
        }
    )
    return index


def province_from_subdivision(names: dict[str, str]) -> str | None:
    """'Binh Duong Province' / 'Tỉnh Bình Dương' -> '79' (the province it merged into), else None."""
    index = _province_by_name()
    for text in names.values():
        key = strip_type_word(fold(text))
        for suffix in (" province", " city", " municipality"):
            key = key.removesuffix(suffix)
        if key in index:
            return index[key]
    return None


def _open(path: str | Path, key: str) -> Any:
    import maxminddb  # heavy-ish C extension: only when a database is configured

    try:
        return maxminddb.open_database(str(path))
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:  # the last is a RuntimeError
        raise ConfigError(key, str(path), f"cannot open a MaxMind DB file ({exc})") from exc


class IpLocator:
    """Looks addresses up in an ASN database and a city/location database (either may be absent)."""

    def __init__(self, asn_db: str | Path | None = None, city_db: str | Path | None = None) -> None:
        self._asn = _open(asn_db, "asn_db") if asn_db else None
        if city_db and asn_db and Path(city_db).resolve() == Path(asn_db).resolve():
            self._city = self._asn
        else:
            self._city = _open(city_db, "city_db") if city_db else None
        self._subdivision_cache: dict[str, str | None] = {}
        self._provider_cache: dict[tuple[str | None, int | None], str | None] = {}

    def close(self) -> None:
        for reader in {id(r): r for r in (self._asn, self._city) if r is not None}.values():
            reader.close()

    def lookup(self, ip: str) -> IpInfo:
        """ASN, provider and province of one address; ValidationError for a malformed address."""
        if ip.startswith(("::ffff:", "::FFFF:")) and "." in ip:
            ip = ip[7:]  # IPv4-mapped IPv6, as seen on dual-stack sockets
        reader = self._asn or self._city
        if reader is None:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise ValidationError("ip", f"{ip!r} is not an IPv4 or IPv6 address") from None
            return IpInfo(ip, None, None, None, None)
        try:
            rec = reader.get(ip) if self._asn is not None else None
            city = rec if self._city is self._asn else (self._city.get(ip) if self._city is not None else None)
        except (ValueError, TypeError):
            raise ValidationError("ip", f"{ip!r} is not an IPv4 or IPv6 address") from None
        asn = as_org = provider = province_code = None
        location: IpLocation | None = None
        if rec:
            asn = rec.get("autonomous_system_number")
            as_org = rec.get("autonomous_system_organization")
            own = rec.get("ispeed")
            key = (own.get("provider") if own else None, asn)
            try:
                provider = self._provider_cache[key]
            except KeyError:
                known = canonical_provider(key[0]) or provider_for_asn(asn)
                provider = self._provider_cache[key] = known.name if known else key[0]
        if city:
            location = location_of(city)
            own = city.get("ispeed")
            if own and own.get("province_code"):
                province_code = own["province_code"]
            elif (city.get("country") or {}).get("iso_code") == "VN":
                province_code = self._from_subdivisions(city.get("subdivisions") or [])
        return IpInfo(ip, asn, as_org, provider, province_code, location)

    def _from_subdivisions(self, subdivisions: list[dict[str, Any]]) -> str | None:
        for sub in subdivisions:
            names = sub.get("names") or {}
            key = "|".join(sorted(names.values()))
            if key not in self._subdivision_cache:
                self._subdivision_cache[key] = province_from_subdivision(names)
            if self._subdivision_cache[key]:
                return self._subdivision_cache[key]
        return None
