"""Evidence for place and network type: connection types from IP, IP locations, the GPS check, the
network-type decision, and their wiring into Geo.enrich, the server's attribution and `ispeed serve`."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from ispeed.admin_geo import (
    DEMO_PREFIXES,
    ConnectionClass,
    Geo,
    GeoConfig,
    IpLocation,
    build_connection_mmdb,
    build_demo_connection_mmdb,
    build_demo_mmdb,
    build_mmdb,
    check_gps,
    decide_network_type,
    family_of,
    province,
)
from ispeed.admin_geo.connection import ConnectionClassifier, read_network_prefixes
from ispeed.admin_geo.evidence import distance_km
from ispeed.admin_geo.mmdb import read_prefixes_csv
from ispeed.cli.main import main
from ispeed.core.errors import ConfigError, ValidationError

# Real places: (lat, lon)
HOAN_KIEM = (21.0285, 105.8542)  # Hà Nội, commune 00070
BAC_NINH = (21.1861, 106.0763)  # Bắc Ninh city (province 24), ~44 km from Hà Nội's centroid
HAI_PHONG = (20.8449, 106.6881)  # Hải Phòng city (31), ~104 km
BEN_THANH = (10.7769, 106.7009)  # Hồ Chí Minh City (79), commune 26740, ~1,142 km
BIEN_HOA = (10.9574, 106.8427)  # Đồng Nai (75), next to Hồ Chí Minh City
HANOI_IP = IpLocation(21.0001, 105.698, 33)  # the demo location of 127.0.0.0/8


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("evidence")
    return build_demo_mmdb(d / "demo.mmdb"), build_demo_connection_mmdb(d / "conn.mmdb")


# --- connection types -----------------------------------------------------------------------------


def test_families() -> None:
    assert [family_of(t) for t in ("Cellular", "Cable/DSL", "Corporate", "Satellite", "Dialup", "", None, "Wimax")] == [
        "mobile",
        "fixed",
        "fixed",
        "fixed",
        "fixed",
        "",
        "",
        "",
    ]


def test_demo_connection_db(dbs: tuple[Path, Path]) -> None:
    c = ConnectionClassifier(dbs[1])
    got = {
        ip: tuple(c.classify(ip))
        for ip in (
            "127.0.0.1",
            "::ffff:127.0.0.1",
            "::1",
            "192.0.2.7",
            "192.0.2.200",
            "198.51.100.1",
            "2001:db8::1",
            "8.8.8.8",
        )
    }
    assert got == {
        "127.0.0.1": ("Cable/DSL", "fixed", "connection-db"),
        "::ffff:127.0.0.1": ("Cable/DSL", "fixed", "connection-db"),
        "::1": ("Cable/DSL", "fixed", "connection-db"),
        "192.0.2.7": ("Cable/DSL", "fixed", "connection-db"),
        "192.0.2.200": ("Cellular", "mobile", "connection-db"),
        "198.51.100.1": ("Corporate", "fixed", "connection-db"),
        "2001:db8::1": ("Cellular", "mobile", "connection-db"),
        "8.8.8.8": ("", "", ""),
    }
    with pytest.raises(ValidationError, match="not an IPv4 or IPv6"):
        c.classify("300.1.1.1")
    c.close()


def test_prefix_file_longest_match_and_precedence(tmp_path: Path, dbs: tuple[Path, Path]) -> None:
    src = tmp_path / "pools.csv"
    src.write_text(
        "prefix,network\n10.0.0.0/8,mobile\n10.1.0.0/16,FIXED\n10.1.2.0/24, mobile \n"
        "192.0.2.128/26,fixed\n2001:db8:1::/48,mobile\n2001:db8:1:2::/64,fixed\n::ffff:100.64.0.0/106,mobile\n"
    )
    pools = read_network_prefixes(src)
    assert len(pools) == 7
    c = ConnectionClassifier(dbs[1], src)
    cases = {
        "10.9.9.9": ("Cellular", "mobile", "prefixes"),
        "10.1.9.9": ("Cable/DSL", "fixed", "prefixes"),
        "10.1.2.3": ("Cellular", "mobile", "prefixes"),
        "::ffff:10.1.9.9": ("Cable/DSL", "fixed", "prefixes"),
        "::ffff:a01:909": ("Cable/DSL", "fixed", "prefixes"),  # the same mapped address in hex
        "100.64.1.1": ("Cellular", "mobile", "prefixes"),  # listed as an IPv4-mapped prefix
        "2001:db8:1:2::5": ("Cable/DSL", "fixed", "prefixes"),
        "2001:db8:1:3::5": ("Cellular", "mobile", "prefixes"),
        # the operator's pool wins over the database (Cellular there); outside it the database answers
        "192.0.2.130": ("Cable/DSL", "fixed", "prefixes"),
        "192.0.2.200": ("Cellular", "mobile", "connection-db"),
        "11.0.0.1": ("", "", ""),
    }
    assert {ip: tuple(c.classify(ip)) for ip in cases} == cases
    assert tuple(ConnectionClassifier(network_prefixes=src).classify("127.0.0.1")) == ("", "", "")


@pytest.mark.parametrize(
    "body, message",
    [
        ("prefix,network\n10.0.0.0/8,mobile\n10.0.0.1/8,fixed\n", r"pools.csv:3: column prefix: '10.0.0.1/8'"),
        ("prefix,network\n10.0.0.0/8,wifi\n", r"pools.csv:2: column network: 'wifi' is neither"),
        ("prefix,network\n10.0.0.0/8,\n", r"pools.csv:2: column network"),
        ("prefix,network\n10.0.0.0/8,fixed\n10.0.0.0/8,mobile\n", r"pools.csv:3: .*already listed on line 2"),
        ("prefix,kind\n10.0.0.0/8,fixed\n", r"pools.csv:1: missing column\(s\) network"),
        ("prefix,network\nbanana,fixed\n", r"pools.csv:2: column prefix: 'banana'"),
    ],
)
def test_prefix_file_errors_name_line_and_column(tmp_path: Path, body: str, message: str) -> None:
    src = tmp_path / "pools.csv"
    src.write_text(body)
    with pytest.raises(ValidationError, match=message):
        read_network_prefixes(src)


def test_connection_db_must_be_one(tmp_path: Path, dbs: tuple[Path, Path]) -> None:
    with pytest.raises(ConfigError, match="--connection-db .*'ispeed-ASN-Province' database, not a connection-type"):
        ConnectionClassifier(dbs[0])
    (tmp_path / "junk.mmdb").write_bytes(b"not a database")
    with pytest.raises(ConfigError, match="cannot open a MaxMind DB file"):
        ConnectionClassifier(tmp_path / "junk.mmdb")


def test_enterprise_shape_and_dialup(tmp_path: Path) -> None:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-Enterprise")
    writer.insert_network(IPSet(["100.64.0.0/10"]), {"traits": {"connection_type": "Dialup"}})
    writer.insert_network(IPSet(["2001:db8::/32"]), {"traits": {"connection_type": "Satellite"}})
    writer.to_db_file(str(tmp_path / "ent.mmdb"))
    c = ConnectionClassifier(tmp_path / "ent.mmdb")
    assert tuple(c.classify("100.64.1.1")) == ("Dialup", "fixed", "connection-db")
    assert tuple(c.classify("2001:db8::9")) == ("Satellite", "fixed", "connection-db")


# --- the prefix table's new columns ---------------------------------------------------------------


def test_prefix_table_location_and_connection_columns(tmp_path: Path) -> None:
    src = tmp_path / "p.csv"
    src.write_text(
        "prefix,asn,provider,province_code,latitude,longitude,accuracy_radius_km,connection_type\n"
        "100.64.0.0/10,7552,,01,21.03,105.85,20,cable/dsl\n"
        "100.128.0.0/10,131429,,31,,,,Cellular\n"
        "2001:db8:1::/48,45543,,79,10.78,106.70,5,\n"
    )
    rows = read_prefixes_csv(src)
    assert [(r.latitude, r.longitude, r.accuracy_radius_km, r.connection_type) for r in rows] == [
        (21.03, 105.85, 20, "Cable/DSL"),
        (None, None, None, "Cellular"),
        (10.78, 106.70, 5, None),
    ]
    out, conn = tmp_path / "o.mmdb", tmp_path / "c.mmdb"
    build_mmdb(rows, out)
    assert build_connection_mmdb(rows, conn) == 2
    g = Geo(GeoConfig(asn_db=out, city_db=out, connection_db=conn))
    assert g.lookup_ip("100.64.1.1").location == IpLocation(21.03, 105.85, 20)
    assert g.lookup_ip("100.130.0.1").location is None and g.lookup_ip("100.130.0.1").province_code == "31"
    assert g.lookup_ip("2001:db8:1::9").location == IpLocation(10.78, 106.70, 5)
    assert tuple(g.classify_connection("100.130.0.1")) == ("Cellular", "mobile", "connection-db")
    assert tuple(g.classify_connection("2001:db8:1::9")) == ("", "", "")
    g.close()


@pytest.mark.parametrize(
    "extra, message",
    [
        ("21.0,105.8,,", r"p.csv:2: column accuracy_radius_km is empty"),
        (",105.8,20,", r"p.csv:2: column latitude is empty"),
        ("95,105.8,20,", r"p.csv:2: column latitude: '95' is outside"),
        ("21.0,105.8,0,", r"p.csv:2: column accuracy_radius_km: '0' is not a whole number"),
        ("21.0,105.8,2.5,", r"p.csv:2: column accuracy_radius_km: '2.5'"),
        ("21.0,abc,20,", r"p.csv:2: column longitude: 'abc' is not a number"),
        (",,,Wifi", r"p.csv:2: column connection_type: 'Wifi' is not one of Cellular, Cable/DSL"),
    ],
)
def test_prefix_table_new_column_errors(tmp_path: Path, extra: str, message: str) -> None:
    src = tmp_path / "p.csv"
    src.write_text(
        "prefix,asn,provider,province_code,latitude,longitude,accuracy_radius_km,connection_type\n"
        f"10.0.0.0/8,1,,01,{extra}\n"
    )
    with pytest.raises(ValidationError, match=message):
        read_prefixes_csv(src)


def test_empty_connection_table_is_a_valid_database(tmp_path: Path) -> None:
    rows = read_prefixes_csv(_write(tmp_path / "p.csv", "prefix,asn,provider,province_code\n10.0.0.0/8,1,,01\n"))
    assert build_connection_mmdb(rows, tmp_path / "c.mmdb") == 0
    assert tuple(ConnectionClassifier(tmp_path / "c.mmdb").classify("10.1.1.1")) == ("", "", "")


def test_demo_locations_are_province_centroids_as_discs() -> None:
    located = [r for r in DEMO_PREFIXES if r.latitude is not None]
    assert {r.prefix for r in located} >= {"127.0.0.0/8", "192.0.2.0/25", "192.0.2.128/25"}
    for r in located:
        p = province(r.province_code)
        assert (r.latitude, r.longitude) == (p.lat, p.lon), r.prefix
        assert r.accuracy_radius_km == math.ceil(math.sqrt(p.area_km2 / math.pi)), r.prefix  # type: ignore[operator]
        assert r.accuracy_radius_km is not None and r.accuracy_radius_km <= 100
    kinds = {r.prefix: r.connection_type for r in DEMO_PREFIXES}
    assert kinds["127.0.0.0/8"] == "Cable/DSL" and kinds["192.0.2.128/25"] == "Cellular"


# --- the GPS check --------------------------------------------------------------------------------


def _check(
    gps: tuple[float, float],
    province_code: str = "01",
    accuracy_m: float | None = None,
    location: IpLocation | None = HANOI_IP,
    ip_province: str | None = "01",
    family: str = "fixed",
    network_type: str | None = None,
) -> str:
    return check_gps(
        gps_lat=gps[0],
        gps_lon=gps[1],
        gps_accuracy_m=accuracy_m,
        gps_province_code=province_code,
        ip_location=location,
        ip_province_code=ip_province,
        connection_family=family,
        network_type=network_type,
    )


def test_gps_against_a_fixed_line_ip_location() -> None:
    assert round(distance_km(*HOAN_KIEM, *BEN_THANH)) == 1144  # Hoàn Kiếm (Hà Nội) - Bến Thành (Hồ Chí Minh City)
    assert _check(HOAN_KIEM) == ""
    assert _check(BAC_NINH, "24") == ""  # next province, 44 km: within 33 + 50 km
    assert "104 km from the IP location" in _check(HAI_PHONG, "31")
    reason = _check(BEN_THANH, "79")
    assert reason == (
        "GPS is 1,142 km from the IP location of this fixed-line address (accuracy radius 33 km + 50 km margin)"
    )
    # the fix's own accuracy counts in its favour: 90 km away is a conflict, not with a 10 km fix
    ninety_km_east = (21.0001, 105.698 + 90 / (111.195 * math.cos(math.radians(21.0001))))
    assert round(distance_km(*ninety_km_east, 21.0001, 105.698)) == 90
    assert _check(ninety_km_east) != "" and _check(ninety_km_east, accuracy_m=10_000) == ""


def test_gps_check_applies_only_where_the_ip_location_means_something() -> None:
    assert _check(BEN_THANH, "79", location=IpLocation(21.0, 105.7, 150)) == ""  # coarse radius: no check at all
    assert _check(BEN_THANH, "79", location=IpLocation(21.0, 105.7, 100)) != ""  # 100 km is still small
    assert _check(BEN_THANH, "79", family="mobile") == ""  # gateway location of a mobile address
    assert _check(BEN_THANH, "79", family="mobile", network_type="fixed") == ""
    assert _check(BEN_THANH, "79", family="") == ""  # unknown address, nothing declared
    assert _check(BEN_THANH, "79", family="", network_type="mobile") == ""  # ranked as mobile instead
    assert _check(BEN_THANH, "79", family="", network_type="5g") == ""
    assert _check(BEN_THANH, "79", family="", network_type="fixed") != ""  # unknown address declared fixed
    assert (
        _check(BEN_THANH, "79", family="fixed", network_type="mobile") != ""
    )  # known fixed: declaring mobile does not skip


def test_gps_against_the_ip_province_without_a_location() -> None:
    reason = _check(HOAN_KIEM, "01", location=None, ip_province="79")
    assert reason.startswith("GPS is in province 01, 1,") and "province 79" in reason
    assert _check(BEN_THANH, "79", location=None, ip_province="79") == ""
    # another province, but a few km from Hồ Chí Minh City's communes
    assert _check(BIEN_HOA, "75", location=None, ip_province="79") == ""
    assert _check(HOAN_KIEM, "01", location=None, ip_province=None) == ""  # nothing to compare with
    assert _check(HOAN_KIEM, "01", location=None, ip_province="79", family="mobile") == ""
    # a location without a radius says nothing precise: the province rule applies
    assert _check(HOAN_KIEM, "01", location=IpLocation(10.99, 106.64, None), ip_province="79") != ""


# --- the network type -----------------------------------------------------------------------------

CELL = ConnectionClass("Cellular", "mobile", "connection-db")
DSL = ConnectionClass("Cable/DSL", "fixed", "prefixes")
CORP = ConnectionClass("Corporate", "fixed", "connection-db")
SAT = ConnectionClass("Satellite", "fixed", "connection-db")
NONE = ConnectionClass()


@pytest.mark.parametrize(
    "declared, device, conn, expected",
    [
        ("fixed", None, CELL, ("fixed", "declared", "declared fixed, but the IP address is Cellular (connection-db)")),
        ("5g", None, DSL, ("5g", "declared", "declared 5g, but the IP address is Cable/DSL (prefixes)")),
        ("mobile", None, DSL, ("mobile", "declared", "declared mobile, but the IP address is Cable/DSL (prefixes)")),
        ("mobile", None, CORP, ("mobile", "declared", "")),  # corporate networks prove nothing about a phone
        ("fixed", None, SAT, ("fixed", "declared", "")),
        ("fixed", None, DSL, ("fixed", "declared", "")),
        ("mobile", None, CELL, ("mobile", "declared", "")),
        ("fixed", "5g", NONE, ("fixed", "declared", "declared fixed, but the device reports its own 5g modem")),
        ("mobile", "fixed", NONE, ("mobile", "declared", "")),  # a 4G router may sit behind the Ethernet cable
        (None, "mobile", DSL, ("mobile", "device", "device mobile, but the IP address is Cable/DSL (prefixes)")),
        (None, "fixed", NONE, ("fixed", "device", "")),
        (None, None, CELL, ("mobile", "ip", "")),
        (None, None, SAT, ("fixed", "ip", "")),
        (None, None, NONE, ("", "none", "")),
    ],
)
def test_network_type_decision(
    declared: str | None, device: str | None, conn: ConnectionClass, expected: tuple[str, str, str]
) -> None:
    assert tuple(decide_network_type(declared, device, conn)) == expected


# --- Geo.enrich and the server's attribution ------------------------------------------------------


def test_enrich_with_evidence(dbs: tuple[Path, Path]) -> None:
    asn, conn = dbs
    g = Geo(GeoConfig(asn_db=asn, city_db=asn, connection_db=conn))
    e = g.enrich("127.0.0.1", *HOAN_KIEM, 12, "fixed")
    assert tuple(e) == (
        "Viettel",
        7552,
        "01",
        "00070",
        "gps",
        12.0,
        "",
        "Cable/DSL",
        "fixed",
        "connection-db",
        "fixed",
        "declared",
        "",
    )
    e = g.enrich("127.0.0.1", *BEN_THANH, 10, "fixed")  # a Hà Nội fixed line with a GPS fix in Hồ Chí Minh City
    assert tuple(e[:6]) == ("Viettel", 7552, "01", None, "ip", None)
    assert e.location_conflict.startswith("GPS is 1,142 km from the IP location")
    e = g.enrich("127.0.0.1", *BEN_THANH, 10, "mobile")  # declaring mobile does not skip the check
    assert (e.province_code, e.location_source) == ("01", "ip") and e.location_conflict
    assert e.network_type_conflict == "declared mobile, but the IP address is Cable/DSL (connection-db)"
    e = g.enrich("192.0.2.200", *BEN_THANH, 10, "fixed")  # MobiFone Cellular: its location cannot contradict GPS
    assert (e.province_code, e.commune_code, e.location_source, e.location_conflict) == ("79", "26740", "gps", "")
    assert e.network_type_conflict == "declared fixed, but the IP address is Cellular (connection-db)"
    e = g.enrich("203.0.113.9", *HOAN_KIEM, None, "fixed")  # CMC 79, no location: the province rule
    assert (e.province_code, e.location_source) == ("79", "ip") and e.location_conflict.startswith(
        "GPS is in province 01"
    )
    e = g.enrich("203.0.113.9", *BIEN_HOA, None, "fixed")
    assert (e.province_code, e.location_source, e.location_accuracy_m, e.location_conflict) == ("75", "gps", None, "")
    e = g.enrich("192.0.2.200")
    assert (e.network_type, e.network_type_source, e.location_source) == ("mobile", "ip", "ip")
    e = g.enrich("8.8.8.8", *BEN_THANH, 5, "fixed")  # nothing known about the address: GPS decides
    assert (e.province_code, e.location_source, e.connection_type, e.network_type_source) == (
        "79",
        "gps",
        "",
        "declared",
    )
    e = g.enrich("8.8.8.8", *BEN_THANH, 5, None, "5g")
    assert (e.network_type, e.network_type_source) == ("5g", "device")
    with pytest.raises(ValidationError, match="'4g' is not one of fixed, mobile, 5g"):
        g.enrich("127.0.0.1", None, None, None, "4g")
    g.close()


def test_enrich_without_connection_db_keeps_todays_placements(dbs: tuple[Path, Path]) -> None:
    g = Geo(GeoConfig(asn_db=dbs[0], city_db=dbs[0]))
    assert tuple(g.enrich("127.0.0.1", *BEN_THANH, 10)[:5]) == ("Viettel", 7552, "79", "26740", "gps")
    assert tuple(g.enrich("127.0.0.1", *BEN_THANH, 10, "mobile")[:5]) == ("Viettel", 7552, "79", "26740", "gps")
    e = g.enrich("127.0.0.1", *BEN_THANH, 10, "fixed")  # unknown connection type, declared fixed: checked
    assert tuple(e[:5]) == ("Viettel", 7552, "01", None, "ip") and e.location_conflict
    assert (e.connection_type, e.connection_source, e.network_type_conflict) == ("", "", "")
    g.close()


def test_server_attribution_carries_the_evidence(dbs: tuple[Path, Path], tmp_path: Path) -> None:
    from ispeed.server.attribution import GeoAttribution, Placement

    pools = _write(tmp_path / "pools.csv", "prefix,network\n127.0.0.0/8,mobile\n")
    attr = GeoAttribution(str(dbs[0]), str(dbs[0]), str(dbs[1]), str(pools))
    attr.warm_up()
    p = attr.place("127.0.0.1", *BEN_THANH, 8.0, "fixed")
    assert p == Placement(
        "Viettel",
        7552,
        "79",
        "26740",
        "gps",
        8.0,
        "",
        "Cellular",
        "mobile",
        "prefixes",
        "fixed",
        "declared",
        "declared fixed, but the IP address is Cellular (prefixes)",
    )
    assert attr.place("127.0.0.1", None, None, None) == Placement(
        "Viettel", 7552, "01", "", "ip", None, "", "Cellular", "mobile", "prefixes", "mobile", "ip", ""
    )
    attr.close()
    plain = GeoAttribution()
    assert plain.place("127.0.0.1", None, None, None) == Placement()


def test_serve_flags_and_environment(dbs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ispeed.cli.main import build_parser
    from ispeed.server.cli import build_config

    pools = _write(tmp_path / "pools.csv", "prefix,network\n10.0.0.0/8,mobile\n")
    base = ["serve", "--store", f"chdb:{tmp_path / 'var'}", "--secret", "s" * 16]
    args = build_parser().parse_args([*base, "--connection-db", str(dbs[1]), "--network-prefixes", str(pools)])
    config = build_config(args)
    assert (config.connection_db, config.network_prefixes) == (str(dbs[1]), str(pools))  # type: ignore[attr-defined]
    monkeypatch.setenv("ISPEED_CONNECTION_DB", str(dbs[1]))
    monkeypatch.setenv("ISPEED_NETWORK_PREFIXES", str(pools))
    args = build_parser().parse_args(base)
    assert (args.connection_db, args.network_prefixes) == (str(dbs[1]), str(pools))
    bad = _write(tmp_path / "bad.csv", "prefix,network\n10.0.0.0/8,mobile\n10.0.0.0/9,cable\n")
    for extra, message in (
        (["--network-prefixes", str(bad)], r"--network-prefixes has value .*bad.csv:3: column network: 'cable'"),
        (["--connection-db", str(dbs[0])], r"--connection-db has value .*not a connection-type one"),
        (["--connection-db", str(tmp_path / "missing.mmdb")], r"--connection-db has value .*no such file"),
    ):
        monkeypatch.delenv("ISPEED_CONNECTION_DB")
        monkeypatch.delenv("ISPEED_NETWORK_PREFIXES")
        with pytest.raises(ConfigError, match=message):
            build_config(build_parser().parse_args([*base, *extra]))
        monkeypatch.setenv("ISPEED_CONNECTION_DB", "")
        monkeypatch.setenv("ISPEED_NETWORK_PREFIXES", "")


def test_serve_refuses_a_bad_prefix_file_in_one_line(tmp_path: Path) -> None:
    bad = _write(tmp_path / "pools.csv", "prefix,network\n10.0.0.0/8,mobile\n10.0.0.0/8,fixed\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ispeed.cli.main",
            "serve",
            "--port",
            "0",
            "--store",
            f"chdb:{tmp_path / 'var'}",
            "--network-prefixes",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "pools.csv:3: column prefix: 10.0.0.0/8 is already listed on line 2" in proc.stderr


# --- geo CLI --------------------------------------------------------------------------------------


def test_cli_ip_shows_location_and_connection(
    capsys: pytest.CaptureFixture[str], dbs: tuple[Path, Path], tmp_path: Path
) -> None:
    asn, conn = (str(p) for p in dbs)
    assert main(["geo", "ip", "192.0.2.200", "--asn-db", asn, "--city-db", asn, "--connection-db", conn]) == 0
    got = json.loads(capsys.readouterr().out)
    assert {
        k: got[k]
        for k in (
            "provider",
            "province_code",
            "latitude",
            "longitude",
            "accuracy_radius_km",
            "connection_type",
            "connection_family",
            "connection_source",
        )
    } == {
        "provider": "MobiFone",
        "province_code": "31",
        "latitude": 20.8759,
        "longitude": 106.47,
        "accuracy_radius_km": 32,
        "connection_type": "Cellular",
        "connection_family": "mobile",
        "connection_source": "connection-db",
    }
    pools = _write(tmp_path / "pools.csv", "prefix,network\n192.0.2.192/26,fixed\n")
    assert (
        main(["geo", "ip", "192.0.2.200", "--connection-db", conn, "--network-prefixes", str(pools), "--format", "csv"])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(
        "latitude,longitude,accuracy_radius_km,connection_type,connection_family,connection_source"
    )
    assert lines[1].endswith(",,,,Cable/DSL,fixed,prefixes")
    assert main(["geo", "ip", "192.0.2.200", "--connection-db", asn]) == 2
    assert "not a connection-type one" in capsys.readouterr().err


def test_cli_build_mmdb_with_connection_out(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = _write(
        tmp_path / "p.csv",
        "prefix,asn,provider,province_code,latitude,longitude,accuracy_radius_km,"
        "connection_type\n192.0.2.0/24,18403,FPT Telecom,48,16.05,108.2,10,Cable/DSL\n"
        "198.51.100.0/24,131429,,31,,,,\n",
    )
    assert (
        main(["geo", "build-mmdb", str(src), str(tmp_path / "o.mmdb"), "--connection-out", str(tmp_path / "c.mmdb")])
        == 0
    )
    assert json.loads(capsys.readouterr().out) == {
        "out": str(tmp_path / "o.mmdb"),
        "prefixes": "2",
        "connection_out": str(tmp_path / "c.mmdb"),
        "connection_prefixes": 1,
    }
    assert tuple(ConnectionClassifier(tmp_path / "c.mmdb").classify("192.0.2.9")) == (
        "Cable/DSL",
        "fixed",
        "connection-db",
    )
    assert (
        main(["geo", "build-mmdb", "--demo", str(tmp_path / "d.mmdb"), "--connection-out", str(tmp_path / "dc.mmdb")])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["connection_prefixes"] == len(DEMO_PREFIXES)
    assert main(["geo", "build-mmdb", str(src), str(tmp_path / "x.mmdb"), "--demo"]) == 2
    assert "PREFIXES.csv or --demo" in capsys.readouterr().err


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
