"""admin_geo: shipped units, GPS/IP lookups, name search, legacy conversion, MMDB building, CLI."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from ispeed.admin_geo import (
    DEMO_PREFIXES,
    Geo,
    GeoConfig,
    build_demo_mmdb,
    build_mmdb,
    commune,
    communes,
    convert_old_province,
    convert_old_ward,
    find,
    provider_for_asn,
    providers,
    province,
    provinces,
)
from ispeed.admin_geo.locate import Locator, check_position
from ispeed.admin_geo.mmdb import read_prefixes_csv
from ispeed.cli.main import main
from ispeed.core.errors import ValidationError

REPO = Path(__file__).resolve().parents[1]
SPECIAL_ZONES = {  # code -> (name, province)
    "06994": ("Vân Đồn", "22"),
    "07192": ("Cô Tô", "22"),
    "11914": ("Cát Hải", "31"),
    "11948": ("Bạch Long Vĩ", "31"),
    "19742": ("Cồn Cỏ", "44"),
    "20333": ("Hoàng Sa", "48"),
    "21548": ("Lý Sơn", "51"),
    "22736": ("Trường Sa", "56"),
    "23272": ("Phú Quý", "68"),
    "26732": ("Côn Đảo", "79"),
    "31078": ("Phú Quốc", "91"),
    "31105": ("Thổ Châu", "91"),
    "31108": ("Kiên Hải", "91"),
}


@pytest.fixture(scope="module")
def geo() -> Geo:
    return Geo()


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo_mmdb(tmp_path_factory.mktemp("mmdb") / "demo.mmdb")


# --- units ------------------------------------------------------------------------------------


def test_counts_types_and_codes() -> None:
    provs, comms = provinces(), communes()
    assert len(provs) == 34 and len(comms) == 3321
    assert Counter(p.type for p in provs) == {"tinh": 28, "thanh_pho": 6}
    assert {p.code for p in provs if p.type == "thanh_pho"} == {"01", "31", "46", "48", "79", "92"}
    assert Counter(c.type for c in comms) == {"xa": 2621, "phuong": 687, "dac_khu": 13}
    assert all(len(p.code) == 2 and p.code.isdigit() for p in provs)
    assert all(len(c.code) == 5 and c.code.isdigit() for c in comms)
    assert {c.province_code for c in comms} == {p.code for p in provs}
    assert all(c.full_name.startswith({"xa": "Xã ", "phuong": "Phường ", "dac_khu": "Đặc khu "}[c.type]) for c in comms)
    assert all(6 < c.lat < 24 and 102 < c.lon < 118 for c in comms)
    assert sum(len(communes(p.code)) for p in provs) == 3321


def test_known_units() -> None:
    assert province("01").full_name == "Thành phố Hà Nội"
    assert province(79).full_name == "Thành phố Hồ Chí Minh"
    assert province("46").name == "Huế"
    assert (province("22").type, province("24").type, province("75").type) == ("tinh", "tinh", "tinh")
    assert commune("00004").full_name == "Phường Ba Đình" and commune("00004").province_code == "01"
    assert commune("00070").full_name == "Phường Hoàn Kiếm"
    assert commune("26740").full_name == "Phường Sài Gòn" and commune("26740").province_code == "79"
    # types where the sources disagreed, settled by the 2025 resolutions (see CROSSCHECK.md)
    assert [commune(c).type for c in ("10543", "11848", "31213", "31299", "07294")] == [
        "phuong",
        "xa",
        "phuong",
        "xa",
        "xa",
    ]
    assert len(communes("01")) == 126 and len(communes("79")) == 168


def test_special_zones() -> None:
    zones = {c.code: (c.name, c.province_code) for c in communes() if c.type == "dac_khu"}
    assert zones == SPECIAL_ZONES


def test_unknown_codes_raise() -> None:
    with pytest.raises(ValidationError, match="no province has code '99'"):
        province("99")
    with pytest.raises(ValidationError, match="not a 5-digit code"):
        commune("abc")
    with pytest.raises(ValidationError):
        communes("02")  # a former province, not a current one


# --- GPS --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lat", "lon", "code"),
    [
        (21.0286, 105.8522, "00070"),  # Hồ Hoàn Kiếm
        (21.0369, 105.8347, "00004"),  # Lăng Chủ tịch Hồ Chí Minh, Ba Đình
        (10.7769, 106.7009, "26740"),  # Phường Sài Gòn (former District 1 centre)
        (8.6833, 106.6083, "26732"),  # Côn Sơn, Côn Đảo
        (10.2170, 103.9590, "31078"),  # Dương Đông, Phú Quốc
        (15.3800, 109.1200, "21548"),  # Lý Sơn island
        (20.1340, 107.7290, "11948"),  # Bạch Long Vĩ island
        (8.6450, 111.9200, "22736"),  # Trường Sa Lớn island (300 km from the zone's centroid)
    ],
)
def test_locate_known_places(geo: Geo, lat: float, lon: float, code: str) -> None:
    placed = geo.locate(lat, lon)
    assert placed is not None and placed.commune_code == code
    assert placed.province_code == commune(code).province_code


def test_locate_outside_and_coarse(geo: Geo) -> None:
    assert geo.locate(48.8566, 2.3522) is None  # Paris
    assert geo.locate(17.9757, 102.6331) is None  # Vientiane
    assert geo.locate(13.0, 110.5) is None  # open sea
    coarse = geo.locate(21.0286, 105.8522, accuracy_m=3000)
    assert coarse is not None and coarse.province_code == "01" and coarse.commune_code is None
    assert geo.locate(21.0286, 105.8522, accuracy_m=30_000) is None
    fine = geo.locate(21.0286, 105.8522, accuracy_m=15)
    assert fine is not None and fine.commune_code == "00070" and fine.distance_km is not None and fine.distance_km < 1


@pytest.mark.parametrize(
    ("lat", "lon", "acc", "field"),
    [
        (123, 105, None, "lat"),
        (21, 190, None, "lon"),
        ("x", 105, None, "lat"),
        (math.nan, 105, None, "lat"),
        (21, 105, -5, "accuracy_m"),
    ],
)
def test_locate_bad_input(lat: object, lon: object, acc: object, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        check_position(lat, lon, acc)
    assert info.value.field == field


def test_grid_matches_plain_kdtree(geo: Geo) -> None:
    loc = geo.locator
    rng = random.Random(7)
    pts = [(rng.uniform(8.5, 23.3), rng.uniform(102.2, 109.5)) for _ in range(1500)]
    pts += [(c.lat + rng.uniform(-0.02, 0.02), c.lon + rng.uniform(-0.02, 0.02)) for c in communes()[::7]]
    ref = Locator()
    for lat, lon in pts:
        i, d = loc.nearest(lat, lon)
        la, lo = math.radians(lat), math.radians(lon)
        _, j = ref._tree.query((math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la)))
        assert i == int(j)
    many = loc.locate_many([p[0] for p in pts[:200]], [p[1] for p in pts[:200]])
    single = [(lambda r: r.commune_code if r else None)(loc.locate(*p)) for p in pts[:200]]
    assert many == single


def test_polygons_preferred(tmp_path: Path) -> None:
    target = commune("00008")  # Ngọc Hà, next to Ba Đình
    ba_dinh = commune("00004")
    square = [
        [ba_dinh.lon - 0.002, ba_dinh.lat - 0.002],
        [ba_dinh.lon + 0.002, ba_dinh.lat - 0.002],
        [ba_dinh.lon + 0.002, ba_dinh.lat + 0.002],
        [ba_dinh.lon - 0.002, ba_dinh.lat + 0.002],
        [ba_dinh.lon - 0.002, ba_dinh.lat - 0.002],
    ]
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": target.code},
                "geometry": {"type": "Polygon", "coordinates": [square]},
            }
        ],
    }
    path = tmp_path / "b.geojson"
    path.write_text(json.dumps(doc))
    g = Geo(GeoConfig(boundaries=path))
    inside = g.locate(ba_dinh.lat, ba_dinh.lon)
    assert inside is not None and inside.commune_code == "00008" and inside.method == "polygon"
    # just outside the square, still among covered candidates -> outside every polygon
    assert g.locate(ba_dinh.lat + 0.003, ba_dinh.lon) is None
    # far away, no polygon supplied there -> centroid method
    far = g.locate(10.7769, 106.7009)
    assert far is not None and far.method == "centroid" and far.commune_code == "26740"


# --- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "level", "code"),
    [
        ("Thai Nguyen", "province", "19"),
        ("thái nguyên", "province", "19"),
        ("TP HCM", "province", "79"),
        ("Ho Chi Minh", "province", "79"),
        ("tp. hồ chí minh", "province", "79"),
        ("HA NOI", "province", "01"),
        ("Côn Đảo", "commune", "26732"),
        ("dac khu phu quoc", "commune", "31078"),
        ("Hoàn Kiếm", "commune", "00070"),
        ("Ea H'Leo", "commune", "24184"),
        ("hue", "province", "46"),
    ],
)
def test_find(query: str, level: str, code: str) -> None:
    best = find(query)[0]
    assert (best.unit.level, best.unit.code, best.score) == (level, code, 0)


def test_find_nothing() -> None:
    assert find("zzzz qqq") == [] and find("  ") == []


# --- legacy -------------------------------------------------------------------------------------


def test_convert_provinces() -> None:
    assert convert_old_province("74").new_codes == ("79",)  # Bình Dương
    assert convert_old_province(77).new_code == "79"  # Bà Rịa - Vũng Tàu
    assert convert_old_province("02").new_code == "08"  # Hà Giang -> Tuyên Quang
    assert convert_old_province("10").new_code == "15"  # Lào Cai keeps Yên Bái's code
    assert convert_old_province("01").new_code == "01"
    targets = Counter(convert_old_province(f"{n:02d}").new_code for n in range(1, 97) if _is_old_province(f"{n:02d}"))
    assert sum(targets.values()) == 63 and len(targets) == 34
    with pytest.raises(ValidationError, match="63 former province"):
        convert_old_province("03")


def _is_old_province(code: str) -> bool:
    try:
        convert_old_province(code)
    except ValidationError:
        return False
    return True


def test_convert_wards() -> None:
    phuc_xa = convert_old_ward("00001")  # Phường Phúc Xá, Ba Đình -> Phường Hồng Hà
    assert phuc_xa.exact and phuc_xa.new_code == "00097"
    cong_vi = convert_old_ward(7)  # Phường Cống Vị, split
    assert not cong_vi.exact and cong_vi.new_code is None
    assert cong_vi.new_codes == ("00008", "00025") and cong_vi.default_code == "00008"
    with pytest.raises(ValidationError, match="10,035"):
        convert_old_ward("99999")
    with pytest.raises(ValidationError):
        convert_old_ward("12a")


def test_every_old_ward_lands_in_its_provinces_successor() -> None:
    from ispeed.admin_geo.legacy import _old_wards

    wards = _old_wards()
    assert len(wards) == 10035
    split = 0
    for code in wards:
        conv = convert_old_ward(code)
        assert conv.new_codes and all(commune(c) for c in conv.new_codes)
        split += not conv.exact
    assert split == 471


# --- providers and IP -------------------------------------------------------------------------


def test_providers_table() -> None:
    names = [p.name for p in providers()]
    for expected in ("Viettel", "VNPT", "FPT Telecom", "MobiFone", "CMC Telecom", "Vietnamobile", "SCTV"):
        assert expected in names
    asns = [a for p in providers() for a in p.asns]
    assert len(asns) == len(set(asns))
    assert provider_for_asn(7552).name == "Viettel"  # type: ignore[union-attr]
    assert provider_for_asn(18403).name == "FPT Telecom"  # type: ignore[union-attr]
    assert provider_for_asn(15169) is None


def test_demo_db_lookups(demo_db: Path) -> None:
    g = Geo(GeoConfig(asn_db=demo_db, city_db=demo_db))
    got = {
        ip: g.lookup_ip(ip)
        for ip in (
            "127.0.0.1",
            "::1",
            "192.0.2.7",
            "198.51.100.1",
            "203.0.113.9",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "8.8.8.8",
        )
    }
    assert (got["127.0.0.1"].asn, got["127.0.0.1"].provider, got["127.0.0.1"].province_code) == (7552, "Viettel", "01")
    assert (got["::1"].provider, got["::1"].province_code) == ("VNPT", "79")
    assert (got["192.0.2.7"].provider, got["192.0.2.7"].province_code) == ("FPT Telecom", "48")
    assert got["203.0.113.9"].asn == 45903 and got["2001:db8::1"].province_code == "79"
    assert got["::ffff:127.0.0.1"].provider == "Viettel"
    assert got["8.8.8.8"].asn is None and got["8.8.8.8"].province_code is None
    with pytest.raises(ValidationError, match="not an IPv4 or IPv6"):
        g.lookup_ip("300.1.1.1")
    g.close()
    assert len(DEMO_PREFIXES) >= 6


def test_build_mmdb_from_csv(tmp_path: Path) -> None:
    src = tmp_path / "p.csv"
    src.write_text(
        "prefix,asn,provider,province_code\n100.64.0.0/10,AS24086,viettel group,92\n"
        "2001:db8:1::/48,45543,,1\n10.0.0.0/8,,,\n"
    )
    rows = read_prefixes_csv(src)
    assert [(r.asn, r.provider, r.province_code) for r in rows] == [
        (24086, "Viettel", "92"),
        (45543, "SCTV", "01"),
        (None, None, None),
    ]
    out = tmp_path / "o.mmdb"
    assert build_mmdb(rows, out) == 3
    g = Geo(GeoConfig(asn_db=out, city_db=out))
    assert g.lookup_ip("100.64.1.2").province_code == "92"
    assert g.lookup_ip("2001:db8:1::9").provider == "SCTV"
    g.close()
    bad = tmp_path / "bad.csv"
    bad.write_text("prefix,asn,provider,province_code\n10.0.0.1/8,1,,\n")
    with pytest.raises(ValidationError, match=r"bad.csv:2"):
        read_prefixes_csv(bad)
    bad.write_text("prefix,asn,provider,province_code\n10.0.0.0/8,1,,02\n")
    with pytest.raises(ValidationError, match="34 province codes"):
        read_prefixes_csv(bad)


def test_a_file_that_is_not_a_database_is_a_config_error(tmp_path: Path) -> None:
    from ispeed.core.errors import ConfigError

    junk = tmp_path / "junk.mmdb"
    junk.write_text("not a database")  # maxminddb raises InvalidDatabaseError, a RuntimeError
    for config in (GeoConfig(asn_db=junk), GeoConfig(city_db=junk)):
        with pytest.raises(ConfigError, match="cannot open a MaxMind DB file"):
            Geo(config).lookup_ip("127.0.0.1")


def test_subdivision_names_of_commercial_databases() -> None:
    from ispeed.admin_geo.ipdb import province_from_subdivision

    assert province_from_subdivision({"en": "Binh Duong Province"}) == "79"
    assert province_from_subdivision({"en": "Hanoi"}) == "01"
    assert province_from_subdivision({"vi": "Tỉnh Quảng Nam"}) == "48"
    assert province_from_subdivision({"en": "Bavaria"}) is None


def test_enrich(demo_db: Path) -> None:
    g = Geo(GeoConfig(asn_db=demo_db, city_db=demo_db))
    # the first five fields; the evidence after them is tested in test_evidence.py
    assert tuple(g.enrich("127.0.0.1", 10.7769, 106.7009, 10)[:6]) == ("Viettel", 7552, "79", "26740", "gps", 10.0)
    assert tuple(g.enrich("127.0.0.1", None, None)[:6]) == ("Viettel", 7552, "01", None, "ip", None)
    assert tuple(g.enrich("127.0.0.1", 123.0, 5.0)[:5]) == ("Viettel", 7552, "01", None, "ip")  # bad GPS ignored
    assert tuple(g.enrich("8.8.8.8", 48.85, 2.35)[:5]) == (None, None, None, None, "none")
    assert tuple(Geo().enrich("127.0.0.1", 21.0286, 105.8522, 5000)[:6]) == (None, None, "01", None, "gps", 5000.0)
    g.close()


# --- CLI ------------------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["geo", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_units(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "units", "--level", "province", "--format", "csv")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 35
    assert lines[0].startswith("code,name,full_name,type,type_name,level,parent_code,lat,lon")
    code, out, _ = run(capsys, "units", "--level", "commune", "--province", "79")
    rows = json.loads(out)
    assert len(rows) == 168 and {r["parent_code"] for r in rows} == {"79"}


def test_cli_locate_ip_convert_find(capsys: pytest.CaptureFixture[str], demo_db: Path) -> None:
    code, out, _ = run(capsys, "locate", "--lat", "21.0286", "--lon", "105.8522")
    got = json.loads(out)
    assert code == 0 and (got["province_code"], got["commune_code"]) == ("01", "00070")
    assert got["distance_km"] < 1
    code, out, _ = run(capsys, "ip", "192.0.2.200", "--asn-db", str(demo_db), "--city-db", str(demo_db))
    assert json.loads(out) | {"as_org": None} == {
        "ip": "192.0.2.200",
        "asn": 131429,
        "provider": "MobiFone",
        "province_code": "31",
        "as_org": None,
        "latitude": 20.8759,
        "longitude": 106.47,
        "accuracy_radius_km": 32,
        "connection_type": None,
        "connection_family": None,
        "connection_source": None,
    }
    code, out, _ = run(capsys, "convert", "--old-province", "74")
    assert json.loads(out)["new_codes"] == ["79"] and json.loads(out)["exact"] is True
    code, out, _ = run(capsys, "convert", "--old-ward", "00007")
    assert json.loads(out)["exact"] is False and json.loads(out)["new_codes"] == ["00008", "00025"]
    code, out, _ = run(capsys, "find", "Ho Chi Minh")
    assert json.loads(out)[0]["code"] == "79"


@pytest.mark.parametrize(
    "argv",
    [
        ("locate", "--lat", "123", "--lon", "105"),
        ("ip", "1.2.3"),
        ("convert", "--old-province", "99"),
        ("convert", "--old-ward", "xx"),
        ("units", "--level", "commune", "--province", "03"),
    ],
)
def test_cli_bad_input(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("ispeed geo: error: ")


def test_cli_build_mmdb(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = tmp_path / "p.csv"
    src.write_text("prefix,asn,provider,province_code\n192.0.2.0/24,18403,FPT Telecom,48\n")
    code, out, _ = run(capsys, "build-mmdb", str(src), str(tmp_path / "o.mmdb"))
    assert code == 0 and json.loads(out)["prefixes"] == "1" and (tmp_path / "o.mmdb").stat().st_size > 0
    code, _, err = run(capsys, "build-mmdb", str(tmp_path / "missing.csv"), str(tmp_path / "x.mmdb"))
    assert code == 2 and "cannot read" in err


# --- packaging ----------------------------------------------------------------------------------


def test_imports_stay_light() -> None:
    code = (
        "import sys, ispeed.admin_geo, ispeed.admin_geo.cli; "
        "heavy = [m for m in ('scipy', 'numpy', 'maxminddb', 'mmdb_writer') if m in sys.modules]; "
        "import ispeed.client; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    code = "import sys, ispeed.client; assert 'ispeed.admin_geo' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_build_script_reproduces_committed_files(tmp_path: Path) -> None:
    """Downloads the two pinned wheels (skipped offline) and compares every generated byte."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    proc = subprocess.run(
        [sys.executable, str(REPO / "admin_geo" / "build_data.py"), "--check", "--wheels", str(wheels)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 and "differs from a rebuild" not in proc.stderr:
        pytest.skip(f"cannot fetch the pinned wheels here: {proc.stderr.strip().splitlines()[-1:]}")
    assert proc.returncode == 0, proc.stderr
