"""The figures added with method v2 (issues #21, #22) on hand-made tests: quality medians, IPv6
share, peak hours, means, percentiles and speed shares; server-delayed tests; months mixing v1 and v2."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ispeed.aggregator import stats_table
from ispeed.aggregator.aggregate import aggregate_month, compute_month
from ispeed.aggregator.methodology import Methodology
from ispeed.cli.main import main
from ispeed.core.errors import UsageError
from ispeed.core.stats import ADDED_COLUMNS, DISTRIBUTION_COLUMNS, METHOD_COLUMNS, QUALITY_COLUMNS, STATS_COLUMNS
from ispeed.core.store import Store
from tests.test_aggregate import _test

NATIONAL = ("fixed", "national", "", "", "")


def v2(ip: int, **figures: Any) -> dict[str, Any]:
    """The method v2 columns of one test: IP version, then loss_down_pct, rpm_up, flags, …"""
    return {"method_version": "2", "ip_version": ip, "udp_status": "ok", **figures}


def _cells(store: Store, **kw: Any) -> dict[tuple[str, ...], dict[str, Any]]:
    stats = compute_month(store, 2025, 7, Methodology(**{"min_samples": 1, **kw}))
    return {
        (c["network_type"], c["level"], c["province_code"], c["commune_code"], c["provider"]): dict(c)
        for c in stats.cells
    }


def test_a_server_delayed_test_counts_for_speed_not_for_latency_loss_or_rpm(store: Store) -> None:
    store.insert_measurements(
        [
            _test(
                1,
                10.0,
                device="d1",
                latency=10.0,
                quality=v2(4, loss_down_pct=1.0, loss_up_pct=2.0, udp_rtt_p90_ms=20.0, rpm_down=600.0, rpm_up=500.0),
            ),
            _test(
                1,
                20.0,
                device="d1",
                latency=100.0,
                quality=v2(
                    4,
                    loss_down_pct=50.0,
                    loss_up_pct=40.0,
                    udp_rtt_p90_ms=200.0,
                    rpm_down=60.0,
                    rpm_up=50.0,
                    flags="server_delayed",
                ),
            ),
            # a day whose only test was delayed: a download sample without latency (flags listed with others)
            _test(
                2,
                30.0,
                device="d1",
                latency=70.0,
                quality=v2(6, loss_down_pct=9.0, flags="location_conflict,server_delayed"),
            ),
        ]
    )
    nat = _cells(store)[NATIONAL]
    assert (nat["samples"], nat["download_median_mbps"]) == (2, (15.0 + 30.0) / 2)
    assert (nat["latency_median_ms"], nat["jitter_median_ms"]) == (10.0, 1.0)  # 62.5 if delayed tests counted
    assert (nat["loss_down_pct_median"], nat["loss_up_pct_median"], nat["rtt_p90_ms_median"]) == (1.0, 2.0, 20.0)
    assert (nat["rpm_down_median"], nat["rpm_up_median"]) == (600.0, 500.0)
    assert nat["ipv6_share"] == 0.5  # the IP version of a delayed test still counts


def _month(store: Store) -> None:
    """Five device-days, one cell: v1 and v2 results mixed, inside and outside the peak hours."""
    store.insert_measurements(
        [
            _test(
                3,
                100.0,
                device="dA",
                hour=20,
                quality=v2(6, loss_down_pct=0.5, loss_up_pct=1.0, udp_rtt_p90_ms=30.0, rpm_down=500.0, rpm_up=400.0),
            ),
            _test(
                3,
                50.0,
                device="dB",
                hour=12,
                quality=v2(4, loss_down_pct=2.0, loss_up_pct=0.0, udp_rtt_p90_ms=50.0, rpm_down=200.0, rpm_up=100.0),
            ),
            _test(3, 1000.0, device="dC", hour=21),  # method v1: speed only, IP version unknown
            _test(
                3, 950.0, device="dD", hour=12, quality=v2(6, loss_down_pct=0.0, loss_up_pct=0.0, udp_rtt_p90_ms=40.0)
            ),
            _test(
                3, 930.0, device="dD", hour=12, quality=v2(4, loss_down_pct=1.0, loss_up_pct=3.0, udp_rtt_p90_ms=60.0)
            ),
            _test(3, 200.0, device="dE", hour=19, quality=v2(6, loss_down_pct=4.0)),
            _test(3, 300.0, device="dE", hour=23),  # 23:00 is after the default peak (19:00-22:59)
        ]
    )


def test_quality_and_distribution_figures_of_a_month_mixing_v1_and_v2(store: Store) -> None:
    _month(store)
    nat = _cells(store)[NATIONAL]
    samples = [100.0, 50.0, 1000.0, 940.0, 250.0]  # dD: (950 + 930) / 2; dE: (200 + 300) / 2
    assert (nat["samples"], nat["download_median_mbps"]) == (5, 250.0)
    # loss: dA 0.5, dB 2, dD (0 + 1) / 2, dE 4 (dC has none); up: dA 1, dB 0, dD 1.5 (dE has none)
    assert (nat["loss_down_pct_median"], nat["loss_up_pct_median"]) == ((0.5 + 2.0) / 2, 1.0)
    assert nat["rtt_p90_ms_median"] == 50.0  # 30, 50, (40 + 60) / 2
    assert (nat["rpm_down_median"], nat["rpm_up_median"]) == (350.0, 250.0)  # dA and dB only
    # known IP versions: dA 6, dB 4, dD 4 (one IPv4 test makes an IPv4 sample), dE 6 (its v1 test is unknown)
    assert nat["ipv6_share"] == 0.5
    # peak samples: dA 100 (20:00), dC 1000 (21:00), dE 200 (19:00; its 23:00 test is not peak)
    assert (nat["peak_samples"], nat["peak_download_median_mbps"]) == (3, 200.0)
    assert nat["download_mean_mbps"] == 468.0 and nat["upload_mean_mbps"] == 10.0
    assert nat["download_p10_mbps"] == np.percentile(samples, 10) == 70.0
    assert nat["download_p90_mbps"] == np.percentile(samples, 90) == 976.0
    assert (nat["share_ge_100_mbps"], nat["share_ge_1000_mbps"]) == (0.8, 0.4)  # 900 Mbit/s: the 1 Gbit/s class


def test_peak_hours_are_configurable_and_wrap_past_midnight(store: Store) -> None:
    _month(store)
    noon = _cells(store, peak_hours=(12, 12))[NATIONAL]
    assert (noon["peak_samples"], noon["peak_download_median_mbps"]) == (2, (50.0 + 940.0) / 2)  # dB, dD
    night = _cells(store, peak_hours=(23, 19))[NATIONAL]  # 23:00-19:59: dE's two tests, dB, dD
    assert (night["peak_samples"], night["peak_download_median_mbps"]) == (3, 250.0)
    with pytest.raises(UsageError, match="peak-hours"):
        Methodology(peak_hours=(19, 24))


def test_peak_median_needs_min_samples_and_suppressed_cells_keep_none(store: Store) -> None:
    _month(store)
    nat = _cells(store, min_samples=4)[NATIONAL]
    assert nat["published"] and nat["peak_samples"] == 3 and nat["peak_download_median_mbps"] is None
    assert nat["download_p90_mbps"] == 976.0
    hidden = _cells(store, min_samples=6)[NATIONAL]
    assert not hidden["published"]
    assert [name for name in QUALITY_COLUMNS + DISTRIBUTION_COLUMNS if hidden[name] is not None] == []


def test_files_and_the_store_table_carry_the_new_columns(store: Store, tmp_path: Path) -> None:
    _month(store)
    method = Methodology(min_samples=1, peak_hours=(18, 20))
    stats = aggregate_month(store, 2025, 7, method, tmp_path)
    with open(tmp_path / "2025-07" / "stats.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(STATS_COLUMNS + METHOD_COLUMNS + ADDED_COLUMNS)
    nat = next(r for r in rows if r["network_type"] == "fixed" and r["level"] == "national" and not r["provider"])
    assert (nat["peak_hours"], nat["gigabit_threshold_mbps"]) == ("18-20", "900.0")
    assert (nat["download_mean_mbps"], nat["ipv6_share"], nat["peak_samples"]) == ("468.0", "0.5", "2")
    stored = {
        (c["network_type"], c["level"], c["province_code"], c["commune_code"], c["provider"]): c
        for c in stats_table.read_month(store, "2025-07")
    }
    for cell in stats.cells:
        row = stored[
            (cell["network_type"], cell["level"], cell["province_code"], cell["commune_code"], cell["provider"])
        ]
        assert {k: row[k] for k in ADDED_COLUMNS} == {k: cell[k] for k in ADDED_COLUMNS}  # type: ignore[literal-required]
        assert (row["peak_hours"], row["gigabit_threshold_mbps"]) == ("18-20", 900.0)


def test_cli_peak_hours(store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("aggregate", "publish"):
        for bad in ("19", "19-24", "evening", "22-19-1"):
            args = [command, "--out", str(tmp_path), "--store", store_url, "--peak-hours", bad]
            assert main(args + (["--month", "2025-07"] if command == "aggregate" else [])) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and "--peak-hours" in err[0] and bad in err[0], err
    assert (
        main(["aggregate", "--month", "2025-07", "--out", str(tmp_path), "--store", store_url, "--peak-hours", "18-21"])
        == 0
    )
    header, first = (tmp_path / "2025-07" / "stats.csv").read_text().splitlines()[:2]
    assert dict(zip(header.split(","), first.split(","), strict=True))["peak_hours"] == "18-21"


@pytest.mark.parametrize("n", [1, 2, 3, 10, 11, 49, 50, 64, 65, 100, 300, 1025, 1600, 4097, 100_003, 1_000_000])
def test_store_percentiles_match_numpy_for_any_sample_count(store: Store, n: int) -> None:
    """The GRID brackets and bands give the order statistics either side of the 10th and 90th
    percentiles, and their interpolation is numpy's to the bit; values repeat, in scrambled order."""
    from ispeed.aggregator.cells_sql import GRID_QUANTILES, ci_band_sql, percentile_bands_sql, percentile_values_sql
    from ispeed.aggregator.figures import linear_percentile

    rows = store.query(f"""
        SELECT samples, {percentile_values_sql()}, length(p10_band), length(p90_band), length(q_dl)
        FROM (
            SELECT *, {ci_band_sql(0.95)}, {percentile_bands_sql()}
            FROM (
                SELECT count() AS samples, groupArray(x) AS s_dl, arrayReduce('{GRID_QUANTILES}', s_dl) AS q_dl
                FROM (SELECT toFloat64((number * 7919) % 997) / 7 AS x FROM numbers({n}))
            )
        )""")
    samples, p10_a, p10_b, p90_a, p90_b, p10_band, p90_band, _ = rows[0]  # q_dl: 18.16 prunes it otherwise
    values = ((np.arange(n, dtype=np.int64) * 7919) % 997).astype(np.float64) / 7
    assert int(samples) == n
    assert linear_percentile(n, 0.1, p10_a, p10_b) == np.percentile(values, 10)
    assert linear_percentile(n, 0.9, p90_a, p90_b) == np.percentile(values, 90)
    if n >= 100_000:  # the bands are a small part of the samples
        assert max(p10_band, p90_band) < n / 100
