"""The one SQL query behind a month's cells: device-day samples, exact medians, CI order statistics.

One query per network type (the table's sort key starts with network_type, so the three
queries together read the month once). From the innermost step out:

1. valid tests of the month (FINAL: a replayed test_id counts once), one GROUP BY
   (device, local_date): each device-day keeps its tests as an array of
   (province, commune, provider, download, upload, latency, jitter);
2. per device-day, with array functions only, the samples of the six cell kinds (national,
   province, commune; all providers and per provider): for each kind the distinct cell keys of
   that day's tests and, per key, exact medians of the matching tests (`arraySort` + index
   arithmetic; the even case is `(a + b) / 2`, exactly what a pandas recompute does). Most
   device-days are "pure" (all tests in one commune × provider cell): their one finest sample
   is simply re-keyed to the five coarser kinds; only mixed days (a phone that moved, a device
   on two providers) run the per-kind split, so this never regroups the tests;
3. `ARRAY JOIN` of those samples, GROUP BY cell: test, sample and device counts; exact medians
   of the sorted samples; for the download CI two short slices of the sorted samples around the
   normal approximation of the binomial order statistics (the exact k = binom.ppf(…) is picked
   from them in Python, `ispeed.aggregator.ci`); sample histograms on log-spaced bins (`sumMap`).

Only functions that ClickHouse 18.16 and chDB 26.x both have are used (no window functions;
nested lambdas take arrays as arguments, since 18.16 cannot capture columns in them).
Missing latency/jitter travel as -1 and are dropped before their medians.
"""

from __future__ import annotations

from statistics import NormalDist

CI_MARGIN = 8  # slack around the normal approximation (observed |k - k0| <= 1 up to n = 5e7)
CI_WIDTH = 2 * CI_MARGIN + 2
BINS_PER_DECADE = 5
LOWEST_BIN = -5  # 0.1 Mbps
HIGHEST_BIN = 20  # 10 Gbps and up

VALID_TESTS = """
    local_date >= {start} AND local_date < {end}
    AND network_type = {network_type}
    AND valid = 1 AND download_mbps > 0 AND upload_mbps > 0
    AND (simulated = 0 OR {include_simulated} = 1)
"""

# Cell kinds: (level, keeps province, keeps commune, keeps provider).
KINDS: tuple[tuple[str, bool, bool, bool], ...] = (
    ("national", False, False, False), ("national", False, False, True),
    ("province", True, False, False), ("province", True, False, True),
    ("commune", True, True, False), ("commune", True, True, True),
)
_METRICS = (("dl", 4, False), ("ul", 5, False), ("lat", 6, True), ("jit", 7, True))


def median_of_sorted(arr: str, empty: str | None = "NULL") -> str:
    """SQL: the exact median of a sorted array expression; `empty` when it has no element."""
    n = f"length({arr})"
    median = (f"if({n} % 2 = 1, {arr}[intDiv({n} + 1, 2)], "
              f"({arr}[intDiv({n}, 2)] + {arr}[intDiv({n}, 2) + 1]) / 2)")
    return median if empty is None else f"if({n} = 0, {empty}, {median})"


def _bin(x: str) -> str:
    return (f"toInt32(least({HIGHEST_BIN}, greatest({LOWEST_BIN}, "
            f"floor(log10(greatest({x}, 1e-9)) * {BINS_PER_DECADE}))))")


def ci_start_sql(n: str, half_z: float, high: bool) -> str:
    """SQL: 1-based start of the slice holding the k-th (or (n-k+1)-th) order statistic."""
    k0 = f"toInt64(floor({n} / 2 - {half_z!r} * sqrt({n})))"
    centre = f"(toInt64({n}) + 1 - {k0})" if high else k0
    return f"toUInt64(greatest(1, {centre} - {CI_MARGIN}))"


def _kind_samples(i: int, level: str, keep_p: bool, keep_c: bool, keep_i: bool,
                  source: str) -> tuple[list[str], str]:
    """SQL aliases computing kind `i`'s samples from the tests array `source`, and their array."""
    blank = "''"
    key = f"(x.1, {'x.2' if keep_c else blank}, {'x.3' if keep_i else blank})"
    if not keep_p:
        key = f"('', '', {'x.3' if keep_i else blank})"
    parts = [f"arrayMap(x -> {key}, {source}) AS k{i}", f"arrayDistinct(k{i}) AS d{i}",
             f"arrayMap(x -> k{i}, d{i}) AS rk{i}"]
    for name, pos, optional in _METRICS:
        keep = "kk = k AND v >= 0" if optional else "kk = k"
        parts.append(
            f"arrayMap((k, ks, vs) -> arraySort(arrayFilter((v, kk) -> {keep}, vs, ks)), "
            f"d{i}, rk{i}, arrayMap(x -> v_{name}_{source}, d{i})) AS s{i}_{name}")
        parts.append(f"arrayMap(s -> {median_of_sorted('s', '-1.' if optional else None)}, s{i}_{name}) AS m{i}_{name}")
    samples = (f"arrayMap((k, a, b, c, d, e) -> ('{level}', k.1, k.2, k.3, {int(keep_i)}, a, b, c, d, e), "
               f"d{i}, arrayMap(s -> length(s), s{i}_dl), m{i}_dl, m{i}_ul, m{i}_lat, m{i}_jit)")
    return parts, samples


def _rekey(level: str, keep_p: bool, keep_c: bool, keep_i: bool, finest: str) -> str:
    """SQL: a pure device-day's finest-cell sample, moved to a coarser cell kind."""
    p = "e.2" if keep_p else "''"
    c = "e.3" if keep_c else "''"
    i = "e.4" if keep_i else "''"
    return (f"arrayMap(e -> ('{level}', {p}, {c}, {i}, {int(keep_i)}, e.6, e.7, e.8, e.9, e.10), "
            f"arrayFilter(e -> pure, {finest}))")


def cells_query(ci_level: float) -> str:
    """The per-network-type cells query; parameters: start, end, network_type, include_simulated."""
    half_z = NormalDist().inv_cdf(1 - (1 - ci_level) / 2) / 2
    finest = len(KINDS) - 1  # commune × provider: every test has exactly one such key
    aliases = [f"arrayMap(x -> x.{pos}, {source}) AS v_{name}_{source}"
               for source in ("t", "t_mixed") for name, pos, _ in _METRICS]
    parts, finest_samples = _kind_samples(finest, *KINDS[finest], source="t")
    aliases += parts
    aliases += [f"length(d{finest}) = 1 AS pure", "arrayFilter(x -> NOT pure, t) AS t_mixed"]
    kinds = [f"s{finest}"]
    for i, kind in enumerate(KINDS[:finest]):
        parts, samples = _kind_samples(i, *kind, source="t_mixed")  # empty unless the day is mixed
        aliases += parts
        kinds += [_rekey(*kind, finest=f"s{finest}"), samples]
    aliases.append(f"{finest_samples} AS s{finest}")
    per_kind = ",\n            ".join(aliases)
    return f"""
SELECT
    c_level AS level, c_province AS province_code, c_commune AS commune_code, c_provider AS provider,
    tests, samples, devices,
    {median_of_sorted('s_dl', None)} AS download_median_mbps,
    {median_of_sorted('s_ul', None)} AS upload_median_mbps,
    {median_of_sorted('s_lat')} AS latency_median_ms,
    {median_of_sorted('s_jit')} AS jitter_median_ms,
    {ci_start_sql('samples', half_z, False)} AS ci_lo_start,
    arraySlice(s_dl, ci_lo_start, {CI_WIDTH}) AS ci_lo_slice,
    {ci_start_sql('samples', half_z, True)} AS ci_hi_start,
    arraySlice(s_dl, ci_hi_start, {CI_WIDTH}) AS ci_hi_slice,
    hist_dl, hist_ul
FROM (
    SELECT
        c_level, c_province, c_commune, c_provider,
        sum(e.6) AS tests,
        count() AS samples,
        uniqExact(device) AS devices,
        arraySort(groupArray(e.7)) AS s_dl,
        arraySort(groupArray(e.8)) AS s_ul,
        arraySort(groupArrayIf(e.9, e.9 >= 0)) AS s_lat,
        arraySort(groupArrayIf(e.10, e.10 >= 0)) AS s_jit,
        sumMap([{_bin('e.7')}], [toUInt64(1)]) AS hist_dl,
        sumMap([{_bin('e.8')}], [toUInt64(1)]) AS hist_ul
    FROM (
        SELECT
            device,
            {per_kind},
            arrayConcat({", ".join(kinds)}) AS samples_of_day
        FROM (
            SELECT
                if(device_hash != '', device_hash, ip_hash) AS device,
                local_date,
                groupArray((province_code, commune_code, provider, download_mbps, upload_mbps,
                            ifNull(latency_ms, -1.), ifNull(jitter_ms, -1.))) AS t
            FROM {{db}}.measurements FINAL
            WHERE {VALID_TESTS.strip()}
            GROUP BY device, local_date
        )
    )
    ARRAY JOIN samples_of_day AS e
    WHERE (e.1 = 'national' OR e.2 != '') AND (e.1 != 'commune' OR e.3 != '') AND (e.5 = 0 OR e.4 != '')
    GROUP BY e.1 AS c_level, e.2 AS c_province, e.3 AS c_commune, e.4 AS c_provider
)
"""


def bin_edges_mbps(index: int) -> tuple[float, float]:
    """Lower and upper edge (Mbps) of histogram bin `index`: [10^(i/5), 10^((i+1)/5))."""
    low = 0.0 if index <= LOWEST_BIN else 10 ** (index / BINS_PER_DECADE)
    high = float("inf") if index >= HIGHEST_BIN else 10 ** ((index + 1) / BINS_PER_DECADE)
    return low, high
