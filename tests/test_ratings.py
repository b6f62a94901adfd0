"""Ratings for everyday uses (core/ratings.py): thresholds, the worst measured criterion, 'not measured'."""

from __future__ import annotations

from typing import Any

import pytest

from ispeed.core import ratings

FAST = {
    "download_mbps": 300.0,
    "upload_mbps": 100.0,
    "latency_ms": 8.0,
    "jitter_ms": 1.0,
    "loaded_latency_down_ms": 20.0,
    "loaded_latency_up_ms": 25.0,
}


def grades(result: dict[str, Any], lang: str = "en") -> dict[str, str]:
    return {r["use"]: r["grade"] for r in ratings.rate(result, lang)}


def by_use(result: dict[str, Any], use: str, lang: str = "en") -> dict[str, Any]:
    return next(r for r in ratings.rate(result, lang) if r["use"] == use)


def test_a_fast_v1_result_is_good_everywhere_and_says_loss_and_rpm_were_not_measured() -> None:
    assert grades(FAST) == dict.fromkeys(("browsing", "video_hd", "video_4k", "video_calls", "gaming"), "good")
    calls = by_use(FAST, "video_calls")
    assert calls["not_measured"] == ["Packet loss", "Responsiveness"] and calls["limits"] == []
    assert by_use(FAST, "video_hd", "vi")["not_measured"] == ["Mất gói"]
    assert by_use(FAST, "gaming", "vi")["grade_name"] == "Tốt"


def test_the_worst_measured_criterion_decides_and_is_named() -> None:
    slow_up = {**FAST, "upload_mbps": 1.5}  # calls: ok from 2, poor below; gaming: ok from 1
    assert grades(slow_up) == {
        "browsing": "good",
        "video_hd": "good",
        "video_4k": "good",
        "video_calls": "poor",
        "gaming": "ok",
    }
    calls = by_use(slow_up, "video_calls")
    assert [(lim["metric"], lim["value"], lim["grade"]) for lim in calls["limits"]] == [("upload_mbps", 1.5, "poor")]
    assert calls["limits"][0]["text"] == "Upload 1.5 Mbps (good at ≥ 10 Mbps)"
    assert by_use(slow_up, "video_calls", "vi")["limits"][0]["text"] == "Tải lên 1,5 Mbps (tốt khi ≥ 10 Mbps)"


@pytest.mark.parametrize(
    ("download", "expected"),
    [(50.0, "good"), (49.9, "ok"), (25.0, "ok"), (24.9, "poor")],
)
def test_thresholds_are_inclusive_at_their_edge(download: float, expected: str) -> None:
    assert grades({**FAST, "download_mbps": download})["video_4k"] == expected


def test_loss_and_rpm_count_once_measured_taking_the_worse_direction() -> None:
    v2 = {**FAST, "loss_down_pct": 0.2, "loss_up_pct": 2.5, "rpm_down": 2000.0, "rpm_up": 250.0}
    result = {r["use"]: r for r in ratings.rate(v2, "en")}
    assert {u: r["grade"] for u, r in result.items()} == {
        "browsing": "ok",  # loss 2.5 %: ok up to 5
        "video_hd": "ok",  # ok up to 5
        "video_4k": "ok",  # ok up to 3
        "video_calls": "ok",  # loss ok up to 3; RPM 250 ≥ 150 ok
        "gaming": "poor",  # loss poor above 2; RPM 250 < 300 poor
    }
    assert [lim["metric"] for lim in result["gaming"]["limits"]] == ["loss_pct", "rpm"]
    assert all(r["not_measured"] == [] for r in result.values())
    assert ratings.figures(v2)["loss_pct"] == 2.5 and ratings.figures(v2)["rpm"] == 250.0


def test_a_server_delayed_result_has_no_trusted_latency_figures() -> None:
    delayed = {**FAST, "latency_ms": 500.0, "loss_down_pct": 50.0, "flags": "server_delayed"}
    calls = by_use(delayed, "video_calls")
    assert calls["grade"] == "good"  # speed figures still count; the delayed ones are not measured
    assert calls["not_measured"] == ["Latency", "Jitter", "Latency under load", "Packet loss", "Responsiveness"]
    assert grades({**delayed, "flags": ""})["video_calls"] == "poor"


def test_nothing_measured_is_unknown_not_good() -> None:
    result = {r["use"]: r for r in ratings.rate({"download_mbps": None, "upload_mbps": "x"}, "vi")}
    assert {r["grade"] for r in result.values()} == {"unknown"}
    assert result["gaming"]["grade_name"] == "Chưa đánh giá được"


def test_rules_list_every_threshold_in_both_languages() -> None:
    en, vi = ratings.rules("en"), ratings.rules("vi")
    assert len(en) == len(vi) == sum(len(u.criteria) for u in ratings.USES) == 21
    assert en[0] == {"use": "Web browsing, social media", "metric": "Download", "good": "≥ 25 Mbps", "ok": "≥ 5 Mbps"}
    assert {"use": "Chơi game trực tuyến", "metric": "Mất gói", "good": "≤ 0,5 %", "ok": "≤ 2 %"} in vi
