"""Plain-language ratings of one result for everyday uses: the thresholds, and the rule applying them.

The thresholds are a contract: the test page and `/r/<test_id>` rate with them, and the published
methodology page prints them (the section "Ratings for everyday uses"). Each use lists criteria
(a figure, and the values from which it rates *good* and *ok*); a use's grade is the worst grade
of its criteria that were measured — one weak figure is enough to spoil a video call. A figure
the result does not have (packet loss and responsiveness before method v2, latency of an ndt7
run) is reported as *not measured*, never guessed; a use none of whose figures was measured is
*unknown*. A result whose probes the server itself delayed (flag `server_delayed`, method v2)
has no trusted latency-type figures: they count as not measured.

Where the numbers come from: video services' published bit-rate recommendations (about 5 Mbps
for HD, 15-25 Mbps for 4K, one stream), video-call services' recommendations (1-4 Mbps each way
for HD calls; ≤ 150 ms delay, ≤ 40 ms jitter, ≤ 2 % loss), ITU-T G.114's 150 ms for interactive
voice, and the responsiveness draft's round trips per minute (RPM = 60,000 / round trip in ms
under load). *Good* leaves room for a household; *ok* is one person at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GRADES: tuple[str, ...] = ("good", "ok", "poor")  # best first; "unknown" when nothing was measured
GRADE_NAMES: dict[str, tuple[str, str]] = {
    "good": ("Tốt", "Good"),
    "ok": ("Tạm được", "OK"),
    "poor": ("Kém", "Poor"),
    "unknown": ("Chưa đánh giá được", "Cannot tell"),
}


@dataclass(frozen=True)
class Metric:
    """A figure a rating can rest on: its key in `figures()`, unit, and which way is better."""

    key: str
    unit: str
    higher_is_better: bool
    name: tuple[str, str]  # (Vietnamese, English)


METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric("download_mbps", "Mbps", True, ("Tải xuống", "Download")),
        Metric("upload_mbps", "Mbps", True, ("Tải lên", "Upload")),
        Metric("latency_ms", "ms", False, ("Độ trễ", "Latency")),
        Metric("jitter_ms", "ms", False, ("Độ dao động", "Jitter")),
        Metric("loaded_latency_ms", "ms", False, ("Độ trễ khi có tải", "Latency under load")),
        Metric("loss_pct", "%", False, ("Mất gói", "Packet loss")),
        Metric("rpm", "RPM", True, ("Độ phản hồi", "Responsiveness")),
    )
}


@dataclass(frozen=True)
class Criterion:
    metric: str
    good: float  # the value from which the criterion rates good (>= for higher-is-better, <= otherwise)
    ok: float


@dataclass(frozen=True)
class Use:
    key: str
    name: tuple[str, str]
    criteria: tuple[Criterion, ...]


USES: tuple[Use, ...] = (
    Use(
        "browsing",
        ("Duyệt web, mạng xã hội", "Web browsing, social media"),
        (Criterion("download_mbps", 25, 5), Criterion("loaded_latency_ms", 100, 300), Criterion("loss_pct", 1, 5)),
    ),
    Use(
        "video_hd",
        ("Xem video HD (1080p)", "HD video (1080p)"),
        (Criterion("download_mbps", 15, 5), Criterion("loss_pct", 2, 5)),
    ),
    Use(
        "video_4k",
        ("Xem video 4K", "4K video"),
        (Criterion("download_mbps", 50, 25), Criterion("loss_pct", 1, 3)),
    ),
    Use(
        "video_calls",
        ("Gọi video", "Video calls"),
        (
            Criterion("download_mbps", 10, 2),
            Criterion("upload_mbps", 10, 2),
            Criterion("latency_ms", 50, 150),
            Criterion("jitter_ms", 20, 40),
            Criterion("loaded_latency_ms", 150, 400),
            Criterion("loss_pct", 1, 3),
            Criterion("rpm", 400, 150),
        ),
    ),
    Use(
        "gaming",
        ("Chơi game trực tuyến", "Online gaming"),
        (
            Criterion("download_mbps", 10, 3),
            Criterion("upload_mbps", 3, 1),
            Criterion("latency_ms", 30, 80),
            Criterion("jitter_ms", 10, 30),
            Criterion("loaded_latency_ms", 80, 200),
            Criterion("loss_pct", 0.5, 2),
            Criterion("rpm", 750, 300),
        ),
    ),
)
GOOD_FROM = ("tốt khi", "good at")
LATENCY_METRICS = frozenset({"latency_ms", "jitter_ms", "loaded_latency_ms", "loss_pct", "rpm"})


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and number >= 0 else None  # NaN and negatives: not a measurement


def _worst(*values: Any, lowest: bool = False) -> float | None:
    """The worse of the directions that were measured (max of delays/losses, min of RPMs)."""
    present = [v for v in (_number(x) for x in values) if v is not None]
    if not present:
        return None
    return min(present) if lowest else max(present)


def figures(result: Mapping[str, Any]) -> dict[str, float | None]:
    """The rated figures of a result (a stored row or the page's JSON): loaded latency, loss and RPM
    take the worse direction; latency-type figures are dropped when the server delayed the probes."""
    out: dict[str, float | None] = {
        "download_mbps": _number(result.get("download_mbps")),
        "upload_mbps": _number(result.get("upload_mbps")),
        "latency_ms": _number(result.get("latency_ms")),
        "jitter_ms": _number(result.get("jitter_ms")),
        "loaded_latency_ms": _worst(result.get("loaded_latency_down_ms"), result.get("loaded_latency_up_ms")),
        "loss_pct": _worst(result.get("loss_down_pct"), result.get("loss_up_pct")),
        "rpm": _worst(result.get("rpm_down"), result.get("rpm_up"), lowest=True),
    }
    flags = result.get("flags") or ""
    if "server_delayed" in (flags.split(",") if isinstance(flags, str) else list(flags)):
        out.update(dict.fromkeys(LATENCY_METRICS))
    return out


def grade_of(criterion: Criterion, value: float) -> str:
    """good / ok / poor for one measured value."""
    if METRICS[criterion.metric].higher_is_better:
        return "good" if value >= criterion.good else "ok" if value >= criterion.ok else "poor"
    return "good" if value <= criterion.good else "ok" if value <= criterion.ok else "poor"


def _fmt(value: float, lang: str) -> str:
    text = f"{value:.0f}" if value >= 100 or value == int(value) else f"{value:.1f}"
    return text.replace(".", ",") if lang == "vi" else text


def threshold_text(criterion: Criterion, which: str, lang: str) -> str:
    """`≥ 25 Mbps` / `≤ 100 ms`: where a criterion's `good` or `ok` band starts."""
    metric = METRICS[criterion.metric]
    sign = "≥" if metric.higher_is_better else "≤"
    value = criterion.good if which == "good" else criterion.ok
    return f"{sign} {_fmt(value, lang)} {metric.unit}"


def rate(result: Mapping[str, Any], lang: str = "vi") -> list[dict[str, Any]]:
    """One rating per use: grade, its name, the criteria that set it (below good), what was not measured."""
    i = 1 if lang == "en" else 0
    values = figures(result)
    out = []
    for use in USES:
        measured = [(c, values[c.metric]) for c in use.criteria if values[c.metric] is not None]
        missing = [c.metric for c in use.criteria if values[c.metric] is None]
        grades = [(c, v, grade_of(c, v)) for c, v in measured if v is not None]
        grade = max((g for _, _, g in grades), key=GRADES.index) if grades else "unknown"
        limits = [
            {
                "metric": c.metric,
                "name": METRICS[c.metric].name[i],
                "value": v,
                "unit": METRICS[c.metric].unit,
                "grade": g,
                "good": threshold_text(c, "good", lang),
                "text": f"{METRICS[c.metric].name[i]} {_fmt(v, lang)} {METRICS[c.metric].unit} "
                f"({GOOD_FROM[i]} {threshold_text(c, 'good', lang)})",
            }
            for c, v, g in grades
            if g == grade and g != "good"
        ]
        not_measured = [METRICS[m].name[i] for m in missing]
        out.append(
            {
                "use": use.key,
                "name": use.name[i],
                "grade": grade,
                "grade_name": GRADE_NAMES[grade][i],
                "limits": limits,
                "not_measured": not_measured,
            }
        )
    return out


def rules(lang: str = "vi") -> list[dict[str, Any]]:
    """The thresholds as rows for the methodology page: use, figure, good from, ok from."""
    i = 1 if lang == "en" else 0
    return [
        {
            "use": use.name[i],
            "metric": METRICS[c.metric].name[i],
            "good": threshold_text(c, "good", lang),
            "ok": threshold_text(c, "ok", lang),
        }
        for use in USES
        for c in use.criteria
    ]
