"""Where simulated tests happen and who carries them: provinces, communes and providers with weights.

`load_places()` is the one source `simulate` reads: the official 34 provinces and 3,321
communes (with centroids) and the provider names of `ispeed.admin_geo`, weighted with the
approximate populations below (commune weight: the province's population shared among its
communes, wards 3× denser than rural communes). Without admin_geo data it falls back to a
built-in table: the same provinces and *synthetic* communes (codes `PPxxx`, province code +
running number, spread by population), clearly marked in `Places.source`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger("ispeed.aggregator.places")


@dataclass(frozen=True)
class Provider:
    """One ISP: stored code, display name, ASN, and its market share per network type."""

    code: str
    name: str
    asn: int
    shares: tuple[tuple[str, float], ...]  # (network_type, share); shares per type sum to 1


@dataclass(frozen=True)
class Places:
    """Parallel tuples: provinces with populations, communes with province and weight, providers."""

    province_codes: tuple[str, ...]
    province_population: tuple[float, ...]
    commune_codes: tuple[str, ...]
    commune_province: tuple[str, ...]
    commune_weight: tuple[float, ...]
    providers: tuple[Provider, ...]
    source: str
    commune_lat: tuple[float, ...] | None = None  # centroids, when known
    commune_lon: tuple[float, ...] | None = None
    commune_type: tuple[str, ...] | None = None  # admin_geo's unit type (phuong, xa, dac_khu), when known


# (code, name, population in millions); codes of the provinces kept by Resolution 202/2025/QH15.
PROVINCES: tuple[tuple[str, str, float], ...] = (
    ("01", "Hà Nội", 8.7),
    ("04", "Cao Bằng", 0.57),
    ("08", "Tuyên Quang", 1.86),
    ("11", "Điện Biên", 0.65),
    ("12", "Lai Châu", 0.49),
    ("14", "Sơn La", 1.3),
    ("15", "Lào Cai", 1.78),
    ("19", "Thái Nguyên", 1.8),
    ("20", "Lạng Sơn", 0.8),
    ("22", "Quảng Ninh", 1.4),
    ("24", "Bắc Ninh", 3.6),
    ("25", "Phú Thọ", 4.0),
    ("31", "Hải Phòng", 4.7),
    ("33", "Hưng Yên", 3.6),
    ("37", "Ninh Bình", 4.4),
    ("38", "Thanh Hóa", 4.3),
    ("40", "Nghệ An", 3.8),
    ("42", "Hà Tĩnh", 1.6),
    ("44", "Quảng Trị", 1.9),
    ("46", "Huế", 1.43),
    ("48", "Đà Nẵng", 3.07),
    ("51", "Quảng Ngãi", 2.2),
    ("52", "Gia Lai", 3.6),
    ("56", "Khánh Hòa", 2.2),
    ("66", "Đắk Lắk", 3.3),
    ("68", "Lâm Đồng", 3.9),
    ("75", "Đồng Nai", 4.5),
    ("79", "Hồ Chí Minh", 14.0),
    ("80", "Tây Ninh", 3.3),
    ("82", "Đồng Tháp", 4.4),
    ("86", "Vĩnh Long", 4.3),
    ("91", "An Giang", 4.9),
    ("92", "Cần Thơ", 4.2),
    ("96", "Cà Mau", 2.6),
)
COMMUNE_COUNT = 3321

# Approximate market shares (fixed broadband, 4G mobile, 5G) used by the simulator only.
# `code` is the provider name stored with results (admin_geo's canonical spelling).
PROVIDERS: tuple[Provider, ...] = (
    Provider("Viettel", "Viettel", 7552, (("fixed", 0.40), ("mobile", 0.55), ("5g", 0.65))),
    Provider("VNPT", "VNPT", 45899, (("fixed", 0.33), ("mobile", 0.21), ("5g", 0.20))),
    Provider("FPT Telecom", "FPT", 18403, (("fixed", 0.20),)),
    Provider("CMC Telecom", "CMC", 45903, (("fixed", 0.04),)),
    Provider("SCTV", "SCTV", 45543, (("fixed", 0.03),)),
    Provider("MobiFone", "MobiFone", 131429, (("mobile", 0.19), ("5g", 0.15))),
    Provider("Vietnamobile", "Vietnamobile", 0, (("mobile", 0.05),)),
)
WARD_DENSITY = 3.0  # a ward (phường) holds ~3× the people of a rural commune (xã) of the province


def builtin_places() -> Places:
    """The built-in table: real provinces, synthetic communes (largest-remainder split by population)."""
    pops = [p for _, _, p in PROVINCES]
    total = sum(pops)
    quotas = [COMMUNE_COUNT * p / total for p in pops]
    counts = [max(1, int(q)) for q in quotas]
    by_remainder = sorted(range(len(pops)), key=lambda i: (-(quotas[i] - int(quotas[i])), i))
    for i in by_remainder[: COMMUNE_COUNT - sum(counts)]:
        counts[i] += 1
    codes: list[str] = []
    provinces: list[str] = []
    weights: list[float] = []
    for (code, _, pop), count in zip(PROVINCES, counts, strict=True):
        for j in range(count):
            codes.append(f"{code}{j + 1:03d}")
            provinces.append(code)
            # Deterministic uneven weights inside a province: a few dense wards, many small communes.
            weights.append(pop / count * (3.0 if j % 10 == 0 else 1.0 + (j * 7919 % 13) / 13))
    return Places(
        province_codes=tuple(c for c, _, _ in PROVINCES),
        province_population=tuple(pops),
        commune_codes=tuple(codes),
        commune_province=tuple(provinces),
        commune_weight=tuple(weights),
        providers=PROVIDERS,
        source="built-in table (34 provinces, synthetic communes)",
    )


def load_places() -> Places:
    """admin_geo's provinces, communes and providers when available, else the built-in table."""
    places = _from_admin_geo()
    if places is None:
        log.info("admin_geo data not available; simulating with the built-in place table")
        return builtin_places()
    return places


def _from_admin_geo() -> Places | None:
    """Places built from ispeed.admin_geo's shipped data, or None when that data is not there."""
    try:
        from ispeed.admin_geo import canonical_provider, communes, provinces
    except ImportError:
        return None
    population = {code: pop for code, _, pop in PROVINCES}
    province_list = provinces()
    if {p.code for p in province_list} != set(population):
        log.warning("admin_geo provinces differ from the simulator's population table; using the built-in table")
        return None
    units = communes()
    per_province: dict[str, float] = {}
    for c in units:
        per_province[c.province_code] = per_province.get(c.province_code, 0.0) + _density(c.type)
    providers = []
    for p in PROVIDERS:
        known = canonical_provider(p.code)
        name = known.name if known else p.code
        asn = known.asns[0] if known and known.asns else p.asn
        providers.append(Provider(name, p.name, asn, p.shares))
    return Places(
        province_codes=tuple(p.code for p in province_list),
        province_population=tuple(population[p.code] for p in province_list),
        commune_codes=tuple(c.code for c in units),
        commune_province=tuple(c.province_code for c in units),
        commune_weight=tuple(
            population[c.province_code] * _density(c.type) / per_province[c.province_code] for c in units
        ),
        providers=tuple(providers),
        source=f"admin_geo ({len(province_list)} provinces, {len(units)} communes)",
        commune_lat=tuple(c.lat for c in units),
        commune_lon=tuple(c.lon for c in units),
        commune_type=tuple(c.type for c in units),
    )


def _density(unit_type: str) -> float:
    return WARD_DENSITY if unit_type == "phuong" else 1.0
