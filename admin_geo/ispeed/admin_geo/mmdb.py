"""Build MaxMind-format databases from a prefix table, and the demo databases used by tests and demos.

The prefix table is a CSV `prefix, asn, provider, province_code` with optional columns after them:
`latitude, longitude, accuracy_radius_km` (where the IP database places the prefix, GeoIP2-City
`location`; all three or none) and `connection_type` (Cellular, Cable/DSL, Corporate, Satellite,
Dialup). `build_mmdb` writes the ASN/province/location database (usable as --asn-db and
--city-db); `build_connection_mmdb` writes the connection types as a GeoIP2-Connection-Type
database (--connection-db).
"""

from __future__ import annotations

import csv
import ipaddress
import math
from dataclasses import dataclass
from pathlib import Path

from ispeed.admin_geo.connection import CONNECTION_TYPES, canonical_connection_type
from ispeed.admin_geo.providers import canonical_provider, provider_for_asn
from ispeed.admin_geo.units import province_index
from ispeed.core.errors import ValidationError

PREFIX_COLUMNS = ("prefix", "asn", "provider", "province_code")
OPTIONAL_COLUMNS = ("latitude", "longitude", "accuracy_radius_km", "connection_type")
MAX_ACCURACY_RADIUS_KM = 20_000  # half the Earth's circumference; MaxMind stores it as uint16 km


@dataclass(frozen=True, slots=True)
class PrefixRow:
    """One announced prefix and what to say about it."""

    prefix: str
    asn: int | None
    provider: str | None
    province_code: str | None
    latitude: float | None = None
    longitude: float | None = None
    accuracy_radius_km: int | None = None
    connection_type: str | None = None


# Documentation prefixes (RFC 5737, RFC 3849) and loopback, so demos and tests get attributed.
# Fixed-line prefixes are located at their province's centroid with the radius of a disc of the
# province's area (how a city database places a fixed line it knows to the province); the MobiFone
# prefix is Cellular and located at its gateway province, which is why mobile locations are not
# checked against GPS. 203.0.113.0/24 has no location (province-only checks), 2001:db8::/33 is
# Cellular without a location. 127.0.0.0/8 is Cable/DSL: loopback tests are fixed-line Viettel, Hà Nội.
DEMO_PREFIXES: tuple[PrefixRow, ...] = (
    PrefixRow("127.0.0.0/8", 7552, "Viettel", "01", 21.0001, 105.698, 33, "Cable/DSL"),
    PrefixRow("::1/128", 45899, "VNPT", "79", 10.9926, 106.638, 47, "Cable/DSL"),
    PrefixRow("192.0.2.0/25", 18403, "FPT Telecom", "48", 15.631, 107.966, 62, "Cable/DSL"),
    PrefixRow("192.0.2.128/25", 131429, "MobiFone", "31", 20.8759, 106.47, 32, "Cellular"),
    PrefixRow("198.51.100.0/24", 45899, "VNPT", "01", 21.0001, 105.698, 33, "Corporate"),
    PrefixRow("203.0.113.0/24", 45903, "CMC Telecom", "79", None, None, None, "Cable/DSL"),
    PrefixRow("2001:db8::/33", 7552, "Viettel", "79", None, None, None, "Cellular"),
    PrefixRow("2001:db8:8000::/33", 18403, "FPT Telecom", "92", 9.74372, 105.757, 45, "Cable/DSL"),
)
demo_prefixes = DEMO_PREFIXES


def _number(raw: dict[str, str], column: str, where: str, limit: float) -> float | None:
    text = (raw.get(column) or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValidationError(column, f"{where}: column {column}: {text!r} is not a number") from None
    if not math.isfinite(value) or abs(value) > limit:
        raise ValidationError(column, f"{where}: column {column}: {text!r} is outside -{limit:g}..{limit:g}")
    return value


def _location(raw: dict[str, str], where: str) -> tuple[float | None, float | None, int | None]:
    lat = _number(raw, "latitude", where, 90.0)
    lon = _number(raw, "longitude", where, 180.0)
    radius_text = (raw.get("accuracy_radius_km") or "").strip()
    if radius_text and not (radius_text.isdigit() and 1 <= int(radius_text) <= MAX_ACCURACY_RADIUS_KM):
        raise ValidationError(
            "accuracy_radius_km",
            f"{where}: column accuracy_radius_km: {radius_text!r} is not "
            f"a whole number of km from 1 to {MAX_ACCURACY_RADIUS_KM}",
        )
    radius = int(radius_text) if radius_text else None
    given = [c for c, v in (("latitude", lat), ("longitude", lon), ("accuracy_radius_km", radius)) if v is not None]
    if given and len(given) != 3:
        missing = [c for c in ("latitude", "longitude", "accuracy_radius_km") if c not in given]
        raise ValidationError(
            missing[0],
            f"{where}: column {missing[0]} is empty; a location needs latitude, longitude and accuracy_radius_km",
        )
    return lat, lon, radius


def parse_prefix_row(raw: dict[str, str], where: str) -> PrefixRow:
    """Validate one CSV row; errors name the line and the column."""
    text = (raw.get("prefix") or "").strip()
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise ValidationError("prefix", f"{where}: {text!r} is not a network prefix ({exc})") from None
    asn_text = (raw.get("asn") or "").strip().upper().removeprefix("AS")
    if asn_text and not asn_text.isdigit():
        raise ValidationError("asn", f"{where}: {raw.get('asn')!r} is not an AS number")
    asn = int(asn_text) if asn_text else None
    provider_text = (raw.get("provider") or "").strip()
    known = canonical_provider(provider_text) or (None if provider_text else provider_for_asn(asn))
    provider = known.name if known else (provider_text or None)
    code = (raw.get("province_code") or "").strip()
    if code:
        code = code.zfill(2)
        if code not in province_index():
            raise ValidationError("province_code", f"{where}: {code!r} is not one of the 34 province codes")
    lat, lon, radius = _location(raw, where)
    kind_text = (raw.get("connection_type") or "").strip()
    kind = canonical_connection_type(kind_text) if kind_text else None
    if kind_text and kind is None:
        raise ValidationError(
            "connection_type",
            f"{where}: column connection_type: {kind_text!r} is not one of {', '.join(CONNECTION_TYPES)}",
        )
    return PrefixRow(str(net), asn, provider, code or None, lat, lon, radius, kind)


def read_prefixes_csv(path: str | Path) -> list[PrefixRow]:
    """Rows of a `prefix, asn, provider, province_code[, latitude, longitude, accuracy_radius_km,
    connection_type]` CSV (header required; the optional columns may be absent)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in PREFIX_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValidationError(
                    "prefixes",
                    f"{path}: missing column(s) {', '.join(missing)}; the header must be {','.join(PREFIX_COLUMNS)}",
                )
            return [parse_prefix_row(r, f"{path}:{n}") for n, r in enumerate(reader, start=2)]
    except OSError as exc:
        raise ValidationError("prefixes", f"cannot read {path}: {exc.strerror}") from exc


def _record(row: PrefixRow) -> dict[str, object]:
    from mmdb_writer import MmdbU16, MmdbU32

    record: dict[str, object] = {}
    if row.asn is not None:
        record["autonomous_system_number"] = MmdbU32(row.asn)
    if row.provider:
        record["autonomous_system_organization"] = row.provider
    own: dict[str, object] = {}
    if row.provider:
        own["provider"] = row.provider
    if row.province_code:
        own["province_code"] = row.province_code
        prov = province_index()[row.province_code]
        record["country"] = {"iso_code": "VN"}
        record["subdivisions"] = [{"names": {"vi": prov.full_name, "en": prov.name}}]
    if row.latitude is not None and row.longitude is not None:
        location: dict[str, object] = {"latitude": float(row.latitude), "longitude": float(row.longitude)}
        if row.accuracy_radius_km is not None:
            location["accuracy_radius"] = MmdbU16(row.accuracy_radius_km)
        record["location"] = location
    record["ispeed"] = own
    return record


def build_mmdb(rows: list[PrefixRow] | tuple[PrefixRow, ...], out_path: str | Path) -> int:
    """Write one IPv6 tree (IPv4 mapped at ::/96) usable as both --asn-db and --city-db; returns rows."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="ispeed-ASN-Province",
        languages=["vi", "en"],
        description={"vi": "bảng tiền tố ispeed", "en": "ispeed prefix table"},
    )
    for row in rows:
        writer.insert_network(IPSet([row.prefix]), _record(row))
    writer.to_db_file(str(out_path))
    return len(rows)


def build_demo_mmdb(path: str | Path) -> Path:
    """The demo database (loopback and documentation prefixes) at path."""
    build_mmdb(DEMO_PREFIXES, path)
    return Path(path)


def build_connection_mmdb(rows: list[PrefixRow] | tuple[PrefixRow, ...], out_path: str | Path) -> int:
    """Write the rows' connection types as a GeoIP2-Connection-Type database; returns the prefixes written
    (rows without a connection type are left out: the database then does not know them)."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="GeoIP2-Connection-Type",
        languages=["en"],
        description={"en": "ispeed connection types"},
    )
    written = 0
    for row in rows:
        if row.connection_type:
            writer.insert_network(IPSet([row.prefix]), {"connection_type": row.connection_type})
            written += 1
    writer.to_db_file(str(out_path))
    return written


def build_demo_connection_mmdb(path: str | Path) -> Path:
    """The demo connection-type database (the connection types of DEMO_PREFIXES) at path."""
    build_connection_mmdb(DEMO_PREFIXES, path)
    return Path(path)
