"""A result next to the published month (server/compare.py): the histogram share, the month, the sentences."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from ispeed.aggregator.methodology import Methodology
from ispeed.aggregator.stats_table import write_month
from ispeed.core.stats import METHOD_COLUMNS
from ispeed.core.store import Store
from ispeed.server import compare
from ispeed.server.compare import Query

LOW_BIN = (0.0, 10 ** (-4 / 5))  # bin -5 of the aggregator's histogram: below 0.158 Mbps
HIGH_BIN = (1000.0, 10 ** (16 / 5))  # bin 15: 1000 to 1585 Mbps


def cell(month: str, level: str, province: str = "", provider: str = "", samples: int = 400, **fig: Any) -> dict:
    published = samples >= 10
    median = fig.get("median", 100.0)
    return {
        "month": month,
        "network_type": fig.get("network_type", "fixed"),
        "level": level,
        "province_code": province,
        "commune_code": "",
        "provider": provider,
        "tests": samples,
        "samples": samples,
        "devices": samples,
        "download_median_mbps": median if published else None,
        "download_ci_low_mbps": median - 10 if published else None,
        "download_ci_high_mbps": median + 10 if published else None,
        "upload_median_mbps": 40.0 if published else None,
        "latency_median_ms": 9.0 if published else None,
        "jitter_median_ms": 1.0 if published else None,
        "rank": 1 if published else None,
        "published": published,
    }


def write_histogram(site: Path, month: str, rows: list[tuple[str, str, str, float, float, int]]) -> None:
    """rows: (level, province, provider, low, high, samples) of fixed download histograms."""
    path = site / "data" / month / "histograms.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["month", "network_type", "level", "province_code", "commune_code", "provider", "metric", "bin"]
            + ["bin_low_mbps", "bin_high_mbps", "samples", *METHOD_COLUMNS]
        )
        for i, (level, province, provider, low, high, n) in enumerate(rows):
            for metric in ("download", "upload"):
                w.writerow(
                    [month, "fixed", level, province, "", provider, metric, i, low, high, n, 1, 10, 0.95, "false"]
                )


def test_the_share_below_a_value_is_read_from_the_bins() -> None:
    assert compare.share_below(((*LOW_BIN, 30), (*HIGH_BIN, 10)), 2.7) == 0.75
    assert compare.share_below(((10.0, 100.0, 100),), 10**1.5) == pytest.approx(0.5)  # log scale inside a bin
    assert compare.share_below(((10.0, 100.0, 100),), 5.0) == 0.0
    assert compare.share_below(((10.0, 100.0, 60), (100.0, float("inf"), 40)), 500.0) == pytest.approx(0.8)
    assert compare.share_below(((10.0, 100.0, 0),), 50.0) is None
    assert (
        compare.month_label("2025-07", "en") == "July 2025" and compare.month_label("2025-07", "vi") == "tháng 7/2025"
    )


@pytest.fixture
def published(store: Store, tmp_path: Path) -> Path:
    """A store with June and July 2025 published (August: nothing published yet) and July's histograms."""
    computed = dt.datetime(2025, 8, 2, tzinfo=dt.UTC)
    method = Methodology(min_samples=10)
    write_month(store, "2025-06", [cell("2025-06", "national"), cell("2025-06", "province", "01")], method, computed)
    july = [
        cell("2025-07", "national", median=120.0),
        cell("2025-07", "province", "01"),
        cell("2025-07", "province", "01", "Viettel", median=80.0),
        cell("2025-07", "province", "01", "VNPT", samples=3),
    ]
    write_month(store, "2025-07", july, method, computed)
    write_month(store, "2025-08", [cell("2025-08", "national", samples=2)], method, computed)
    site = tmp_path / "site"
    write_histogram(
        site, "2025-07", [("province", "01", "Viettel", *LOW_BIN, 30), ("province", "01", "Viettel", *HIGH_BIN, 10)]
    )
    return site


def test_sentences_rest_on_the_latest_published_month_and_say_what_they_rest_on(store: Store, published: Path) -> None:
    answer = compare.compare(store, Query("fixed", "01", "Viettel", 50.0), str(published), "Hà Nội", "en")
    assert answer["month"] == "2025-07" and not answer["simulated"]
    assert answer["sentences"] == [
        "Faster than 75 % of Viettel fixed tests in Hà Nội in July 2025.",
        "Below the median download of fixed tests in Hà Nội in July 2025 (100 Mbps).",
    ]
    assert answer["note"] == "From the figures published for July 2025; a device counts once a day."
    items = {i["scope"]: i for i in answer["comparisons"]}
    assert (items["provider"]["basis"], items["provider"]["percent_below"], items["provider"]["samples"]) == (
        "histogram",
        75.0,
        400,
    )
    assert (items["province"]["basis"], items["province"]["position"]) == ("median", "below")
    assert (items["national"]["median_mbps"], items["national"]["position"]) == (120.0, "below")  # numbers only
    vi = compare.compare(store, Query("fixed", "01", "Viettel", 95.0), str(published), "Hà Nội", "vi")
    assert vi["sentences"] == [
        "Nhanh hơn 75 % số lượt đo mạng cố định của Viettel tại Hà Nội trong tháng 7/2025.",
        "Xấp xỉ trung vị tốc độ tải xuống mạng cố định tại Hà Nội trong tháng 7/2025 (100 Mbps).",
    ]
    # without the site's histogram file: placed against the median and its CI only
    bare = compare.compare(store, Query("fixed", "01", "Viettel", 95.0), "", "Hà Nội", "en")
    assert (
        bare["sentences"][0] == "Above the median download of Viettel fixed tests in Hà Nội in July 2025 (80.0 Mbps)."
    )


def test_the_extremes_stay_true_statements(store: Store, published: Path) -> None:
    top = compare.compare(store, Query("fixed", "01", "Viettel", 5000.0), str(published), "Hà Nội", "en")
    assert top["sentences"][0] == "Faster than 99 % of Viettel fixed tests in Hà Nội in July 2025."
    bottom = compare.compare(store, Query("fixed", "01", "Viettel", 0.001), str(published), "Hà Nội", "en")
    assert bottom["comparisons"][0]["percent_below"] < 1
    assert bottom["sentences"][0] == "Slower than 99 % of Viettel fixed tests in Hà Nội in July 2025."


def test_unpublished_cells_and_unpublished_months_are_said_plainly(store: Store, published: Path) -> None:
    vnpt = compare.compare(store, Query("fixed", "01", "VNPT", 50.0), str(published), "Hà Nội", "en")
    assert vnpt["sentences"][0] == "Too few VNPT fixed tests in Hà Nội in July 2025 to publish a figure."
    unknown_isp = compare.compare(store, Query("fixed", "01", "Gtel", 50.0), str(published), "Hà Nội", "vi")
    assert unknown_isp["sentences"][0] == (
        "Chưa đủ lượt đo mạng cố định của Gtel tại Hà Nội trong tháng 7/2025 để công bố số liệu."
    )
    # a province nobody published: its two sentences say so, and the national figure is put into words
    hcm = compare.compare(store, Query("fixed", "79", "Viettel", 150.0), str(published), "Hồ Chí Minh", "en")
    assert hcm["sentences"] == [
        "Too few Viettel fixed tests in Hồ Chí Minh in July 2025 to publish a figure.",
        "Too few fixed tests in Hồ Chí Minh in July 2025 to publish a figure.",
        "Above the median download of fixed tests in Vietnam in July 2025 (120 Mbps).",
    ]
    nowhere = compare.compare(store, Query("fixed", "", "", 150.0), str(published), "", "en")
    assert [i["scope"] for i in nowhere["comparisons"]] == ["national"]
    mobile = compare.compare(store, Query("mobile", "01", "Viettel", 50.0), str(published), "Hà Nội", "en")
    assert (mobile["month"], mobile["comparisons"]) == (None, [])
    assert mobile["sentences"] == ["No month of mobile figures is published yet: nothing to compare with."]
