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


def _valid_tests(export_csv: Path) -> pd.DataFrame:
    """The export's valid tests with speeds above zero, each test once (replays dropped)."""
    tests = _read(export_csv)
    for col in ("download_mbps", "upload_mbps", "latency_ms", "jitter_ms"):
        tests[col] = _num(tests[col])
    tests = tests[(tests["valid"] == "1") & (tests["download_mbps"] > 0) & (tests["upload_mbps"] > 0)]
    for rank, (column, ranks) in EVIDENCE_RANKS.items():
        tests[rank] = tests[column].map(ranks).fillna(0).astype(int)
    return tests.drop_duplicates("test_id")


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
        samples = day[["download_mbps", "upload_mbps", "latency_ms", "jitter_ms"]].median()
        samples[list(EVIDENCE_RANKS)] = day[list(EVIDENCE_RANKS)].min()
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
            }
        )
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
