"""Build MaxMind-format databases from a prefix table, and the demo database used by tests and demos."""

from __future__ import annotations

import csv
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from ispeed.core.errors import ValidationError
from ispeed.admin_geo.providers import canonical_provider, provider_for_asn
from ispeed.admin_geo.units import province_index

PREFIX_COLUMNS = ("prefix", "asn", "provider", "province_code")


@dataclass(frozen=True, slots=True)
class PrefixRow:
    """One announced prefix and what to say about it."""

    prefix: str
    asn: int | None
    provider: str | None
    province_code: str | None


# Documentation prefixes (RFC 5737, RFC 3849) and loopback, so demos and tests get attributed.
DEMO_PREFIXES: tuple[PrefixRow, ...] = (
    PrefixRow("127.0.0.0/8", 7552, "Viettel", "01"),
    PrefixRow("::1/128", 45899, "VNPT", "79"),
    PrefixRow("192.0.2.0/25", 18403, "FPT Telecom", "48"),
    PrefixRow("192.0.2.128/25", 131429, "MobiFone", "31"),
    PrefixRow("198.51.100.0/24", 45899, "VNPT", "01"),
    PrefixRow("203.0.113.0/24", 45903, "CMC Telecom", "79"),
    PrefixRow("2001:db8::/33", 7552, "Viettel", "79"),
    PrefixRow("2001:db8:8000::/33", 18403, "FPT Telecom", "92"),
)
demo_prefixes = DEMO_PREFIXES


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
    return PrefixRow(str(net), asn, provider, code or None)


def read_prefixes_csv(path: str | Path) -> list[PrefixRow]:
    """Rows of a `prefix, asn, provider, province_code` CSV (header required)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in PREFIX_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValidationError("prefixes", f"{path}: missing column(s) {', '.join(missing)}; "
                                      f"the header must be {','.join(PREFIX_COLUMNS)}")
            return [parse_prefix_row(r, f"{path}:{n}") for n, r in enumerate(reader, start=2)]
    except OSError as exc:
        raise ValidationError("prefixes", f"cannot read {path}: {exc.strerror}") from exc


def _record(row: PrefixRow) -> dict[str, object]:
    from mmdb_writer import MmdbU32

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
    record["ispeed"] = own
    return record


def build_mmdb(rows: list[PrefixRow] | tuple[PrefixRow, ...], out_path: str | Path) -> int:
    """Write one IPv6 tree (IPv4 mapped at ::/96) usable as both --asn-db and --city-db; returns rows."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="ispeed-ASN-Province",
                        languages=["vi", "en"], description={"vi": "bảng tiền tố ispeed", "en": "ispeed prefix table"})
    for row in rows:
        writer.insert_network(IPSet([row.prefix]), _record(row))
    writer.to_db_file(str(out_path))
    return len(rows)


def build_demo_mmdb(path: str | Path) -> Path:
    """The demo database (loopback and documentation prefixes) at path."""
    build_mmdb(DEMO_PREFIXES, path)
    return Path(path)
