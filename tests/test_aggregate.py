"""ispeed aggregate: exact definitions on hand-made tests, publication, ranks, outputs, the store table."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom

from ispeed.aggregator import stats_table
from ispeed.aggregator.aggregate import aggregate_month, compute_month
from ispeed.aggregator.ci import median_ci
from ispeed.aggregator.methodology import Methodology
from ispeed.aggregator.rank import assign_ranks
from ispeed.aggregator.simulate import SimulationConfig, simulate
from ispeed.cli.main import main
from ispeed.core.errors import UsageError
from ispeed.core.schema import Measurement
from ispeed.core.stats import DISTRIBUTION_COLUMNS, EVIDENCE_COLUMNS, QUALITY_COLUMNS, STATS_COLUMNS
from ispeed.core.store import Store

_n = iter(range(1_000_000))


def _test(
    day: int,
    download: float,
    *,
    device: str = "d1",
    ip: str = "ip1",
    province: str = "01",
    commune: str = "00004",
    provider: str = "Viettel",
    network: str = "fixed",
    upload: float = 10.0,
    latency: float | None = 10.0,
    simulated: bool = False,
    valid: bool = True,
    month: int = 7,
    hour: int = 12,  # Vietnam local
    quality: dict[str, object] | None = None,  # method v2 columns (ip_version, loss_down_pct, …, flags)
) -> Measurement:
    started = dt.datetime(2025, month, day, hour, 0, tzinfo=dt.UTC) - dt.timedelta(hours=7)
    return Measurement(
        test_id=f"t{next(_n)}",
        started_at=started,
        local_date=dt.date(2025, month, day),
        network_type=network,
        provider=provider,
        province_code=province,
        commune_code=commune,
        device_hash=device,
        ip_hash=ip,
        download_mbps=download,
        upload_mbps=upload,
        latency_ms=latency,
        jitter_ms=None if latency is None else 1.0,
        simulated=simulated,
        valid=valid,
        **(quality or {}),  # type: ignore[arg-type]
    )


def _cells(store: Store, **kw: object) -> dict[tuple[str, ...], dict]:
    stats = compute_month(store, 2025, 7, Methodology(min_samples=1, **kw))  # type: ignore[arg-type]
    return {
        (c["network_type"], c["level"], c["province_code"], c["commune_code"], c["provider"]): c for c in stats.cells
    }


def test_device_day_samples_even_medians_and_invalid_tests(store: Store) -> None:
    store.insert_measurements(
        [
            # device d1 on 1 July: three tests, one in another commune (a different commune cell)
            _test(1, 10.0),
            _test(1, 20.0),
            _test(1, 90.0, commune="00008"),
            # d1 on 2 July: two tests -> sample = (a + b) / 2
            _test(2, 0.1),
            _test(2, 0.2),
            # no device id: the IP hash is the device
            _test(1, 50.0, device="", ip="ipA"),
            _test(1, 70.0, device="", ip="ipB"),
            # never counted: invalid, zero upload, simulated (by default)
            _test(1, 999.0, valid=False),
            _test(1, 999.0, upload=0.0),
            _test(1, 999.0, simulated=True),
            # a test without latency does not turn a latency median into NULL
            _test(3, 40.0, device="d2", latency=None),
        ]
    )
    cells = _cells(store)
    nat = cells[("fixed", "national", "", "", "")]
    # samples: d1/1 -> median(10,20,90)=20; d1/2 -> 0.15000000000000002; ipA 50; ipB 70; d2 40
    assert (nat["tests"], nat["samples"], nat["devices"]) == (8, 5, 4)
    assert nat["download_median_mbps"] == 40.0
    commune = cells[("fixed", "commune", "01", "00004", "Viettel")]
    # d1/1 -> (10+20)/2 = 15 in this commune; d1/2 -> (0.1+0.2)/2; ipA; ipB; d2
    assert commune["samples"] == 5 and commune["tests"] == 7
    assert sorted([15.0, (0.1 + 0.2) / 2, 50.0, 70.0, 40.0])[2] == commune["download_median_mbps"]
    assert cells[("fixed", "commune", "01", "00008", "")]["download_median_mbps"] == 90.0
    assert nat["latency_median_ms"] == 10.0
    assert ("mobile", "national", "", "", "") in cells  # empty network types still get a row
    assert cells[("mobile", "national", "", "", "")]["tests"] == 0
    with_sim = _cells(store, include_simulated=True)
    assert with_sim[("fixed", "national", "", "", "")]["tests"] == 9


def test_duplicates_count_once(store: Store) -> None:
    rows = [_test(4, 30.0), _test(5, 40.0)]
    store.execute("SYSTEM STOP MERGES {db}.measurements")  # a merge would collapse the copy first
    store.insert_measurements(rows)
    store.insert_columns("measurements", *_as_columns(rows[:1]))  # bypass insert-time dedup
    nat = _cells(store)[("fixed", "national", "", "", "")]
    assert nat["tests"] == 2
    assert store.query("SELECT count() FROM {db}.measurements")[0][0] == 3  # the copy was there


def test_replayed_copies_never_change_a_device_day_sample(store: Store) -> None:
    """A replayed row (same test, a second stored copy) before, between or after the day's other
    tests: the day's sample stays the median of its distinct tests, on the fast paths too."""
    a, b = _test(6, 30.0, device="dA", provider="A"), _test(6, 40.0, device="dA", provider="A")
    c, d = _test(6, 50.0, device="dB", provider="B"), _test(6, 70.0, device="dB", provider="B")
    e, f, g = (_test(6, v, device="dC", provider="C") for v in (10.0, 20.0, 90.0))
    m1, m2 = _test(7, 30.0, device="dM", provider="M1"), _test(7, 40.0, device="dM", provider="M2")
    store.execute("SYSTEM STOP MERGES {db}.measurements")  # keep the copies apart until they are read
    store.insert_measurements([a, b, c, e, f, g, m1, m2])
    for row in (a, c, g, m1):  # bypass insert-time dedup, one part each
        store.insert_columns("measurements", *_as_columns([row]))
    store.insert_measurements([d])  # dB's second test lands after its first test's copy
    cells = _cells(store)
    assert store.query("SELECT count() FROM {db}.measurements")[0][0] == 13  # the copies were there

    def cell(provider: str) -> dict:
        return cells[("fixed", "national", "", "", provider)]

    assert (cell("A")["tests"], cell("A")["download_median_mbps"]) == (2, 35.0)
    assert (cell("B")["tests"], cell("B")["download_median_mbps"]) == (2, 60.0)
    assert (cell("C")["tests"], cell("C")["download_median_mbps"]) == (3, 20.0)  # 55 if 90 counted twice
    assert (cell("M1")["download_median_mbps"], cell("M2")["download_median_mbps"]) == (30.0, 40.0)
    nat = cell("")  # samples 35 (dA), 60 (dB), 20 (dC), 35 (dM: its two distinct tests)
    assert (nat["tests"], nat["samples"], nat["download_median_mbps"]) == (9, 4, 35.0)


def test_a_mixed_day_keeps_missing_latency_out_of_each_cell(store: Store) -> None:
    """A device in two communes on one day (a mixed day) whose tests in one commune have no
    latency: that commune's sample has no latency (NULL median, not -1), the day's national
    sample takes the latency of the tests that have one, and download counts in both."""
    store.insert_measurements(
        [
            _test(8, 10.0, device="dL", latency=None),
            _test(8, 30.0, device="dL", latency=None),
            _test(8, 50.0, device="dL", commune="00008", latency=30.0),
            _test(8, 70.0, device="dL", commune="00008", latency=50.0),
        ]
    )
    cells = _cells(store)
    for provider in ("", "Viettel"):
        without = cells[("fixed", "commune", "01", "00004", provider)]
        assert (without["samples"], without["tests"], without["download_median_mbps"]) == (1, 2, 20.0)
        assert without["latency_median_ms"] is None and without["jitter_median_ms"] is None
        other = cells[("fixed", "commune", "01", "00008", provider)]
        assert (other["download_median_mbps"], other["latency_median_ms"]) == (60.0, 40.0)
    for key in (("national", "", "", ""), ("province", "01", "", "Viettel")):
        day = cells[("fixed", *key)]  # one sample: the median of the day's four tests
        assert (day["samples"], day["tests"], day["devices"]) == (1, 4, 1)
        assert (day["download_median_mbps"], day["latency_median_ms"], day["jitter_median_ms"]) == (40.0, 40.0, 1.0)


def _as_columns(rows: list[Measurement]) -> tuple[dict, dict]:
    from ispeed.core.schema import MEASUREMENT_COLUMNS, to_columns

    return to_columns(rows), dict(MEASUREMENT_COLUMNS)


def test_vectorized_ci_orders_equal_binom_ppf_one_by_one() -> None:
    """The aggregator's one-call k for every published cell is scipy.stats.binom.ppf's, exactly."""
    from ispeed.aggregator.ci import ci_orders

    rng = np.random.default_rng(7)
    ns = list(range(1, 30_001)) + sorted(int(x) for x in rng.integers(30_001, 60_000_000, 2_000))
    expected = [int(binom.ppf(0.025, n, 0.5)) for n in ns]
    assert ci_orders(ns, 0.025) == expected
    assert ci_orders([], 0.025) == []


@pytest.mark.parametrize("n", [1, 5, 6, 7, 10, 37, 300, 1001, 4096])
def test_ci_picks_the_binomial_order_statistics(n: int) -> None:
    values = np.sort(np.random.default_rng(n).lognormal(4, 1, n))
    k = int(binom.ppf(0.025, n, 0.5))
    starts = (max(1, k - 8), max(1, n - k + 1 - 8))
    low, high = median_ci(
        n, 0.025, values[starts[0] - 1 : starts[0] + 17], starts[0], values[starts[1] - 1 : starts[1] + 17], starts[1]
    )
    if k == 0:
        assert (low, high) == (None, None)
    else:
        assert (low, high) == (values[k - 1], values[n - k])
        # coverage of the interval is at least 95%
        assert binom.cdf(n - k, n, 0.5) - binom.cdf(k - 1, n, 0.5) >= 0.95


def _cell(
    nt: str, level: str, prov: str, comm: str, isp: str, lo: float | None, hi: float | None, published: bool = True
) -> dict:
    return {
        "network_type": nt,
        "level": level,
        "province_code": prov,
        "commune_code": comm,
        "provider": isp,
        "download_ci_low_mbps": lo,
        "download_ci_high_mbps": hi,
        "published": published,
    }


def test_rank_groups_and_ties() -> None:
    cells = [
        _cell("fixed", "national", "", "", "", 50, 60),
        _cell("fixed", "national", "", "", "A", 100, 110),
        _cell("fixed", "national", "", "", "B", 105, 120),  # overlaps A: both rank 1
        _cell("fixed", "national", "", "", "C", 10, 20),  # below A and B: rank 3
        _cell("fixed", "national", "", "", "D", 500, 600, published=False),
        _cell("mobile", "national", "", "", "E", 1, 2),  # other network type: its own group
        _cell("fixed", "province", "01", "", "", 30, 40),
        _cell("fixed", "province", "79", "", "", 41, 50),
        _cell("fixed", "commune", "01", "00004", "", 1, 2),
        _cell("fixed", "commune", "79", "26734", "", 5, 6),  # other province: not compared
        _cell("fixed", "commune", "01", "00008", "", 3, 4),
        _cell("fixed", "commune", "01", "00008", "A", None, None),  # no interval: never told apart
        _cell("fixed", "commune", "01", "00008", "B", 7, 8),
    ]
    assign_ranks(cells)
    assert [c["rank"] for c in cells] == [1, 1, 1, 3, None, 1, 2, 1, 2, 1, 1, 1, 1]


def test_outputs_store_table_and_reruns(store: Store, tmp_path: Path) -> None:
    simulate(store, SimulationConfig(2025, 6, 6_000, seed=3))
    simulate(store, SimulationConfig(2025, 7, 6_000, seed=4))
    method = Methodology(min_samples=40, include_simulated=True)
    aggregate_month(store, 2025, 6, method, tmp_path / "a")
    first = aggregate_month(store, 2025, 7, method, tmp_path / "a")
    aggregate_month(store, 2025, 7, method, tmp_path / "b")
    for name in ("stats.csv", "changes.csv", "histograms.csv", "methodology.json"):
        assert (tmp_path / "a/2025-07" / name).read_bytes() == (tmp_path / "b/2025-07" / name).read_bytes(), name
    header = (tmp_path / "a/2025-07/stats.csv").read_text().splitlines()[0].split(",")
    assert header[: len(STATS_COLUMNS)] == list(STATS_COLUMNS)
    assert header[len(STATS_COLUMNS) :] == [
        "methodology_version",
        "min_samples",
        "ci_level",
        "include_simulated",
        "peak_hours",
        "gigabit_threshold_mbps",
        *EVIDENCE_COLUMNS,
        *QUALITY_COLUMNS,
        *DISTRIBUTION_COLUMNS,
    ]
    meta = json.loads((tmp_path / "a/2025-07/methodology.json").read_text())
    assert meta["methodology_version"] == "1" and meta["min_samples"] == 40
    # month-over-month: published in both months
    changes = first.changes
    assert changes and all(c["previous_month"] == "2025-06" for c in changes)
    nat = next(c for c in changes if c["level"] == "national" and not c["provider"] and c["network_type"] == "fixed")
    assert math.isclose(
        nat["download_change_pct"], (nat["download_median_mbps"] / nat["previous_download_median_mbps"] - 1) * 100
    )
    # histograms: national and province levels, samples add up to the cell's samples
    hist = [
        h
        for h in first.histograms
        if h["network_type"] == "fixed" and h["level"] == "national" and not h["provider"] and h["metric"] == "download"
    ]
    fixed_nat = next(
        c for c in first.cells if c["network_type"] == "fixed" and c["level"] == "national" and not c["provider"]
    )
    assert sum(h["samples"] for h in hist) == fixed_nat["samples"]
    assert all(h["bin_low_mbps"] <= fixed_nat["download_median_mbps"] or h["samples"] >= 0 for h in hist)
    # the store holds exactly one copy of the month, equal to the files
    stored = stats_table.read_month(store, "2025-07")
    assert len(stored) == len(first.cells)
    assert store.query("SELECT count() FROM {db}.monthly_stats WHERE month = '2025-07'")[0][0] == len(first.cells)
    assert store.query("SELECT count() FROM {db}.monthly_stats_staging")[0][0] == 0
    by_key = {
        (c["network_type"], c["level"], c["province_code"], c["commune_code"], c["provider"]): c for c in first.cells
    }
    for row in stored:
        cell = by_key[(row["network_type"], row["level"], row["province_code"], row["commune_code"], row["provider"])]
        assert (row["samples"], row["rank"], row["published"]) == (cell["samples"], cell["rank"], cell["published"])


def test_histogram_bins_values_on_and_next_to_every_edge(store: Store) -> None:
    """A value on an edge opens the upper bin, its float neighbours stay where they compare."""
    from ispeed.aggregator.cells_sql import BINS, _histogram, bin_edges_mbps

    edges = np.array([bin_edges_mbps(b)[1] for b in BINS[:-1]])
    values = np.concatenate(
        [edges, np.nextafter(edges, 0), np.nextafter(edges, np.inf), [1e-9, 0.05, 3.7, 95.5, 2e4, 1e6]]
    )
    literal = "[" + ", ".join(repr(float(v)) for v in values) + "]"
    rows = store.query(f"SELECT h_t FROM (SELECT {literal} AS v, {_histogram('t', 'v')})")
    expected = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(BINS))
    assert list(rows[0][0]) == expected.tolist()
    assert expected.min() >= 2 and sum(rows[0][0]) == len(values)


def test_csv_fields_are_plain_text_whatever_the_number_type() -> None:
    from ispeed.core.stats import format_value

    assert [format_value(v) for v in (None, True, False, 0, 17, -3, "", "x")] == [
        "",
        "true",
        "false",
        "0",
        "17",
        "-3",
        "",
        "x",
    ]
    assert [format_value(v) for v in (0.1, 1e-300, 95.0, math.nan, math.inf, -math.inf)] == [
        "0.1",
        "1e-300",
        "95.0",
        "",
        "",
        "",
    ]
    assert [format_value(v) for v in (np.float64(2.5), np.float64("nan"), np.int64(7))] == ["2.5", "", "7"]


def test_empty_month_and_simulated_excluded_by_default(store: Store, tmp_path: Path) -> None:
    simulate(store, SimulationConfig(2025, 7, 2_000, seed=5))
    stats = aggregate_month(store, 2025, 7, Methodology(), tmp_path)
    assert stats.tests == 0 and stats.published == 0
    assert stats.summary()["insufficient_data"]
    lines = (tmp_path / "2025-07/stats.csv").read_text().splitlines()
    assert len(lines) == 4  # header + one national row per network type
    assert all(",0,0,0,,,,,,,,false," in line for line in lines[1:])
    assert "insufficient data" in json.loads((tmp_path / "2025-07/methodology.json").read_text())["note"]


def test_cli_aggregate_and_bad_month(store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["aggregate", "--month", "2025-13", "--out", str(tmp_path), "--store", store_url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2025-13" in err[0]
    assert main(["aggregate", "--month", "2024-02", "--out", str(tmp_path), "--store", store_url]) == 0
    assert "insufficient data" in capsys.readouterr().err
    assert (tmp_path / "2024-02/stats.csv").exists()
    with pytest.raises(UsageError):
        Methodology(min_samples=0)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 10, 37, 74, 76, 300, 4097, 100_003, 1_000_000, 2_000_003])
def test_store_medians_and_ci_band_match_a_full_sort(store: Store, n: int) -> None:
    """The two quantilesExact levels give the exact median and the GRID band the exact CI slices.

    The values repeat (ties straddle the band's edges), in a scrambled order.
    """
    from ispeed.aggregator.cells_sql import CI_SLICES, CI_WIDTH, GRID_QUANTILES, LO_INDEX, MEDIAN_LEVELS, ci_band_sql

    rows = store.query(f"""
        SELECT samples, {CI_SLICES}, q_dl[{LO_INDEX}], q_dl[{LO_INDEX + 1}], q_med
        FROM (
            SELECT *, {ci_band_sql(0.95)}
            FROM (
                SELECT count() AS samples, groupArray(x) AS s_dl,
                       arrayReduce('{GRID_QUANTILES}', s_dl) AS q_dl,
                       quantilesExact({MEDIAN_LEVELS})(x) AS q_med
                FROM (SELECT toFloat64((number * 7919) % 997) / 7 AS x FROM numbers({n}))
            )
        )""")
    samples, lo_start, lo_slice, hi_start, hi_slice, q_lo, q_hi, q_med = rows[0]
    values = np.sort(((np.arange(n, dtype=np.int64) * 7919) % 997).astype(np.float64) / 7)
    assert int(samples) == n
    assert (q_lo + q_hi) / 2 == float(np.median(values)) == (q_med[0] + q_med[1]) / 2
    assert list(lo_slice) == list(values[int(lo_start) - 1 : int(lo_start) - 1 + CI_WIDTH])
    assert list(hi_slice) == list(values[int(hi_start) - 1 : int(hi_start) - 1 + CI_WIDTH])
    k = int(binom.ppf(0.025, n, 0.5))
    if k:
        assert median_ci(n, 0.025, lo_slice, int(lo_start), hi_slice, int(hi_start)) == (values[k - 1], values[n - k])


def test_a_store_named_demo_counts_simulated_tests_only_when_asked(tmp_path: Path) -> None:
    from ispeed.core.store import open_store

    store = open_store(f"chdb:{tmp_path / 'store-demo'}")  # the folder name is no flag
    try:
        store.insert_measurements([_test(1, 10.0), _test(1, 999.0, device="sim", simulated=True)])
        plain = aggregate_month(store, 2025, 7, Methodology(min_samples=1), None)
        assert plain.method.include_simulated is False
        nation = next(c for c in plain.cells if c["network_type"] == "fixed" and c["level"] == "national")
        assert (plain.tests, nation["download_median_mbps"]) == (1, 10.0)
        asked = aggregate_month(store, 2025, 7, Methodology(min_samples=1, include_simulated=True), None)
        assert asked.tests == 2
    finally:
        store.close()
