"""The SQL behind a month's cells: device-day samples, exact medians, CI order statistics.

One UNION ALL branch per network type (`month_cells_query`; the table's sort key starts with
network_type). Inside a branch, from the innermost step out:

1. valid tests of the month, one GROUP BY (device, local_date) keeping the day's tests as an
   array of (province, commune, provider, download, upload, latency, jitter, row key, evidence
   byte, loss down, loss up, UDP RTT p90, RPM down, RPM up, peak download) tuples (_METRICS gives
   the figures' positions): one array, as one aggregate state per day costs less than two. No
   FINAL: 18.16 merges a FINAL read in one stream at ~1 CPU-s per million rows; instead a
   replayed row (same sort key:
   provider, province, commune, started_at, test_id) is dropped inside its device-day
   (arrayEnumerateUniq over the row keys, t0.8), which holds every copy, since the ingest writes
   a test's copies identical but for received_at.
2. per device-day, with array functions only: `pure` = every test in the same commune × provider
   cell. A pure day of up to two distinct tests is one sample of kind PURE, kept as plain
   columns: its medians are (a + b) / 2 of its first row and the first row of another test (a = b
   for one test: (x + x) / 2 = x exactly; the even case is (a + b) / 2). Every other day keeps its
   deduplicated tests as an array past this step (`t_many`): a mixed day (a phone that moved, a
   device on two providers) and a pure day of three tests or more (their medians were array
   functions here, which 18.16 runs on every row, empty arrays too: ~0.15 CPU-s per figure and
   million device-days). `ARRAY JOIN … AS j` then gives a pure day of up to two tests one row
   (j = 0), a pure day of more one row per test (kind PURE), and a mixed day one row per test
   and cell kind, keyed by that kind's cell.
3. GROUP BY (kind, cell, and for the per-test entries also device and day): a group holds its
   values as groupArray states (a pure group's in g_<metric>, a device-day group's in
   gm_<metric>: the pure groups' large arrays are never copied out to be skipped) and
   uniqExactState of its devices; a pure group is a finest cell's samples, a device-day group
   ("mixed": one device-day in one cell) has the medians of its sorted values. A second GROUP
   BY (kind, cell) gathers a cell's mixed groups into one row of their medians (a pure group
   stays one row), so the states below are built once per cell, not once per mixed device-day:
   each row turns its samples into the states its cells merge: quantilesExact states at
   MEDIAN_LEVELS for upload and the optional figures (latency, jitter, …), at GRID plus a
   groupArray for download, and its histogram counts (each row's samples counted below each bin
   edge), built per row with arrayReduce. (Building them in the GROUP BY instead, a row picking
   its state as `[mixed_state, pure_state][i]` since 18.16 has no `if` over states, was slower:
   six states per group cost more than these copies; perf/README.md.)
4. each pure group is expanded to its six cells (national, province, commune; all providers and
   its provider) and merged there (quantilesExactMerge, groupArrayMerge, uniqExactMerge, sums);
   a cell's row of mixed medians joins that cell only. So the month's samples are grouped once,
   at the finest level, not once per kind, and no sample array is ever fully sorted: the merged
   quantile states give the medians (nth_element) and the download GRID.
5. per published cell (samples >= min_samples; suppressed cells keep no sample array): for the
   download CI, `ci_band_sql` sorts only the samples between two GRID quantiles that bracket
   the order statistics needed (the exact k = binom.ppf(…) is then picked in Python,
   `ispeed.aggregator.ci`); histograms of the national and province levels, summed from the
   grouped rows' bin counts (counts add up).

Keys: devices (hashed ids already) and places are carried as cityHash64 values: fixed-width keys
group, compare and count faster than strings. Two devices with one 64-bit hash would count as
one (probability ~ D² / 2^65: below 1e-6 for D = 4 million device-days); the places' hashes are
named again from `places_query`, which stops the run on a collision rather than merge two places.
Only functions that ClickHouse 18.16 and chDB 26.x both have are used (no window functions;
nested lambdas take arrays as arguments, and a column used only inside a lambda is also used
outside one: 18.16 would not read it from the subquery otherwise).
Missing figures (latency, jitter, method v2's loss, UDP RTT p90, RPM; a peak download outside the
peak hours) travel as -1 and are dropped before their medians; a test flagged server_delayed
carries -1 for its delay, loss and RPM figures (DELAYED). The peak download is the download of a
test whose Vietnam-local hour (UTC + 7) has its bit set in the `peak_mask` parameter (PEAK).

Means, shares and percentiles (methodology.py's formulas): each row sums its download and upload
samples in whole bit/s (UInt64: exact, so they add up across rows and kinds like the counts)
and counts its download samples at or above 100 Mbit/s and the `gigabit_mbps` parameter; the
10th and 90th percentiles' order statistics come from bands like the CI's (GRID holds levels
around 0.1 and 0.9), and `ispeed.aggregator.figures` divides and interpolates in Python.

Evidence (spec/evidence.md): each test carries its evidence ranks in one byte (t0.9: place
0 none / 1 ip / 2 gps in bits 0-1, network type 0 none / 1 declared / 2 device / 3 ip in bits 2-3,
an issued device id in bit 4), and its IP version in bits 5-6 (1 IPv4, 2 IPv6, 3 unknown: a
sample with an IPv4 test is IPv4, one whose known tests all ran over IPv6 is IPv6). A sample
rests on the weakest evidence among its tests (the minimum rank): a pure day's of up to two
tests from the day's minimum (`ev_*`), any other day's per cell from its group's minimum. A cell
counts its samples at each rank (EVIDENCE); counts add up like the others.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import NamedTuple

CI_MARGIN = 8  # slack around the normal approximation (observed |k - k0| <= 1 up to n = 5e7)
CI_WIDTH = 2 * CI_MARGIN + 2
BINS_PER_DECADE = 5
LOWEST_BIN = -5  # 0.1 Mbps
HIGHEST_BIN = 20  # 10 Gbps and up
BINS = range(LOWEST_BIN, HIGHEST_BIN + 1)


def valid_tests(network_types: str) -> str:
    """SQL condition: the month's valid tests of the network types the condition names."""
    return (
        f"local_date >= {{start}} AND local_date < {{end}} AND {network_types} "
        "AND valid = 1 AND download_mbps > 0 AND upload_mbps > 0 "
        "AND (simulated = 0 OR {include_simulated} = 1)"
    )


EMPTY = "cityHash64('')"  # a place column's hash when it is empty
NOT_KEPT = "toUInt64(0)"  # a place column the cell kind does not keep
HISTOGRAM_LEVELS = ("national", "province")  # the levels whose histograms the site draws

# Cell kinds: (level, keeps province, keeps commune, keeps provider).
KINDS: tuple[tuple[str, bool, bool, bool], ...] = (
    ("national", False, False, False),
    ("national", False, False, True),
    ("province", True, False, False),
    ("province", True, False, True),
    ("commune", True, True, False),
    ("commune", True, True, True),
)
# (name, position in a test's tuple, optional: -1 = missing); the optional ones are medians over the
# samples that have them, written as the cell column MEDIAN_COLUMNS names
_METRICS = (
    ("dl", 4, False),
    ("ul", 5, False),
    ("lat", 6, True),
    ("jit", 7, True),
    ("ld", 10, True),  # UDP loss, server -> client, %
    ("lu", 11, True),  # UDP loss, client -> server, %
    ("r90", 12, True),  # UDP round trip p90, ms
    ("rd", 13, True),  # RPM while downloading
    ("ru", 14, True),  # RPM while uploading
    ("pk", 15, True),  # download of a peak-hour test
)
MEDIAN_COLUMNS = {
    "lat": "latency_median_ms",
    "jit": "jitter_median_ms",
    "ld": "loss_down_pct_median",
    "lu": "loss_up_pct_median",
    "r90": "rtt_p90_ms_median",
    "rd": "rpm_down_median",
    "ru": "rpm_up_median",
    "pk": "peak_download_median_mbps",
}
# A test flagged server_delayed (the server held its probes back) counts for no delay, loss or RPM
# figure (its speeds count): those figures of it read as missing.
DELAYED = "position(concat(',', flags, ','), ',server_delayed,') > 0"
# A test in the peak hours: bit h of the peak_mask parameter, h its Vietnam-local hour (UTC + 7).
PEAK = "bitAnd(bitShiftRight(toUInt64({peak_mask}), intDiv((toUInt32(started_at) + 25200) % 86400, 3600)), 1) = 1"
PURE = len(KINDS)  # kind of a pure device-day's sample, before it is expanded to the six kinds

# Evidence ranks, weakest first (a sample rests on the weakest among its tests).
PLACE_RANK = "multiIf(location_source = 'gps', 2, location_source = 'ip', 1, 0)"
NETWORK_TYPE_RANK = (
    "multiIf(network_type_source = 'ip', 3, network_type_source = 'device', 2, network_type_source = 'declared', 1, 0)"
)
ISSUED_RANK = "toUInt8(device_source = 'issued')"
IP_RANK = "multiIf(ip_version = 4, 1, ip_version = 6, 2, 3)"  # 3: unknown (method v1), never the weakest
# (count column, evidence: place / nt / dev, rank): the samples of a cell whose weakest evidence is that rank
EVIDENCE: tuple[tuple[str, str, int], ...] = (
    ("ev_place_gps", "place", 2),
    ("ev_place_ip", "place", 1),
    ("ev_nt_ip", "nt", 3),
    ("ev_nt_device", "nt", 2),
    ("ev_nt_declared", "nt", 1),
    ("ev_dev_issued", "dev", 1),
    ("ev_ip_v4", "ip", 1),  # some test over IPv4
    ("ev_ip_v6", "ip", 2),  # every test of a known IP version over IPv6
)
# The columns of a `cells_query` row, in order (the aggregator reads them by name).
CELL_COLUMNS: tuple[str, ...] = (
    "network_type",
    "level",
    "province_h",
    "commune_h",
    "provider_h",
    "tests",
    "samples",
    "devices",
    "download_median_mbps",
    "upload_median_mbps",
    "latency_median_ms",
    "jitter_median_ms",
    "ci_lo_start",
    "ci_lo_slice",
    "ci_hi_start",
    "ci_hi_slice",
    "hist_dl",
    "hist_ul",
    *(name for name, _, _ in EVIDENCE),
    *(MEDIAN_COLUMNS[name] for name, _, optional in _METRICS if optional and name not in ("lat", "jit")),
    "peak_samples",
    "download_bits",  # Σ of the samples in whole bit/s (the means)
    "upload_bits",
    "download_ge_100",  # samples at or above 100 Mbit/s
    "download_ge_gigabit",  # … at or above the gigabit_mbps parameter
    "p10_a",  # the order statistics either side of the 10th percentile (x_j, x_j+1; ispeed.aggregator.figures)
    "p10_b",
    "p90_a",
    "p90_b",
)
_EVIDENCE_BITS = {
    "place": "bitAnd(x.9, 3)",
    "nt": "bitAnd(bitShiftRight(x.9, 2), 3)",
    "dev": "bitAnd(bitShiftRight(x.9, 4), 1)",
    "ip": "bitShiftRight(x.9, 5)",
}

# quantilesExact(level) returns the element at 0-based index floor(level * n) (n - 1 for level 1):
# with these two levels, the two middle elements for even n and the middle one twice for odd n,
# for every n < 0.5 / 1e-10 = 5e9 (the lower level gives n/2 - 1 when n is even, (n-1)/2 when odd).
MEDIAN_LO, MEDIAN_HI = 0.4999999999, 0.5
MEDIAN_LEVELS = f"{MEDIAN_LO!r}, {MEDIAN_HI!r}"
# Levels bracketing the download CI's order statistics: 0.5 -/+ 2^-j around the median, every fourth j
# (each level is an nth_element pass over the rest of the array). The CI's ranks lie within
# 0.5 -/+ (0.98 / sqrt(n) + CI_MARGIN / n), so a usable bracket leaves a band of at most
# ~32 sqrt(n) samples to sort, and for n beyond 2^20 the finest, 2^-10, leaves n / 512 (8,000 at
# n = 4 million, a national cell). Below n ~ 75 no level brackets and the band is every sample.
# The 10th and 90th percentiles' order statistics are bracketed likewise, by levels p -/+ 2^-5 and
# 2^-9: a band of at most ~n / 256 samples to sort for n beyond ~1,500, ~n / 16 below, every sample
# below n ~ 50. (Each level costs an nth_element pass over the array above the previous level.)
GRID_OFFSETS = (2, 6, 10)
PERCENTILES = (("p10", 0.1), ("p90", 0.9))
PERCENTILE_OFFSETS = (5, 9)
GRID: tuple[float, ...] = tuple(
    sorted(
        {MEDIAN_LO, MEDIAN_HI}
        | {0.5 - 2.0**-j for j in GRID_OFFSETS}
        | {0.5 + 2.0**-j for j in GRID_OFFSETS}
        | {p + sign * 2.0**-j for _, p in PERCENTILES for j in PERCENTILE_OFFSETS for sign in (-1, 1)}
    )
)
BELOW_ALL, ABOVE_ALL = "toFloat64(-1)", "1e308"  # band bounds when no level brackets (speeds are > 0)
GRID_LEVELS = ", ".join(repr(x) for x in GRID)
LO_INDEX = GRID.index(MEDIAN_LO) + 1  # 1-based, in the quantiles array


def median_of_sorted(arr: str, empty: str | None = "NULL") -> str:
    """SQL: the exact median of a sorted array expression; `empty` when it has no element."""
    n = f"length({arr})"
    median = f"if({n} % 2 = 1, {arr}[intDiv({n} + 1, 2)], ({arr}[intDiv({n}, 2)] + {arr}[intDiv({n}, 2) + 1]) / 2)"
    return median if empty is None else f"if({n} = 0, {empty}, {median})"


def ci_start_sql(n: str, half_z: float, high: bool) -> str:
    """SQL: 1-based start of the slice holding the k-th (or (n-k+1)-th) order statistic."""
    k0 = f"toInt64(floor({n} / 2 - {half_z!r} * sqrt({n})))"
    centre = f"(toInt64({n}) + 1 - {k0})" if high else k0
    return f"toUInt64(greatest(1, {centre} - {CI_MARGIN}))"


def ci_band_sql(ci_level: float) -> str:
    """SQL aliases: the download CI's slice starts, and `band`: the sorted samples between them.

    Needs columns `samples` (n), `s_dl` (the samples, any order) and `q_dl` (quantilesExact at
    GRID). Rather than sorting all n samples, it keeps those between two GRID quantiles that
    bracket the ranks of both slices (ci_lo_start … ci_hi_start + CI_WIDTH - 1), sorts only them,
    and counts the samples below (`below`): band[j] is then the (below + j)-th smallest sample.
    A bracket's rank may be off by one from toUInt64(level * n) + 1 without harm: the lower one
    is chosen strictly below ci_lo_start, the upper one strictly above the last needed rank; with
    no such level the band is open on that side (BELOW_ALL, ABOVE_ALL).
    """
    half_z = NormalDist().inv_cdf(1 - (1 - ci_level) / 2) / 2
    return f"""{ci_start_sql("samples", half_z, False)} AS ci_lo_start,
        {ci_start_sql("samples", half_z, True)} AS ci_hi_start,
        arrayMap(x -> toUInt64(x * samples) + 1, [{GRID_LEVELS}]) AS grid_ranks,
        {_band_sql("", "ci_lo_start", f"ci_hi_start + {CI_WIDTH - 1}")}"""


def _band_sql(prefix: str, first: str, last: str) -> str:
    """SQL aliases <prefix>below and <prefix>band: the sorted samples between the two GRID
    quantiles that bracket 1-based ranks first … last (`grid_ranks`, q_dl, s_dl as ci_band_sql);
    band[r - below] is then the r-th smallest sample for every r in first … last."""
    p = prefix
    return f"""arrayCount(r -> r + 1 < {first}, grid_ranks) AS {p}grid_below,
        arrayCount(r -> r > {last} + 1, grid_ranks) AS {p}grid_above,
        if({p}grid_below = 0, {BELOW_ALL}, q_dl[greatest(1, {p}grid_below)]) AS {p}band_low,
        if({p}grid_above = 0, {ABOVE_ALL}, q_dl[{len(GRID)} + 1 - greatest(1, {p}grid_above)]) AS {p}band_high,
        arrayCount(x -> x < {p}band_low, s_dl) AS {p}below,
        arraySort(arrayFilter(x -> x >= {p}band_low AND x <= {p}band_high, s_dl)) AS {p}band"""


def percentile_bands_sql() -> str:
    """SQL aliases, per percentile p of PERCENTILES (tag pNN): the 1-based ranks of x_j and x_j+1
    for numpy's linear percentile, j = floor((n - 1) p) (the second capped at n), and their band.
    Needs the columns of ci_band_sql and its grid_ranks alias."""
    parts = []
    for tag, p in PERCENTILES:
        parts.append(f"toUInt64(floor((toInt64(samples) - 1) * {p!r})) + 1 AS {tag}_rank")
        parts.append(f"least({tag}_rank + 1, samples) AS {tag}_rank_b")
        parts.append(_band_sql(f"{tag}_", f"{tag}_rank", f"{tag}_rank_b"))
    return ",\n        ".join(parts)


def percentile_values_sql() -> str:
    """SQL: pNN_a, pNN_b, the order statistics of percentile_bands_sql's ranks (0 when the cell
    keeps no samples: suppressed)."""
    return ", ".join(
        f"{tag}_band[{tag}_rank - {tag}_below] AS {tag}_a, {tag}_band[{tag}_rank_b - {tag}_below] AS {tag}_b"
        for tag, _ in PERCENTILES
    )


CI_SLICES = (
    f"ci_lo_start, arraySlice(band, ci_lo_start - below, {CI_WIDTH}) AS ci_lo_slice, "
    f"ci_hi_start, arraySlice(band, ci_hi_start - below, {CI_WIDTH}) AS ci_hi_slice"
)
GRID_QUANTILES = f"quantilesExact({GRID_LEVELS})"


def _pure_sample() -> str:
    """SQL: the sample medians of a pure device-day of up to two distinct tests, from its first
    row and the first row of another test (`first`, `second`; the same row when there is one
    test): (x + x) / 2 = x exactly, and (a + b) / 2 as for any even count, replayed copies
    ignored; an optional figure (-1 = missing) is the one present value when the other is
    missing. (A day of more tests goes on as its tests, `t_many`: plain columns cost less per
    row than array functions, which 18.16 runs on every row, empty arrays too.)"""
    parts = []
    for name, pos, optional in _METRICS:
        a, b = f"first.{pos}", f"second.{pos}"
        if optional:  # -1 = missing; -1 if neither
            parts.append(f"multiIf({a} >= 0 AND {b} >= 0, ({a} + {b}) / 2, {a} >= 0, {a}, {b}) AS m_{name}")
        else:
            parts.append(f"({a} + {b}) / 2 AS m_{name}")
    return ",\n    ".join(parts)


def _device_days() -> str:
    """SQL, steps 1-2: the month's device-days of one network type, each with its pure flag, a
    pure sample's medians (m_<metric>, for up to two tests) or else its distinct tests (t_many:
    a mixed day's, or a pure day's of three tests or more); parameters as cells_query."""
    return f"""SELECT
    device,
    toUInt16(local_date) AS day,
    arrayEnumerateUniq(arrayMap(x -> x.8, t0)) AS u,
    arrayCount(v -> v = 1, u) AS n,
    t0[1] AS first, first.8 AS first_key,
    t0[if(n = 2, arrayFirstIndex(x -> x.8 != first_key, t0), 1)] AS second,
    first.1 AS P, first.2 AS C, first.3 AS I,
    arrayAll(x -> x.1 = P AND x.2 = C AND x.3 = I, t0) AS pure,
    NOT pure OR n > 2 AS many,
    arrayFilter((x, v) -> v = 1 AND many, t0, u) AS t_many,
    greatest(length(t_many), 1) AS m,
    ev_place, ev_nt, ev_dev, ev_ip,
    {_pure_sample()}
FROM (
    SELECT
        cityHash64(if(device_hash != '', device_hash, ip_hash)) AS device,
        local_date,
        groupArray((cityHash64(province_code), cityHash64(commune_code), cityHash64(provider),
                    download_mbps, upload_mbps,
                    {_delay_figure("latency_ms")}, {_delay_figure("jitter_ms")},
                    cityHash64(provider, province_code, commune_code, started_at, test_id),
                    toUInt8({PLACE_RANK} + 4 * {NETWORK_TYPE_RANK} + 16 * {ISSUED_RANK} + 32 * {IP_RANK}),
                    {_delay_figure("loss_down_pct")}, {_delay_figure("loss_up_pct")},
                    {_delay_figure("udp_rtt_p90_ms")}, {_delay_figure("rpm_down")}, {_delay_figure("rpm_up")},
                    if({PEAK}, download_mbps, -1.))) AS t0,
        min({PLACE_RANK}) AS ev_place, min({NETWORK_TYPE_RANK}) AS ev_nt, min({ISSUED_RANK}) AS ev_dev,
        min({IP_RANK}) AS ev_ip
    FROM {{db}}.measurements
    WHERE {valid_tests("network_type = {network_type}")}
    GROUP BY device, local_date
)"""


def _delay_figure(column: str) -> str:
    """SQL: a test's delay, loss or RPM figure, -1 when it is missing or the server delayed the test."""
    return f"if({DELAYED}, -1., ifNull({column}, -1.))"


def _kind_has(flag: int) -> str:
    """SQL: whether cell kind `g_kind` keeps place column `flag` (1 province, 2 commune, 3 provider)."""
    kinds = [i for i, kind in enumerate(KINDS) if kind[flag]]
    return f"has([{', '.join(f'toUInt8({i})' for i in kinds)}], g_kind)"


def _entry_columns() -> str:
    """SQL: the grouped stream's columns after `ARRAY JOIN … AS j`: a pure device-day of up to two
    tests as its one sample (kind PURE, j = 0); a pure day of more tests as its m tests (kind
    PURE, j = 0 … m - 1), a mixed day's m tests once per cell kind (j = 0 … 6 m - 1: kind j / m,
    test j % m + 1), each keyed by the cell of that kind and its device-day, counted as one test."""
    cols = [
        f"if(pure, toUInt8({PURE}), toUInt8(intDiv(j, m))) AS g_kind",
        "t_many[j % m + 1] AS x",  # a day of up to two tests: the empty array's default tuple, unused
        f"if(pure, P, if({_kind_has(1)}, x.1, {NOT_KEPT})) AS g_p",
        f"if(pure, C, if({_kind_has(2)}, x.2, {NOT_KEPT})) AS g_c",
        f"if(pure, I, if({_kind_has(3)}, x.3, {NOT_KEPT})) AS g_i",
        "if(many, device, toUInt64(0)) AS g_device",
        "if(many, day, toUInt16(0)) AS g_day",
        "if(many, toUInt64(1), n) AS e_tests",
    ]
    cols += [f"if(many, x.{pos}, m_{name}) AS e_{name}" for name, pos, _ in _METRICS]
    cols += [f"toUInt8(if(many, {bits}, ev_{kind})) AS e_ev_{kind}" for kind, bits in _EVIDENCE_BITS.items()]
    return ",\n                                ".join(cols)


def _expand() -> str:
    """SQL: the cells a grouped row counts in: all six kinds for pure days' rows, else its own."""

    def kept(flag: bool, column: str) -> str:
        return column if flag else NOT_KEPT

    keys = ", ".join(
        f"(toUInt8({i}), {kept(keep_p, 'g_p')}, {kept(keep_c, 'g_c')}, {kept(keep_i, 'g_i')})"
        for i, (_, keep_p, keep_c, keep_i) in enumerate(KINDS)
    )
    return f"if(g_kind = {PURE}, [{keys}], [(g_kind, g_p, g_c, g_i)])"


def _histogram(name: str, values: str) -> str:
    """SQL alias h_<name>: the sample count of every bin of BINS, [10^(i/5), 10^((i+1)/5)) with
    the lowest bin open below and the highest above (`bin_edges_mbps`): one arrayCount of the
    values below each inner edge, then differences. A lambda over the values and a constant
    runs vectorized, where counting bin numbers costs a pass and a copy of the array per bin."""
    edges = [bin_edges_mbps(b)[1] for b in BINS[:-1]]
    below = [f"toUInt64(arrayCount(x -> x < {e!r}, {values})) AS hb_{name}_{k}" for k, e in enumerate(edges)]
    counts = [f"hb_{name}_0"] + [f"toUInt64(hb_{name}_{k} - hb_{name}_{k - 1})" for k in range(1, len(edges))]
    counts.append(f"toUInt64(length({values}) - hb_{name}_{len(edges) - 1})")
    return ",\n        ".join(below) + f",\n        [{', '.join(counts)}] AS h_{name}"


def _histogram_pairs(counts: str) -> str:
    """SQL: (bins, counts) of the non-empty bins, like sumMap's result."""
    bins = f"[{', '.join(f'toInt32({b})' for b in BINS)}]"
    return f"(arrayFilter((b, k) -> k > 0, {bins}, {counts}), arrayFilter(k -> k > 0, {counts}))"


def cells_query(ci_level: float) -> str:
    """One network type's cells; parameters: start, end, network_type, include_simulated, min_samples,
    peak_mask (bit h: local hour h is a peak hour), gigabit_mbps."""
    level_names = ", ".join(f"'{k[0]}'" for k in KINDS)
    histogram_kinds = sum(1 for k in KINDS if k[0] in HISTOGRAM_LEVELS)  # the first kinds
    optional_names = [name for name, _, optional in _METRICS if optional]
    states = []
    mixed_medians = []
    cell_values = []
    row_states = []
    for name, _, optional in _METRICS:
        v = f"e_{name}"
        present = f"{v} >= 0 AND " if optional else ""
        # a pure group's samples, and a device-day group's tests (apart: 18.16 has no `if` over
        # states, and copying every pure group's array out of one state to skip it cost ~0.1 CPU-s
        # per metric and million samples)
        states.append(f"groupArrayIfState({v}, {present}g_day = 0) AS g_{name}")
        states.append(f"groupArrayIfState({v}, {present}g_day != 0) AS gm_{name}")
        # a mixed group is one device-day in one cell: its sample is the median of its tests
        mixed_medians.append(f"arraySort(finalizeAggregation(gm_{name})) AS ms_{name}")
        median = median_of_sorted(f"ms_{name}", "-1." if optional else "0.")
        mixed_medians.append(f"{median} AS mm_{name}")
        # a cell group's samples: its pure group's values, or its mixed groups' medians
        keep = f"mixed AND mm_{name} >= 0" if optional else "mixed"
        cell_values.append(f"arrayConcat(groupArrayIfMerge(g_{name}), groupArrayIf(mm_{name}, {keep})) AS v_{name}")
        if name == "dl":  # the CI band needs the samples themselves
            row_states.append(f"arrayReduce('groupArrayState', v_{name}) AS a_{name}")
            row_states.append(f"arrayReduce('quantilesExactState({GRID_LEVELS})', v_{name}) AS qs_{name}")
        else:
            row_states.append(f"arrayReduce('quantilesExactState({MEDIAN_LEVELS})', v_{name}) AS qs_{name}")
        if optional:
            row_states.append(f"length(v_{name}) AS n_{name}")
    # counts and sums add up exactly: the samples in whole bit/s (the means), at or above the thresholds
    for name in ("dl", "ul"):
        row_states.append(f"arraySum(arrayMap(x -> toUInt64(floor(x * 1e6 + 0.5)), v_{name})) AS bits_{name}")
    row_states.append("toUInt64(arrayCount(x -> x >= 100., v_dl)) AS ge_100")
    row_states.append("toUInt64(arrayCount(x -> x >= {gigabit_mbps}, v_dl)) AS ge_gigabit")
    states_sql = ",\n                            ".join(states)
    mixed_sql = ",\n                        ".join(mixed_medians)
    cell_sql = ",\n                    ".join(cell_values)
    row_sql = ",\n                ".join(row_states)
    merged = ",\n            ".join(
        [f"quantilesExactMerge({MEDIAN_LEVELS})(qs_{name}) AS q_{name}" for name, _, _ in _METRICS if name != "dl"]
        + [f"sum(n_{name}) AS n_{name}" for name in optional_names]
        + [f"sum(bits_{name}) AS {name}_bits" for name in ("dl", "ul")]
        + ["sum(ge_100) AS dl_ge_100", "sum(ge_gigabit) AS dl_ge_gigabit"]
    )
    kept = ", ".join(
        [f"q_{name}" for name, _, _ in _METRICS if name != "dl"]
        + [f"n_{name}" for name in optional_names]
        + ["dl_bits", "ul_bits", "dl_ge_100", "dl_ge_gigabit"]
    )
    medians = [
        f"if(n_{name} = 0, NULL, (q_{name}[1] + q_{name}[2]) / 2) AS {MEDIAN_COLUMNS[name]}" for name in optional_names
    ]
    # latency and jitter in their first places; the medians added with method v2 after the evidence counts
    first_medians, added_medians = ",\n    ".join(medians[:2]), ",\n    ".join(medians[2:])
    zeros = "[" + ", ".join("toUInt64(0)" for _ in BINS) + "]"
    evidence_names = ", ".join(name for name, _, _ in EVIDENCE)
    # a pure group counts its samples at each rank; a mixed group is one sample, at its minimum
    sample_evidence = ",\n                            ".join(
        [f"countIf(e_ev_{kind} = {rank}) AS gc_{name}" for name, kind, rank in EVIDENCE]
        + [f"min(e_ev_{kind}) AS gm_{kind}" for kind in _EVIDENCE_BITS]
    )
    group_evidence = ",\n                    ".join(
        f"sum(if(mixed, toUInt64(gm_{kind} = {rank}), gc_{name})) AS c_{name}" for name, kind, rank in EVIDENCE
    )
    cell_evidence = ",\n            ".join(f"sum(c_{name}) AS {name}" for name, _, _ in EVIDENCE)
    return f"""
SELECT
    {{network_type}} AS network_type,
    [{level_names}][kind + 1] AS level, province_h, commune_h, provider_h,
    tests, samples, devices,
    (q_dl[{LO_INDEX}] + q_dl[{LO_INDEX + 1}]) / 2 AS download_median_mbps,
    (q_ul[1] + q_ul[2]) / 2 AS upload_median_mbps,
    {first_medians},
    {CI_SLICES},
    {_histogram_pairs("h_dl")} AS hist_dl,
    {_histogram_pairs("h_ul")} AS hist_ul,
    {evidence_names},
    {added_medians},
    n_pk AS peak_samples,
    dl_bits AS download_bits, ul_bits AS upload_bits,
    dl_ge_100 AS download_ge_100, dl_ge_gigabit AS download_ge_gigabit,
    {percentile_values_sql()}
FROM (
    SELECT
        kind, province_h, commune_h, provider_h, tests, samples, devices, q_dl, s_dl, {kept},
        {ci_band_sql(ci_level)},
        {percentile_bands_sql()},
        h_dl, h_ul, {evidence_names}
    FROM (
        SELECT
            k.1 AS kind, k.2 AS province_h, k.3 AS commune_h, k.4 AS provider_h,
            sum(c_tests) AS tests,
            sum(c_samples) AS samples,
            uniqExactMerge(c_devices) AS devices,
            if(samples >= {{min_samples}}, groupArrayMerge(a_dl), emptyArrayFloat64()) AS s_dl,
            quantilesExactMerge({GRID_LEVELS})(qs_dl) AS q_dl,
            {merged},
            sumForEach(if(kind < {histogram_kinds}, h_g_dl, {zeros})) AS h_dl,
            sumForEach(if(kind < {histogram_kinds}, h_g_ul, {zeros})) AS h_ul,
            {cell_evidence}
        FROM (
            SELECT *,
                {row_sql},
                {_histogram("g_dl", "v_dl")},
                {_histogram("g_ul", "v_ul")}
            FROM (
                SELECT
                    g_kind, g_p, g_c, g_i,
                    sum(g_tests) AS c_tests,
                    sum(if(mixed, 1, g_samples)) AS c_samples,
                    uniqExactMergeState(g_devices) AS c_devices,
                    {group_evidence},
                    {cell_sql}
                FROM (
                    SELECT *,
                        {mixed_sql}
                    FROM (
                        SELECT
                            g_kind, g_p, g_c, g_i, g_device, g_day,
                            g_day != 0 AS mixed,
                            sum(e_tests) AS g_tests,
                            count() AS g_samples,
                            uniqExactState(device) AS g_devices,
                            {sample_evidence},
                            {states_sql}
                        FROM (
                            SELECT
                                device,
                                {_entry_columns()}
                            FROM (
                                {_device_days()}
                            )
                            ARRAY JOIN range(if(many, if(pure, m, {len(KINDS)} * m), 1)) AS j
                        )
                        GROUP BY g_kind, g_p, g_c, g_i, g_device, g_day
                    )
                )
                GROUP BY g_kind, g_p, g_c, g_i
            )
        )
        ARRAY JOIN {_expand()} AS k
        WHERE (k.1 < 2 OR k.2 != {EMPTY}) AND (k.1 < 4 OR k.3 != {EMPTY}) AND (k.1 % 2 = 0 OR k.4 != {EMPTY})
        GROUP BY kind, province_h, commune_h, provider_h
    )
)
"""


class PlaceRow(NamedTuple):
    """A row of `places_query`, in its column order."""

    province_code: str
    commune_code: str
    provider: str
    province_h: int  # cityHash64 of each, as the cells query keys them
    commune_h: int
    provider_h: int


def places_query() -> str:
    """The month's place strings and their cityHash64, to name the cells the cells query keys by
    hash; parameters: start, end, include_simulated, network_types (a sequence)."""
    return f"""
SELECT province_code, commune_code, provider,
       cityHash64(province_code), cityHash64(commune_code), cityHash64(provider)
FROM {{db}}.measurements
WHERE {valid_tests("network_type IN {network_types}")}
GROUP BY province_code, commune_code, provider
"""


def month_cells_query(ci_level: float, network_types: int) -> str:
    """All network types' cells in one query: one UNION ALL branch per type (they run in parallel).

    Parameters: start, end, include_simulated, min_samples and network_type_0 …
    network_type_{n-1}; each row starts with its network type, places are cityHash64 values
    (`places_query` names them).
    """
    return _per_network_type(cells_query(ci_level), network_types)


def device_days_query(network_types: int) -> str:
    """The month's device-day samples alone (steps 1-2), one summary row per network type: the
    part of the month query that any exact per-device-day method computes before its first cell
    statistic (perf/bench_aggregate.py times it as the aggregate's floor). Every column of
    `_device_days` feeds the sums, so none is pruned; parameters as month_cells_query."""
    medians = " + ".join(f"m_{name}" for name, _, _ in _METRICS)
    branch = f"""
SELECT {{network_type}} AS network_type, count() AS device_days, sum(n) AS tests,
       sum(if(pure, 0, length(t_many))) AS mixed_tests, sum({medians}) AS medians_sum
FROM ({_device_days()})
"""
    return _per_network_type(branch, network_types)


def _per_network_type(branch: str, network_types: int) -> str:
    """SQL: `branch` once per network type, its {network_type} parameter renamed network_type_0 …
    network_type_{n-1}, joined by UNION ALL (the branches run in parallel)."""
    return "\nUNION ALL\n".join(branch.replace("{network_type}", f"{{network_type_{i}}}") for i in range(network_types))


def bin_edges_mbps(index: int) -> tuple[float, float]:
    """Lower and upper edge (Mbps) of histogram bin `index`: [10^(i/5), 10^((i+1)/5))."""
    low = 0.0 if index <= LOWEST_BIN else 10 ** (index / BINS_PER_DECADE)
    high = float("inf") if index >= HIGHEST_BIN else 10 ** ((index + 1) / BINS_PER_DECADE)
    return low, high
