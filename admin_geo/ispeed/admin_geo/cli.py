"""`ispeed geo …`: admin units, GPS/IP lookups, legacy conversion, name search and MMDB building.

Light at import time (argparse only): data and heavy libraries load inside the command functions.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

LOCATE_EPILOG = (
    "Method: nearest commune centroid (KD-tree), an approximation of the real boundaries; "
    "positions outside Vietnam or too far from any centroid give nulls; a coarse --accuracy "
    "(larger than the commune, at least 500 m) keeps only the province, above 20 km nothing. "
    "--boundaries FILE.geojson (commune polygons with a `code` property) is preferred when given."
)


def _emit(rows: list[dict[str, Any]], fmt: str, columns: list[str] | None = None) -> None:
    if fmt == "csv":
        cols = columns or (list(rows[0]) if rows else [])
        writer = csv.DictWriter(sys.stdout, fieldnames=cols, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
    else:
        json.dump(rows if len(rows) != 1 or columns is None else rows[0], sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")


def _unit_row(unit: Any) -> dict[str, Any]:
    return {
        "code": unit.code,
        "name": unit.name,
        "full_name": unit.full_name,
        "type": unit.type,
        "type_name": unit.type_name,
        "level": unit.level,
        "parent_code": unit.parent_code,
        "lat": unit.lat,
        "lon": unit.lon,
        "area_km2": unit.area_km2,
        "slug": unit.slug,
    }


def _units(args: argparse.Namespace) -> int:
    from ispeed.admin_geo import units
    from ispeed.core.errors import UsageError

    if args.level == "province":
        if args.province:
            raise UsageError("--province only applies to --level commune")
        items: Any = units.provinces()
    else:
        items = units.communes(args.province)
    rows = [_unit_row(u) for u in items]
    if args.format == "csv":
        _emit(rows, "csv", list(rows[0]))
    else:
        json.dump(rows, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    return 0


def _geo(args: argparse.Namespace) -> Any:
    from ispeed.admin_geo.geo import Geo, GeoConfig

    return Geo(
        GeoConfig(
            asn_db=getattr(args, "asn_db", None),
            city_db=getattr(args, "city_db", None),
            boundaries=getattr(args, "boundaries", None),
            connection_db=getattr(args, "connection_db", None),
            network_prefixes=getattr(args, "network_prefixes", None),
        )
    )


def _locate(args: argparse.Namespace) -> int:
    placed = _geo(args).locate(args.lat, args.lon, args.accuracy)
    cols = ["province_code", "province_name", "commune_code", "commune_name", "distance_km", "method"]
    row = {c: getattr(placed, c) if placed else None for c in cols}
    if placed is None:
        row["method"] = "outside"
    _emit([row], args.format, cols)
    return 0


def _ip(args: argparse.Namespace) -> int:
    geo = _geo(args)
    try:
        info = geo.lookup_ip(args.address)
        conn = geo.classify_connection(args.address)
    finally:
        geo.close()
    cols = ["ip", "asn", "provider", "province_code", "as_org"]
    row = {c: getattr(info, c) for c in cols}
    loc = info.location
    row.update(
        latitude=loc.latitude if loc else None,
        longitude=loc.longitude if loc else None,
        accuracy_radius_km=loc.accuracy_radius_km if loc else None,
        connection_type=conn.connection_type or None,
        connection_family=conn.family or None,
        connection_source=conn.source or None,
    )
    _emit([row], args.format, list(row))
    return 0


def _convert(args: argparse.Namespace) -> int:
    from ispeed.admin_geo import legacy, units

    conv = (
        legacy.convert_old_province(args.old_province)
        if args.old_province is not None
        else legacy.convert_old_ward(args.old_ward)
    )
    lookup = units.province if conv.level == "province" else units.commune
    row = {
        "level": conv.level,
        "old_code": conv.old_code,
        "old_name": conv.old_name,
        "new_codes": " ".join(conv.new_codes),
        "new_names": "; ".join(lookup(c).full_name for c in conv.new_codes),
        "exact": conv.exact,
        "default_code": None if conv.exact else conv.default_code,
    }
    if args.format == "json":
        row["new_codes"] = list(conv.new_codes)
    _emit([row], args.format, list(row))
    return 0


def _find(args: argparse.Namespace) -> int:
    from ispeed.admin_geo.names import find

    rows = [{**_unit_row(m.unit), "score": m.score} for m in find(args.name, limit=args.limit)]
    if args.format == "csv":
        _emit(rows, "csv", ["code", "name", "full_name", "type", "level", "parent_code", "lat", "lon", "score"])
    else:
        json.dump(rows, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    return 0


def _build_mmdb(args: argparse.Namespace) -> int:
    from ispeed.admin_geo.mmdb import DEMO_PREFIXES, build_connection_mmdb, build_mmdb, read_prefixes_csv
    from ispeed.core.errors import UsageError

    if args.demo == bool(args.prefixes):
        raise UsageError("give PREFIXES.csv or --demo (one of them)")
    rows = DEMO_PREFIXES if args.demo else read_prefixes_csv(args.prefixes)
    written = build_mmdb(rows, args.out)
    report: dict[str, object] = {"out": str(args.out), "prefixes": "demo" if args.demo else str(written)}
    if args.connection_out:
        report["connection_out"] = str(args.connection_out)
        report["connection_prefixes"] = build_connection_mmdb(rows, args.connection_out)
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 0


def _providers(args: argparse.Namespace) -> int:
    from ispeed.admin_geo.providers import providers

    rows = [
        {
            "name": p.name,
            "short_name": p.short_name,
            "asns": " ".join(map(str, p.asns)),
            "kinds": " ".join(p.kinds),
            "note": p.note,
        }
        for p in providers()
    ]
    if args.format == "csv":
        _emit(rows, "csv", list(rows[0]))
    else:
        json.dump(rows, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    return 0


def _number(kind: str) -> Any:
    def parse(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of {kind}") from None

    return parse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    geo = sub.add_parser(
        "geo",
        help="admin units, lookups, MMDB building",
        description="Vietnam's 34 provinces and 3,321 communes (since 1 July 2025), "
        "GPS/IP lookups, legacy conversion, MMDB building. JSON out unless --format csv.",
    )
    geo_sub = geo.add_subparsers(dest="geo_command", metavar="GEO_COMMAND", required=True, parser_class=type(geo))
    fmt = argparse.ArgumentParser(add_help=False)
    fmt.add_argument("--format", choices=("json", "csv"), default="json", help="output format (default json)")

    p = geo_sub.add_parser("units", parents=[fmt], help="list provinces or communes")
    p.add_argument("--level", choices=("province", "commune"), default="province")
    p.add_argument("--province", metavar="CODE", help="only the communes of this province (2-digit code)")
    p.set_defaults(func=_units)

    p = geo_sub.add_parser("locate", parents=[fmt], help="GPS position -> commune and province", epilog=LOCATE_EPILOG)
    p.add_argument("--lat", type=_number("degrees"), required=True)
    p.add_argument("--lon", type=_number("degrees"), required=True)
    p.add_argument("--accuracy", type=_number("metres"), metavar="M", help="accuracy radius of the fix in metres")
    p.add_argument("--boundaries", type=Path, metavar="FILE", help="commune polygons (GeoJSON), preferred")
    p.set_defaults(func=_locate)

    p = geo_sub.add_parser("ip", parents=[fmt], help="IP address -> ASN, provider, province, location, connection type")
    p.add_argument("address")
    p.add_argument("--asn-db", type=Path, metavar="F", help="MaxMind-format ASN database")
    p.add_argument("--city-db", type=Path, metavar="F", help="MaxMind-format city/location database")
    p.add_argument("--connection-db", type=Path, metavar="F", help="MaxMind GeoIP2-Connection-Type database")
    p.add_argument(
        "--network-prefixes",
        type=Path,
        metavar="F",
        help="operator's CSV prefix,network (fixed/mobile); wins over --connection-db",
    )
    p.set_defaults(func=_ip)

    p = geo_sub.add_parser("convert", parents=[fmt], help="former (63-province) code -> new code(s)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--old-province", metavar="CODE")
    g.add_argument("--old-ward", metavar="CODE")
    p.set_defaults(func=_convert)

    p = geo_sub.add_parser("find", parents=[fmt], help="units by name (diacritics- and case-insensitive)")
    p.add_argument("name")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=_find)

    p = geo_sub.add_parser(
        "build-mmdb",
        help="PREFIXES.csv (prefix,asn,provider,province_code[,latitude,longitude,"
        "accuracy_radius_km,connection_type]) -> OUT.mmdb",
    )
    p.add_argument("prefixes", nargs="?", metavar="PREFIXES.csv")
    p.add_argument("out", type=Path, metavar="OUT.mmdb")
    p.add_argument("--demo", action="store_true", help="build the demo database (loopback/documentation prefixes)")
    p.add_argument(
        "--connection-out",
        type=Path,
        metavar="CONN.mmdb",
        help="also write the connection_type column as a GeoIP2-Connection-Type database",
    )
    p.set_defaults(func=_build_mmdb)

    p = geo_sub.add_parser("providers", parents=[fmt], help="the provider table (name, ASNs, kinds)")
    p.set_defaults(func=_providers)
