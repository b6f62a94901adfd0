"""Synthetic national test results for demos and benchmarks, marked simulated, reproducible by seed.

Model (all vectorised numpy, generated in fixed chunks so the rows depend only on the seed, the
month and the test count):
- a pool of devices, each with a network type, a provider (market share per network type), a
  home commune (population-weighted) and a speed level; 15% are heavy testers (≈8× the tests);
  `anonymous_share` have no device id (the IP hash stands in for them);
- 40% of tests carry a GPS position (commune centroid ± ~400 m, rounded to 0.01°) when
  the commune centroids are known (admin_geo), the others are placed by IP;
- each test picks a device, a local day and a local hour (diurnal curve, evening peak); mobile
  and 5G tests are sometimes taken away from home (another commune);
- speeds follow public figures of Vietnam in 2025 (below: 5G > fixed > mobile medians): a fixed
  line's plan tier (150 Mbit/s to 1 Gbit/s, capped a little above the plan) and whether its device
  tests over a cable or Wi-Fi, a phone's own capability, then the provider (per network type),
  province, commune (wards faster than rural communes, plus a lasting commune factor) and evening
  congestion, with log-normal noise per test; latency and jitter likewise;
- about `invalid_share` of the tests are invalid: failed (zero throughput) or flagged by the server.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ispeed.aggregator.places import Places, load_places
from ispeed.core.errors import UsageError
from ispeed.core.method import METHOD_VERSION, SPEED_ONLY_VERSION
from ispeed.core.schema import MEASUREMENT_COLUMNS
from ispeed.core.store import Store
from ispeed.core.timeutil import month_bounds

CHUNK_ROWS = 250_000  # generation unit: fixed, so the data never depends on the insert batch size
NETWORK_SHARES = (("fixed", 0.50), ("mobile", 0.35), ("5g", 0.15))
# Speeds of Vietnam in mid-2025, from VNNIC's i-Speed monthly medians as reported in the press:
# - fixed broadband 271.2 Mbit/s down, 201.0 up (August 2025; vneconomy.vn, 8 September 2025) and
#   272.4 / 202.1 (September; viettimes.vn, 28 October 2025); by provider in September: Viettel
#   320.7, CMC 270.9, VNPT 259.5, FPT Telecom 124.4, SCTV 86.9 Mbit/s down;
# - 5G 447.0 down, 99.3 up (July 2025; ngaynay.vn, 13 August 2025); by provider in August:
#   Viettel 457.3, MobiFone 411.0, VNPT third (vneconomy.vn, 8 September 2025);
# - mobile broadband 81.0 down, 28.4 up (August 2025, 4G and 5G together; ngaynay.vn); 5G's 594.8
#   of January 2026 was "about ten times 4G" (dantri.com.vn, 4 March 2026): ~60 Mbit/s for 4G;
# - Viettel and VNPT doubled their entry plans to at least 300 Mbit/s in April 2025 (24h.com.vn).
# Per technology: the download (Mbps) of a device of level 1 in a place and at an hour of factor 1,
# set so that the national medians of a simulated month come out at the figures above (fixed ~272,
# 5G ~447, mobile ~60: tests/test_simulate.py checks them); the log-sigma of one test around its
# device's level; the upload/download ratio; the median idle latency (ms).
TECHNOLOGY = {
    "fixed": (365.0, 0.22, 0.77, 9.0),
    "5g": (480.0, 0.40, 0.22, 22.0),
    "mobile": (64.0, 0.50, 0.35, 38.0),
}
# A fixed line's plan (Mbit/s) and the share of lines on it: entry plans of 300 Mbit/s since 2025,
# older 150 Mbit/s lines, and gigabit plans (26 % of users could get > 1 Gbit/s in early 2026,
# fewer buy it: dantri.com.vn, 4 March 2026).
FIXED_PLANS_MBPS = ((150.0, 0.12), (300.0, 0.46), (500.0, 0.27), (1000.0, 0.15))
FIXED_LEVEL_PLAN_MBPS = 300.0  # a fixed line's level is its plan over this, times its efficiency
PLAN_HEADROOM = 1.1  # lines are provisioned a little above their plan: no test exceeds plan × 1.1
WIRED_SHARE = 0.3  # fixed devices that test over a cable; the others test over Wi-Fi
WIRED_EFFICIENCY = (1.0, 0.08)  # median share of the plan a test reaches, log-sigma across devices
WIFI_EFFICIENCY = (0.6, 0.35)
PHONE_SIGMA = 0.35  # log-sigma of a phone's own level (handset, where it is usually used)
# Provider speed factors per network type, from the figures above (fixed: the provider's median
# over the national one; 5G likewise); mobile (4G) ones are illustrative, no per-provider figure
# was at hand. A provider missing here has factor 1.
PROVIDER_FACTOR: dict[str, dict[str, float]] = {
    "fixed": {"Viettel": 1.18, "CMC Telecom": 0.99, "VNPT": 0.95, "FPT Telecom": 0.46, "SCTV": 0.32},
    "5g": {"Viettel": 1.02, "MobiFone": 0.92, "VNPT": 0.88},
    "mobile": {"Viettel": 1.06, "VNPT": 1.0, "MobiFone": 0.94, "Vietnamobile": 0.72},
}
# A commune's lasting speed factor: wards (phường) faster than rural communes (xã) and island
# zones (đặc khu), times a log-normal factor per commune drawn from COMMUNE_SEED, so a commune
# keeps its character from month to month and seed to seed.
COMMUNE_TYPE_FACTOR = {"phuong": 1.15, "xa": 0.9, "dac_khu": 0.8}
COMMUNE_SIGMA = 0.2
COMMUNE_SEED = 20250701
GPS_SHARE = 0.4  # tests with a (rounded) GPS position, when commune centroids are known
# Relative test volume per local hour 0..23 (quiet nights, lunch bump, evening peak).
DIURNAL = np.array([2, 1, 1, 1, 1, 2, 4, 6, 7, 7, 7, 8, 9, 8, 7, 7, 8, 9, 11, 13, 14, 14, 11, 6], float)
CONGESTION = 1.0 - 0.18 * np.clip((DIURNAL - 7.0) / 7.0, 0.0, 1.0)  # evening slowdown
INVALID_REASONS = np.array(["counter_mismatch", "too_short"], dtype=object)


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate: the local month, how many tests, and the seed."""

    year: int
    month: int
    tests: int
    seed: int = 1
    invalid_share: float = 0.03
    away_share: float = 0.05  # mobile/5G tests taken outside the home commune
    anonymous_share: float = 0.05  # devices without a device id (their IP hash stands in)

    def __post_init__(self) -> None:
        if self.tests < 0:
            raise UsageError(f"--tests {self.tests} is negative: give a number of tests ≥ 0")
        if not 0 <= self.invalid_share < 1:
            raise UsageError(f"invalid_share {self.invalid_share} must be in [0, 1)")


@dataclass(frozen=True)
class SimulationReport:
    rows: int
    seconds: float
    places_source: str


@dataclass(frozen=True)
class _Devices:
    network: np.ndarray  # index into NETWORK_SHARES
    provider: np.ndarray  # index into places.providers
    commune: np.ndarray  # index into places.commune_codes
    level: np.ndarray  # the device's speed level relative to its technology's median
    cap_mbps: np.ndarray  # no test is faster (a fixed line's plan × PLAN_HEADROOM; phones: inf)
    cum_weight: np.ndarray
    device_hash: np.ndarray  # object array of str ('' for devices without an id)
    ip_hash: np.ndarray


@dataclass(frozen=True)
class _Context:
    """What every chunk of a month shares: its days, and lookup arrays indexed like `_Devices`'
    (network type, provider, province, commune index → name, factor, weight, centroid)."""

    days: int  # local days in the month
    epoch0: int  # 00:00 UTC of the month's first day, Unix seconds (local midnight is 7 h earlier)
    dates: np.ndarray  # dt.date per day (object)
    network_names: np.ndarray  # per network index (object)
    tech_median: np.ndarray  # download of a level-1 device in a factor-1 place and hour, Mbps
    tech_sigma: np.ndarray  # log-sigma of the download
    tech_up: np.ndarray  # upload/download ratio
    tech_latency: np.ndarray  # median idle latency, ms
    provider_codes: np.ndarray  # per provider index (object)
    provider_asn: np.ndarray  # int64
    provider_factor: np.ndarray  # speed factor, [network index, provider index]
    province_codes: np.ndarray  # per province index (object)
    province_factor: np.ndarray  # speed factor, 0.8-1.2 by population
    province_server: np.ndarray  # test server id (object)
    commune_codes: np.ndarray  # per commune index (object)
    commune_weight: np.ndarray  # population weight
    commune_factor: np.ndarray  # lasting speed factor (type × a log-normal draw from COMMUNE_SEED)
    commune_province_idx: np.ndarray  # the commune's province index
    commune_centroid: tuple[np.ndarray, np.ndarray] | None  # lat, lon, degrees (None: unknown, placed by IP)


def _choice(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    cum = np.cumsum(weights, dtype=float)
    picked: np.ndarray = np.searchsorted(cum, rng.random(size) * cum[-1], side="right")
    return picked


def _hex(values: np.ndarray, prefix: str) -> np.ndarray:
    return np.array([f"{prefix}{v:016x}" for v in values.tolist()], dtype=object)


def _devices(rng: np.random.Generator, places: Places, count: int, anonymous_share: float) -> _Devices:
    network = _choice(rng, np.array([s for _, s in NETWORK_SHARES]), count)
    provider = np.zeros(count, dtype=np.int64)
    for n_idx, (network_type, _) in enumerate(NETWORK_SHARES):
        shares = np.array([dict(p.shares).get(network_type, 0.0) for p in places.providers])
        mask = network == n_idx
        provider[mask] = _choice(rng, shares, int(mask.sum()))
    commune = _choice(rng, np.array(places.commune_weight), count)
    level, cap_mbps = _levels(rng, network == 0, count)
    heavy = rng.random(count) < 0.15
    weight = np.where(heavy, rng.lognormal(np.log(8.0), 0.5, count), 1.0)
    keys = rng.integers(0, 2**63, size=(2, count), dtype=np.int64)
    device_hash = _hex(keys[0], "")
    device_hash[rng.random(count) < anonymous_share] = ""
    return _Devices(network, provider, commune, level, cap_mbps, np.cumsum(weight), device_hash, _hex(keys[1], "ip"))


def _levels(rng: np.random.Generator, fixed: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Each device's speed level (relative to its technology's median) and its cap: a fixed line's
    plan tier over the median plan, times the share of it a cable or Wi-Fi test reaches; a phone's
    own log-normal level, uncapped."""
    plans = np.array([p for p, _ in FIXED_PLANS_MBPS])
    plan = plans[_choice(rng, np.array([s for _, s in FIXED_PLANS_MBPS]), count)]
    wired = rng.random(count) < WIRED_SHARE
    median, sigma = (
        np.where(wired, WIRED_EFFICIENCY[0], WIFI_EFFICIENCY[0]),
        np.where(wired, WIRED_EFFICIENCY[1], WIFI_EFFICIENCY[1]),
    )
    efficiency = median * np.exp(sigma * rng.standard_normal(count))
    phone = rng.lognormal(0.0, PHONE_SIGMA, count)
    fixed_level = plan / FIXED_LEVEL_PLAN_MBPS * efficiency
    return np.where(fixed, fixed_level, phone), np.where(fixed, plan * PLAN_HEADROOM, np.inf)


def _chunk(
    rng: np.random.Generator,
    cfg: SimulationConfig,
    places: Places,
    dev: _Devices,
    first: int,
    rows: int,
    ctx: _Context,
) -> dict[str, Any]:
    """Columns of `rows` tests numbered from `first`, in MEASUREMENT_COLUMNS order."""
    d = np.searchsorted(dev.cum_weight, rng.random(rows) * dev.cum_weight[-1], side="right")
    network = dev.network[d]
    provider = dev.provider[d]
    commune = dev.commune[d].copy()
    away = (network != 0) & (rng.random(rows) < cfg.away_share)
    commune[away] = _choice(rng, ctx.commune_weight, int(away.sum()))
    province = ctx.commune_province_idx[commune]
    day = rng.integers(0, ctx.days, rows)
    hour = _choice(rng, DIURNAL, rows)
    started = ctx.epoch0 + day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, rows) - 7 * 3_600

    median = ctx.tech_median[network] * ctx.provider_factor[network, provider] * ctx.province_factor[province]
    download = median * ctx.commune_factor[commune] * dev.level[d] * CONGESTION[hour]
    download = np.minimum(download * rng.lognormal(0.0, ctx.tech_sigma[network]), dev.cap_mbps[d])
    download = np.round(np.clip(download, 0.2, 2_500.0), 3)
    upload = np.round(np.clip(download * ctx.tech_up[network] * rng.lognormal(0.0, 0.3, rows), 0.1, 2_500.0), 3)
    latency = np.round(ctx.tech_latency[network] * rng.lognormal(0.0, 0.45, rows) / CONGESTION[hour], 2)
    jitter = np.round(latency * rng.lognormal(np.log(0.12), 0.6, rows), 2)

    bad = rng.random(rows) < cfg.invalid_share
    failed = bad & (rng.random(rows) < 0.35)
    download[failed] = 0.0
    upload[failed] = 0.0
    flagged = bad & ~failed
    reason = np.full(rows, "", dtype=object)
    reason[failed] = "failed"
    reason[flagged] = INVALID_REASONS[rng.integers(0, 2, int(flagged.sum()))]

    duration = 10.0
    bytes_down = (download * 1e6 / 8 * duration).astype(np.int64)
    bytes_up = (upload * 1e6 / 8 * duration).astype(np.int64)
    ids = range(first, first + rows)
    tag = f"sim{cfg.seed}-{cfg.year:04d}{cfg.month:02d}-"
    lat = np.full(rows, None, dtype=object)
    lon = np.full(rows, None, dtype=object)
    source = np.full(rows, "ip", dtype=object)
    if ctx.commune_centroid is not None:
        commune_lat, commune_lon = ctx.commune_centroid
        gps = rng.random(rows) < GPS_SHARE
        source[gps] = "gps"
        lat[gps] = np.round(commune_lat[commune[gps]] + rng.normal(0, 0.004, int(gps.sum())), 2).tolist()
        lon[gps] = np.round(commune_lon[commune[gps]] + rng.normal(0, 0.004, int(gps.sum())), 2).tolist()
    columns: dict[str, Any] = {
        "test_id": [f"{tag}{i:010d}" for i in ids],
        "started_at": started,
        "local_date": ctx.dates[day],
        "network_type": ctx.network_names[network],
        "provider": ctx.provider_codes[provider],
        "asn": ctx.provider_asn[provider],
        "province_code": ctx.province_codes[province],
        "commune_code": ctx.commune_codes[commune],
        "location_source": source,
        "lat": lat,
        "lon": lon,
        "device_hash": dev.device_hash[d],
        "ip_hash": dev.ip_hash[d],
        "ip_network": np.full(rows, "", dtype=object),
        "download_mbps": download,
        "upload_mbps": upload,
        "latency_ms": latency,
        "jitter_ms": jitter,
        "loaded_latency_down_ms": np.round(latency * rng.uniform(1.5, 6.0, rows), 2),
        "loaded_latency_up_ms": np.round(latency * rng.uniform(1.5, 8.0, rows), 2),
        "bytes_down": bytes_down,
        "bytes_up": bytes_up,
        "server_bytes_down": bytes_down,
        "server_bytes_up": np.where(flagged, bytes_up // 2, bytes_up),
        "streams": np.full(rows, 4, dtype=np.int64),
        "duration_s": np.full(rows, duration),
        "tcp_min_rtt_ms": np.round(latency * 0.9, 2),
        "tcp_retrans_ratio": np.round(rng.beta(1.0, 200.0, rows), 5),
        "server_id": ctx.province_server[province],
        "client_kind": np.full(rows, "simulated", dtype=object),
        "client_version": np.full(rows, "sim-1", dtype=object),
        "method_version": np.full(rows, SPEED_ONLY_VERSION, dtype=object),
        "simulated": np.ones(rows, dtype=np.int64),
        "valid": (~flagged).astype(np.int64),
        "invalid_reason": reason,
        "received_at": started + 15,
    }
    columns.update(_evidence(rng, ctx.network_names[network], dev.device_hash[d]))
    columns.update(_quality(rng, columns, d, network))
    return columns


# How simulated results' network types were decided (spec/evidence.md), per network type: most
# fixed lines are known from the connection-type database; a phone's 5G can only come from its
# radio report or its user (the database says Cellular, not which generation).
NETWORK_TYPE_EVIDENCE: dict[str, tuple[tuple[str, float], ...]] = {
    "fixed": (("ip", 0.7), ("declared", 0.25), ("none", 0.05)),
    "mobile": (("ip", 0.4), ("device", 0.3), ("declared", 0.3)),
    "5g": (("device", 0.6), ("declared", 0.4)),
}


def _evidence(rng: np.random.Generator, network: np.ndarray, device_hash: np.ndarray) -> dict[str, np.ndarray]:
    """The evidence columns of simulated tests (drawn after every other column, so figures of a
    seed stay what they were before these columns existed)."""
    rows = len(network)
    source = np.full(rows, "declared", dtype=object)
    draw = rng.random(rows)
    for name, choices in NETWORK_TYPE_EVIDENCE.items():
        picked = network == name
        edges = np.cumsum([p for _, p in choices])
        kinds = np.array([k for k, _ in choices], dtype=object)
        source[picked] = kinds[np.minimum(np.searchsorted(edges, draw[picked], side="right"), len(kinds) - 1)]
    return {
        "network_type_source": source,
        "connection_type": np.where(network == "fixed", "Cable/DSL", "Cellular").astype(object),
        "device_source": np.where(device_hash != "", "issued", "ip").astype(object),
    }


# Method v2 (spec/method-v2.md) in simulated months: the share of tests measured with UDP and RPM,
# so months mix v1 and v2 results as they will while clients update.
V2_SHARE = 0.6
# IPv6 per provider (the share of its lines with IPv6). Vietnam reaches Google over IPv6 for about
# 60 % of its users (Google's per-country IPv6 statistics, 2025; APNIC Labs measured 44 % IPv6
# capable in 2020, VNNIC reported); the spread between providers here is illustrative, not measured.
IPV6_SHARE = {
    "Viettel": 0.72,
    "VNPT": 0.6,
    "FPT Telecom": 0.65,
    "CMC Telecom": 0.35,
    "SCTV": 0.2,
    "MobiFone": 0.5,
    "Vietnamobile": 0.3,
}
IPV4_FALLBACK = 0.04  # tests of an IPv6 line that run over IPv4 (a dual-stack client falling back)
UDP_BLOCKED = 0.03  # v2 tests whose UDP probes never got through (loss and UDP delay missing)
UDP_PROBES = 100  # idle-phase probes per test
SERVER_DELAYED = 0.01  # v2 tests whose probes the server delayed beyond its bound (flags)
# Median probe loss probability per network type (idle phase), log-normal across tests.
LOSS = {"fixed": 0.001, "5g": 0.004, "mobile": 0.01}


def _nullable(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    out = np.full(len(values), None, dtype=object)
    out[present] = values[present].tolist()
    return out


def _quality(rng: np.random.Generator, columns: dict[str, Any], d: np.ndarray, network: np.ndarray) -> dict[str, Any]:
    """The method v2 columns of simulated tests: drawn after every other column, so the figures of a
    seed stay what they were before these columns existed (their method_version becomes "2")."""
    rows = len(d)
    v2 = rng.random(rows) < V2_SHARE
    blocked = v2 & (rng.random(rows) < UDP_BLOCKED)
    udp = v2 & ~blocked
    delayed = v2 & (rng.random(rows) < SERVER_DELAYED)
    # IPv6 is a property of the line: a fixed uniform per device (Knuth's multiplicative hash of its index)
    line_u = (d.astype(np.uint64) * np.uint64(2654435761) % np.uint64(2**32)).astype(float) / 2**32
    share = np.array([IPV6_SHARE.get(str(p), 0.5) for p in columns["provider"]])
    ipv6 = (line_u < share) & (rng.random(rows) >= IPV4_FALLBACK)
    p_loss = np.array([LOSS[n] for n in ("fixed", "mobile", "5g")])[network] * rng.lognormal(0.0, 1.0, rows)
    p_loss = np.clip(p_loss, 0.0, 0.5)
    loss_down = rng.binomial(UDP_PROBES, p_loss) * (100.0 / UDP_PROBES)
    loss_up = rng.binomial(UDP_PROBES, p_loss) * (100.0 / UDP_PROBES)
    latency = np.asarray(columns["latency_ms"], dtype=float)
    rtt = np.round(latency * rng.lognormal(0.0, 0.1, rows), 2)
    rtt_p90 = np.round(rtt * (1.0 + rng.lognormal(np.log(0.3), 0.5, rows)), 2)
    rpm_down = np.round(60_000.0 / (columns["loaded_latency_down_ms"] * rng.lognormal(0.0, 0.1, rows)), 1)
    rpm_up = np.round(60_000.0 / (columns["loaded_latency_up_ms"] * rng.lognormal(0.0, 0.1, rows)), 1)
    server_delay = np.where(delayed, rng.uniform(25.0, 80.0, rows), rng.lognormal(np.log(0.4), 0.5, rows))
    return {
        "method_version": np.where(v2, METHOD_VERSION, columns["method_version"]).astype(object),
        "ip_version": np.where(v2, np.where(ipv6, 6, 4), 0).astype(np.int64),
        "udp_status": np.where(udp, "ok", np.where(blocked, "blocked", "")).astype(object),
        "udp_probes": np.where(udp, UDP_PROBES, 0).astype(np.int64),
        "loss_down_pct": _nullable(loss_down, udp),
        "loss_up_pct": _nullable(loss_up, udp),
        "udp_rtt_ms": _nullable(rtt, udp),
        "udp_rtt_p90_ms": _nullable(rtt_p90, udp),
        "rpm_down": _nullable(rpm_down, v2),
        "rpm_up": _nullable(rpm_up, v2),
        "server_delay_p99_ms": _nullable(np.round(server_delay, 2), v2),
        "flags": np.where(delayed, "server_delayed", "").astype(object),
    }


def _context(cfg: SimulationConfig, places: Places) -> _Context:
    start, end = month_bounds(cfg.year, cfg.month)
    days = (end - start).days
    province_index = {code: i for i, code in enumerate(places.province_codes)}
    pops = np.array(places.province_population)
    networks = [n for n, _ in NETWORK_SHARES]
    return _Context(
        days=days,
        epoch0=int(dt.datetime(start.year, start.month, 1, tzinfo=dt.UTC).timestamp()),
        dates=np.array([start + dt.timedelta(days=i) for i in range(days)], dtype=object),
        network_names=np.array(networks, dtype=object),
        tech_median=np.array([TECHNOLOGY[n][0] for n in networks]),
        tech_sigma=np.array([TECHNOLOGY[n][1] for n in networks]),
        tech_up=np.array([TECHNOLOGY[n][2] for n in networks]),
        tech_latency=np.array([TECHNOLOGY[n][3] for n in networks]),
        provider_codes=np.array([p.code for p in places.providers], dtype=object),
        provider_asn=np.array([p.asn for p in places.providers], dtype=np.int64),
        provider_factor=np.array([[PROVIDER_FACTOR[n].get(p.code, 1.0) for p in places.providers] for n in networks]),
        province_codes=np.array(places.province_codes, dtype=object),
        province_factor=0.8 + 0.4 * np.sqrt(pops / pops.max()),
        province_server=np.array(
            ["hn-1" if c < "40" else "dn-1" if c < "70" else "hcm-1" for c in places.province_codes], dtype=object
        ),
        commune_codes=np.array(places.commune_codes, dtype=object),
        commune_weight=np.array(places.commune_weight),
        commune_factor=_commune_factor(places),
        commune_province_idx=np.array([province_index[p] for p in places.commune_province]),
        commune_centroid=(
            None
            if places.commune_lat is None or places.commune_lon is None
            else (np.array(places.commune_lat), np.array(places.commune_lon))
        ),
    )


def _commune_factor(places: Places) -> np.ndarray:
    """Each commune's lasting speed factor: its type's (wards faster; 1 when types are unknown)
    times a log-normal draw that depends on COMMUNE_SEED and the commune's position only."""
    types = places.commune_type or ("",) * len(places.commune_codes)
    by_type = np.array([COMMUNE_TYPE_FACTOR.get(t, 1.0) for t in types])
    draw = np.random.default_rng(COMMUNE_SEED).lognormal(0.0, COMMUNE_SIGMA, len(places.commune_codes))
    return by_type * draw


def generate(cfg: SimulationConfig, places: Places) -> Iterator[dict[str, Any]]:
    """Yield column batches of at most CHUNK_ROWS simulated tests."""
    if cfg.tests == 0:
        return
    seeds = np.random.SeedSequence([cfg.seed, cfg.year, cfg.month, cfg.tests])
    device_seed, *chunk_seeds = seeds.spawn(1 + -(-cfg.tests // CHUNK_ROWS))
    dev = _devices(np.random.default_rng(device_seed), places, max(1, cfg.tests // 4), cfg.anonymous_share)
    ctx = _context(cfg, places)
    for n, chunk_seed in enumerate(chunk_seeds):
        first = n * CHUNK_ROWS
        rows = min(CHUNK_ROWS, cfg.tests - first)
        yield _chunk(np.random.default_rng(chunk_seed), cfg, places, dev, first, rows, ctx)


def simulate(
    store: Store,
    cfg: SimulationConfig,
    places: Places | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationReport:
    """Generate `cfg.tests` simulated tests and insert them in batches; re-running is idempotent.

    Rows are identified by seed, month and number, so a repeated run writes the same test ids,
    which the store's ReplacingMergeTree (read with FINAL) collapses.
    """
    places = places or load_places()
    types = dict(MEASUREMENT_COLUMNS)
    t0 = time.perf_counter()
    done = 0
    for columns in generate(cfg, places):
        store.insert_columns("measurements", columns, types)
        done += len(columns["test_id"])
        if progress:
            progress(done, cfg.tests)
    return SimulationReport(done, time.perf_counter() - t0, places.source)
