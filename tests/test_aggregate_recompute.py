"""Every cell of a simulated month, recomputed independently with pandas from `ispeed export` output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from ispeed.aggregator.aggregate import aggregate_month, month_query_params
from ispeed.aggregator.cells_sql import device_days_query
from ispeed.aggregator.export import export_month
from ispeed.aggregator.methodology import Methodology
from ispeed.aggregator.places import load_places
from ispeed.aggregator.simulate import SimulationConfig, generate, simulate
from ispeed.core.schema import MEASUREMENT_COLUMNS
from ispeed.core.stats import DISTRIBUTION_COLUMNS, METHOD_COLUMNS, QUALITY_COLUMNS
from ispeed.core.store import Store

KEYS = ["network_type", "level", "province_code", "commune_code", "provider"]
KINDS = [
    ("national", False, False, False),
    ("national", False, False, True),
    ("province", True, False, False),
    ("province", True, False, True),
    ("commune", True, True, False),
    ("commune", True, True, True),
]
MIN_SAMPLES = 25
# histogram bins (the site's, cells_sql.BINS): [10^(i/5), 10^((i+1)/5)) for i = -5 … 20, open at both ends
FIRST_BIN, LAST_BIN = -5, 20
BIN_EDGES = np.array([10 ** ((i + 1) / 5) for i in range(FIRST_BIN, LAST_BIN)])


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _num(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series.replace("", np.nan))


# spec/evidence.md: ranks of each label's evidence, weakest 0; a sample rests on its weakest test
EVIDENCE_RANKS = {
    "r_place": ("location_source", {"gps": 2, "ip": 1}),
    "r_nt": ("network_type_source", {"ip": 3, "device": 2, "declared": 1}),
    "r_dev": ("device_source", {"issued": 1}),
}
EVIDENCE_SHARES = {
    "place_gps_share": ("r_place", 2),
    "place_ip_share": ("r_place", 1),
    "network_type_ip_share": ("r_nt", 3),
    "network_type_device_share": ("r_nt", 2),
    "network_type_declared_share": ("r_nt", 1),
    "device_issued_share": ("r_dev", 1),
}


# method v2's per-test figures (medians over the tests that have them, as latency) and their cell columns
QUALITY_MEDIANS = {
    "loss_down_pct": "loss_down_pct_median",
    "loss_up_pct": "loss_up_pct_median",
    "udp_rtt_p90_ms": "rtt_p90_ms_median",
    "rpm_down": "rpm_down_median",
    "rpm_up": "rpm_up_median",
}
DELAY_FIGURES = ("latency_ms", "jitter_ms", *QUALITY_MEDIANS)  # not counted for a server-delayed test
SAMPLE_FIGURES = ["download_mbps", "upload_mbps", "latency_ms", "jitter_ms", *QUALITY_MEDIANS, "peak_download_mbps"]
PEAK_HOURS = range(19, 23)  # the default: 19:00-22:59 Vietnam time
GIGABIT_MBPS = 900.0


def _valid_tests(export_csv: Path) -> pd.DataFrame:
    """The export's valid tests with speeds above zero, each test once (replays dropped); a
    server-delayed test's delay, loss and RPM figures blanked; its download again as a peak-hour
    figure when it started in the peak hours (Vietnam time: UTC + 7 h)."""
    tests = _read(export_csv)
    for col in ("download_mbps", "upload_mbps", *DELAY_FIGURES):
        tests[col] = _num(tests[col])
    tests = tests[(tests["valid"] == "1") & (tests["download_mbps"] > 0) & (tests["upload_mbps"] > 0)]
    for rank, (column, ranks) in EVIDENCE_RANKS.items():
        tests[rank] = tests[column].map(ranks).fillna(0).astype(int)
    delayed = tests["flags"].str.split(",").apply(lambda flags: "server_delayed" in flags)
    tests.loc[delayed, list(DELAY_FIGURES)] = np.nan
    hour = (pd.to_datetime(tests["started_at"], utc=True) + pd.Timedelta(hours=7)).dt.hour
    tests["peak_download_mbps"] = tests["download_mbps"].where(hour.isin(PEAK_HOURS))
    tests["r_ip"] = tests["ip_version"].map({"4": 1, "6": 2}).fillna(3).astype(int)  # a sample's weakest: v4
    return tests.drop_duplicates("test_id")


def _mean_mbps(x: np.ndarray) -> float:
    """The mean of samples in whole bit/s, summed as integers, divided once (Python's int / int)."""
    bits = int(np.floor(x * 1e6 + 0.5).astype(np.int64).sum(dtype=np.int64))
    return bits / (len(x) * 1_000_000)


def _distribution(samples: pd.DataFrame) -> pd.Series:
    """A cell's means, download percentiles (numpy's default) and shares from its samples."""
    x = samples["download_mbps"].to_numpy()
    return pd.Series(
        {
            "download_mean_mbps": _mean_mbps(x),
            "upload_mean_mbps": _mean_mbps(samples["upload_mbps"].to_numpy()),
            "download_p10_mbps": np.percentile(x, 10),
            "download_p90_mbps": np.percentile(x, 90),
            "share_ge_100_mbps": int((x >= 100.0).sum()) / len(x),
            "share_ge_1000_mbps": int((x >= GIGABIT_MBPS).sum()) / len(x),
        }
    )


def recompute(export_csv: Path, min_samples: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Methodology v1 from the open-data export alone (the methodology page's definitions):
    the cells, and the national and province histograms of every cell's samples."""
    tests = _valid_tests(export_csv)
    frames, histograms = [], []
    for level, keep_p, keep_c, keep_i in KINDS:
        t = tests.copy()
        t["level"] = level
        if not keep_p:
            t["province_code"] = ""
        if not keep_c:
            t["commune_code"] = ""
        if not keep_i:
            t["provider"] = ""
        if keep_p:
            t = t[t["province_code"] != ""]
        if keep_c:
            t = t[t["commune_code"] != ""]
        if keep_i:
            t = t[t["provider"] != ""]
        day = t.groupby(KEYS + ["device_hash", "local_date"], sort=False)
        samples = day[SAMPLE_FIGURES].median()
        samples[[*EVIDENCE_RANKS, "r_ip"]] = day[[*EVIDENCE_RANKS, "r_ip"]].min()
        samples["n_tests"] = day.size()
        samples = samples.reset_index()
        if level in ("national", "province"):
            for metric in ("download", "upload"):
                bins = FIRST_BIN + np.searchsorted(BIN_EDGES, samples[f"{metric}_mbps"].to_numpy(), side="right")
                counted = samples[KEYS].assign(metric=metric, bin=bins).value_counts().rename("samples")
                histograms.append(counted.reset_index())
        cell = samples.groupby(KEYS, sort=False)
        out = pd.DataFrame(
            {
                "tests": cell["n_tests"].sum(),
                "samples": cell.size(),
                "devices": cell["device_hash"].nunique(),
                "download_median_mbps": cell["download_mbps"].median(),
                "upload_median_mbps": cell["upload_mbps"].median(),
                "latency_median_ms": cell["latency_ms"].median(),
                "jitter_median_ms": cell["jitter_ms"].median(),
                **{name: cell[figure].median() for figure, name in QUALITY_MEDIANS.items()},
                "peak_download_median_mbps": cell["peak_download_mbps"].median(),
                "peak_samples": cell["peak_download_mbps"].count(),
            }
        )
        ip_known = (samples["r_ip"] <= 2).groupby([samples[k] for k in KEYS], sort=False).sum()
        ip_v6 = (samples["r_ip"] == 2).groupby([samples[k] for k in KEYS], sort=False).sum()
        out["ipv6_share"] = (ip_v6 / ip_known).where(ip_known > 0)
        out = out.join(cell[["download_mbps", "upload_mbps"]].apply(_distribution))
        for share, (rank, level_) in EVIDENCE_SHARES.items():
            out[share] = (samples[rank] == level_).groupby([samples[k] for k in KEYS], sort=False).sum() / out[
                "samples"
            ]

        def ci(values: pd.Series) -> pd.Series:
            s = np.sort(values.to_numpy())
            n = len(s)
            k = int(binom.ppf(0.025, n, 0.5))
            if k == 0:
                return pd.Series({"lo": np.nan, "hi": np.nan})
            return pd.Series({"lo": s[k - 1], "hi": s[n - k]})

        bounds = cell["download_mbps"].apply(ci).unstack()
        out["download_ci_low_mbps"] = bounds["lo"]
        out["download_ci_high_mbps"] = bounds["hi"]
        frames.append(out.reset_index())
    cells = pd.concat(frames, ignore_index=True)
    cells["published"] = cells["samples"] >= min_samples
    # the peak-hour median needs min_samples peak samples of its own
    cells.loc[cells["peak_samples"] < min_samples, "peak_download_median_mbps"] = np.nan
    cells["rank"] = np.nan
    pub = cells[cells["published"]]
    group = np.where(
        pub["provider"] != "",
        "p|" + pub["network_type"] + "|" + pub["level"] + "|" + pub["province_code"] + "|" + pub["commune_code"],
        "a|"
        + pub["network_type"]
        + "|"
        + pub["level"]
        + "|"
        + np.where(pub["level"] == "commune", pub["province_code"], ""),
    )
    for _, members in pub.groupby(group):
        lows = members["download_ci_low_mbps"].fillna(-np.inf).to_numpy()
        for idx, high in members["download_ci_high_mbps"].fillna(np.inf).items():
            cells.loc[idx, "rank"] = 1 + int((lows > high).sum())
    return cells, pd.concat(histograms, ignore_index=True)


@pytest.fixture
def simulated_month(store: Store) -> Store:
    cfg = SimulationConfig(2025, 7, 30_000, seed=11, anonymous_share=0.1)  # some devices counted by IP
    store.execute("SYSTEM STOP MERGES {db}.measurements")  # a merge would collapse the replays first
    simulate(store, cfg)
    first = next(generate(cfg, load_places()))  # replay 400 tests: export (FINAL) and aggregate count them once
    store.insert_columns("measurements", {k: v[:400] for k, v in first.items()}, dict(MEASUREMENT_COLUMNS))
    assert store.query("SELECT count() FROM {db}.measurements")[0][0] == 30_400
    return store


def test_every_cell_matches_an_independent_pandas_recompute(simulated_month: Store, tmp_path: Path) -> None:
    store = simulated_month
    method = Methodology(min_samples=MIN_SAMPLES, include_simulated=True)
    stats = aggregate_month(store, 2025, 7, method, tmp_path / "out")
    assert stats.published > 50
    export_csv = tmp_path / "tests.csv"
    export_month(store, 2025, 7, export_csv)

    expected, hist = recompute(export_csv, MIN_SAMPLES)
    expected = expected.set_index(KEYS).sort_index()
    got = _read(tmp_path / "out" / "2025-07" / "stats.csv").set_index(KEYS).sort_index()
    assert list(got.index) == list(expected.index)
    for col in ("tests", "samples", "devices"):
        assert (got[col].astype(int) == expected[col]).all(), col
    assert ((got["published"] == "true") == expected["published"]).all()
    pub = expected["published"]
    assert (_num(got["rank"])[pub] == expected["rank"][pub]).all()
    assert (got["rank"][~pub] == "").all()
    for col in (
        "download_median_mbps",
        "download_ci_low_mbps",
        "download_ci_high_mbps",
        "upload_median_mbps",
        "latency_median_ms",
        "jitter_median_ms",
    ):
        ours, theirs = _num(got[col])[pub], expected[col][pub]
        assert np.allclose(ours, theirs, rtol=0, atol=1e-9, equal_nan=True), col
        assert (got[col][~pub] == "").all(), f"{col} must be empty for suppressed cells"
    # several ranks actually differ somewhere (the check above is not vacuous)
    assert expected.loc[pub, "rank"].max() > 1
    # evidence shares: exact (the same counts divided by the same sample count), empty when suppressed
    for col in EVIDENCE_SHARES:
        ours, theirs = _num(got[col])[pub], expected[col][pub]
        assert (ours == theirs).all(), col
        assert (got[col][~pub] == "").all(), f"{col} must be empty for suppressed cells"
    shares = expected.loc[pub, list(EVIDENCE_SHARES)]
    assert ((shares > 0) & (shares < 1)).any().all()  # every share takes values strictly inside 0-1

    # method v2's figures (issues #21, #22): exact to the bit, empty when suppressed or not measurable
    for col in (*QUALITY_COLUMNS, *DISTRIBUTION_COLUMNS):
        ours, theirs = _num(got[col])[pub], expected[col][pub].astype(float)
        same = (ours == theirs) | (ours.isna() & theirs.isna())
        assert same.all(), (col, ours[~same].head(), theirs[~same].head())
        assert (got[col][~pub] == "").all(), f"{col} must be empty for suppressed cells"
        assert ours.nunique() > 3, f"{col} takes several values"  # not vacuous
    figures = expected.loc[pub]
    assert figures["peak_download_median_mbps"].isna().any() and figures["peak_download_median_mbps"].notna().any()
    assert (figures["peak_samples"] < figures["samples"]).all() and (figures["peak_samples"] >= 1).all()
    assert figures["loss_down_pct_median"].gt(0).any()  # lossy cells exist beside the lossless
    national = figures.xs(("national", ""), level=("level", "provider"))["ipv6_share"]
    assert national.between(0.5, 0.7).all(), national  # the simulation's ~60 % of lines
    for col in ("share_ge_100_mbps", "share_ge_1000_mbps"):
        assert figures[col].between(0, 1, inclusive="neither").any(), col
    assert (got[list(METHOD_COLUMNS)].drop_duplicates().to_numpy().tolist()) == [
        ["1", str(MIN_SAMPLES), "0.95", "true", "19-22", "900.0"]
    ]

    # histograms: published national and province cells, every non-empty bin, exact counts
    published = expected[pub].reset_index()[KEYS]
    hist = hist.merge(published, on=KEYS).set_index(KEYS + ["metric", "bin"]).sort_index()
    got_hist = _read(tmp_path / "out" / "2025-07" / "histograms.csv")
    got_hist["bin"] = got_hist["bin"].astype(int)
    got_hist = got_hist.set_index(KEYS + ["metric", "bin"]).sort_index()
    assert list(got_hist.index) == list(hist.index)
    assert (got_hist["samples"].astype(int) == hist["samples"]).all()
    assert len(hist.index.get_level_values("bin").unique()) >= 8


def test_device_days_query_counts_the_exports_device_days(simulated_month: Store, tmp_path: Path) -> None:
    """The benchmark's floor (`device_days_query`, steps 1-2 alone) sees the same device-days,
    tests and mixed days' tests as pandas does from the export."""
    store = simulated_month
    export_csv = tmp_path / "tests.csv"
    export_month(store, 2025, 7, export_csv)
    tests = _valid_tests(export_csv)
    day = tests.groupby(["network_type", "device_hash", "local_date"])
    cells = day[["province_code", "commune_code", "provider"]].nunique().max(axis=1)
    mixed = (cells > 1).rename("mixed").reset_index()
    tests = tests.merge(mixed, on=["network_type", "device_hash", "local_date"])
    expected = {
        t: (int(day.size()[t].size), int(len(g)), int(g["mixed"].sum())) for t, g in tests.groupby("network_type")
    }
    assert sum(m for _, _, m in expected.values()) > 0  # some days are mixed: the count is not vacuous

    method = Methodology(min_samples=MIN_SAMPLES, include_simulated=True)
    query = device_days_query(len(method.network_types))
    got = {
        row[0]: (int(row[1]), int(row[2]), int(row[3]))
        for row in store.query(query, month_query_params(2025, 7, method))
    }
    assert got == expected
