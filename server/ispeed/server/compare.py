"""One result next to the latest published month: "faster than N % of fixed tests in Hà Nội in July 2025".

What the sentence rests on (said with it, and on the methodology page):
- the month: the newest month in the store's `monthly_stats` with a published national cell for
  the result's network type (a month being built, provisional, counts once published);
- the cells: that month's province × ISP cell, the province's all-ISP cell and the national one
  (`core/stats.py`); a cell under `min_samples` is said to be unpublished, never compared;
- the share: from the cell's published download histogram (`DIR/data/YYYY-MM/histograms.csv`
  under the server's `--site-dir`, written by the aggregator; bins a fifth of a decade wide, the
  value placed inside its bin on a log scale), so "N %" is the share of the cell's *samples* (one
  per device and day, methodology v1) below this download. Without that file the result is only
  placed against the cell's median and its 95 % CI: above, below, or within it.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ispeed.core.store import Store

SCOPES: tuple[str, ...] = ("provider", "province", "national")
NETWORK_NAMES: dict[str, tuple[str, str]] = {
    "fixed": ("cố định", "fixed"),
    "mobile": ("di động", "mobile"),
    "5g": ("5G", "5G"),
}
MONTH_NAMES_EN = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_CELL_COLUMNS = (
    "level",
    "province_code",
    "provider",
    "published",
    "samples",
    "download_median_mbps",
    "download_ci_low_mbps",
    "download_ci_high_mbps",
    "include_simulated",
)
Bins = tuple[tuple[float, float, int], ...]  # (low Mbps, high Mbps, samples), ascending


@dataclass(frozen=True)
class Query:
    network_type: str
    province_code: str
    provider: str
    download_mbps: float


def month_label(month: str, lang: str) -> str:
    """`2025-07` -> `tháng 7/2025` / `July 2025`."""
    year, mon = int(month[:4]), int(month[5:7])
    return f"{MONTH_NAMES_EN[mon - 1]} {year}" if lang == "en" else f"tháng {mon}/{year}"


def share_below(bins: Bins, value: float) -> float | None:
    """The share (0-1) of a histogram's samples below `value`; inside a bin, by the log of the value
    (linearly in the lowest bin, which starts at 0; the open-ended top bin counts half)."""
    total = sum(n for _, _, n in bins)
    if total <= 0:
        return None
    below = 0.0
    for low, high, n in bins:
        if value >= high:
            below += n
        elif value > low:
            if low > 0 and math.isfinite(high):
                below += n * (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
            elif math.isfinite(high):
                below += n * value / high  # the lowest bin starts at 0: linear
            else:
                below += n / 2  # the open-ended top bin: its middle
    return below / total


@lru_cache(maxsize=4)
def _histograms(path: str, mtime_ns: int) -> dict[tuple[str, str, str, str], Bins]:
    """The download histograms of one histograms.csv, by (network type, level, province, provider)."""
    grouped: dict[tuple[str, str, str, str], list[tuple[float, float, int]]] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["metric"] != "download" or row["commune_code"]:
                continue
            key = (row["network_type"], row["level"], row["province_code"], row["provider"])
            high = float(row["bin_high_mbps"]) if row["bin_high_mbps"] else math.inf
            grouped.setdefault(key, []).append((float(row["bin_low_mbps"] or 0), high, int(row["samples"])))
    return {k: tuple(sorted(v)) for k, v in grouped.items()}


def histograms(site_dir: str, month: str) -> dict[tuple[str, str, str, str], Bins]:
    """The month's published download histograms under the site directory ({} when there are none)."""
    if not site_dir:
        return {}
    path = Path(site_dir) / "data" / month / "histograms.csv"
    try:
        return _histograms(str(path), path.stat().st_mtime_ns)
    except (OSError, KeyError, ValueError):
        return {}


def latest_month(store: Store, network_type: str) -> str | None:
    rows = store.query(
        "SELECT max(month) FROM {db}.monthly_stats"
        " WHERE network_type = {nt} AND level = 'national' AND provider = '' AND published = 1",
        {"nt": network_type},
    )
    return str(rows[0][0]) if rows and rows[0][0] else None


def month_cells(store: Store, month: str, q: Query) -> dict[str, dict[str, Any]]:
    """The month's cells for the query, by scope (a scope is absent when the store has no such cell)."""
    rows = store.query(
        f"SELECT {', '.join(_CELL_COLUMNS)} FROM {{db}}.monthly_stats"
        " WHERE month = {month} AND network_type = {nt} AND commune_code = ''"
        " AND ((level = 'national' AND provider = '')"
        " OR (level = 'province' AND province_code = {province} AND (provider = '' OR provider = {provider})))",
        {"month": month, "nt": q.network_type, "province": q.province_code, "provider": q.provider},
    )
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        cell = dict(zip(_CELL_COLUMNS, row, strict=True))
        scope = "national" if cell["level"] == "national" else "provider" if cell["provider"] else "province"
        if scope == "provider" and not q.provider or scope != "national" and not q.province_code:
            continue
        out[scope] = cell
    return out


def _where(scope: str, province_name: str, lang: str) -> str:
    if scope == "national":
        return "in Vietnam" if lang == "en" else "trên cả nước"
    return f"in {province_name}" if lang == "en" else f"tại {province_name}"


def _fmt(value: float, lang: str) -> str:
    text = f"{value:.1f}" if value < 100 else f"{value:.0f}"
    return text.replace(".", ",") if lang == "vi" else text


def sentence(item: dict[str, Any], q: Query, month: str, province_name: str, lang: str) -> str:
    """The plain sentence for one comparison (published or not)."""
    en = lang == "en"
    nt = NETWORK_NAMES.get(q.network_type, (q.network_type, q.network_type))[1 if en else 0]
    who = f"{q.provider} {nt}" if item["scope"] == "provider" and en else nt
    who_vi = f"mạng {nt} của {q.provider}" if item["scope"] == "provider" else f"mạng {nt}"
    where, when = _where(item["scope"], province_name, lang), month_label(month, lang)
    if not item["published"]:
        if en:
            return f"Too few {who} tests {where} in {when} to publish a figure."
        return f"Chưa đủ lượt đo {who_vi} {where} trong {when} để công bố số liệu."
    if item["percent_below"] is not None:
        # a true statement: faster than at least floor(p) %, or slower than more than 99 %
        pct = math.floor(item["percent_below"])
        if pct < 1:
            if en:
                return f"Slower than 99 % of {who} tests {where} in {when}."
            return f"Chậm hơn 99 % số lượt đo {who_vi} {where} trong {when}."
        if en:
            return f"Faster than {pct} % of {who} tests {where} in {when}."
        return f"Nhanh hơn {pct} % số lượt đo {who_vi} {where} trong {when}."
    median = _fmt(item["median_mbps"], lang)
    if en:
        position = {"above": "Above", "below": "Below", "within": "About"}[item["position"]]
        return f"{position} the median download of {who} tests {where} in {when} ({median} Mbps)."
    position = {"above": "Cao hơn", "below": "Thấp hơn", "within": "Xấp xỉ"}[item["position"]]
    return f"{position} trung vị tốc độ tải xuống {who_vi} {where} trong {when} ({median} Mbps)."


def compare(
    store: Store, q: Query, site_dir: str, province_name: str, lang: str, month: str | None = None
) -> dict[str, Any]:
    """The comparison answer: month, one item per scope with its numbers, and the sentences."""
    month = month or latest_month(store, q.network_type)
    answer: dict[str, Any] = {"month": month, "network_type": q.network_type, "download_mbps": q.download_mbps}
    en = lang == "en"
    if month is None:
        nt = NETWORK_NAMES.get(q.network_type, (q.network_type, q.network_type))[1 if en else 0]
        answer.update(
            comparisons=[],
            simulated=False,
            sentences=[
                f"No month of {nt} figures is published yet: nothing to compare with."
                if en
                else f"Chưa có tháng nào công bố số liệu mạng {nt}: chưa có gì để so sánh."
            ],
            note="",
        )
        return answer
    cells = month_cells(store, month, q)
    hists = histograms(site_dir, month)
    items = []
    for scope in SCOPES:
        cell = cells.get(scope)
        if cell is None:
            if scope == "national" or not q.province_code or scope == "provider" and not q.provider:
                continue
            cell = {"published": 0, "samples": 0}  # no test there at all: unpublished too
        items.append(_item(scope, cell, q, hists))
    simulated = any(bool(c.get("include_simulated")) for c in cells.values())
    note = (
        f"Theo số liệu công bố {month_label(month, lang)}; mỗi thiết bị tính một mẫu mỗi ngày."
        if not en
        else f"From the figures published for {month_label(month, lang)}; a device counts once a day."
    )
    if simulated:
        note += " (dữ liệu mô phỏng)" if not en else " (simulated data)"
    answer.update(
        comparisons=items,
        simulated=simulated,
        sentences=[sentence(item, q, month, province_name, lang) for item in _said(items)],
        note=note,
    )
    return answer


def _said(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The comparisons put into words: the ISP's and the province's; the national one only when
    neither of those is published (it stays in the answer's numbers)."""
    local = [i for i in items if i["scope"] != "national"]
    if any(i["published"] for i in local):
        return local
    return items


def _item(scope: str, cell: dict[str, Any], q: Query, hists: dict[tuple[str, str, str, str], Bins]) -> dict[str, Any]:
    published = bool(cell["published"]) and cell.get("download_median_mbps") is not None
    item: dict[str, Any] = {
        "scope": scope,
        "province_code": "" if scope == "national" else q.province_code,
        "provider": q.provider if scope == "provider" else "",
        "published": published,
        "samples": int(cell.get("samples") or 0),
        "median_mbps": None,
        "ci_low_mbps": None,
        "ci_high_mbps": None,
        "percent_below": None,
        "basis": "",
        "position": "",
    }
    if not published:
        return item
    median, low, high = (float(cell[k]) for k in _CELL_COLUMNS[5:8])
    item.update(median_mbps=median, ci_low_mbps=low, ci_high_mbps=high)
    level = "national" if scope == "national" else "province"
    bins = hists.get((q.network_type, level, item["province_code"], item["provider"]))
    share = share_below(bins, q.download_mbps) if bins else None
    if share is not None:
        item.update(basis="histogram", percent_below=min(99.9, math.floor(share * 1000) / 10))
    else:
        position = "above" if q.download_mbps > high else "below" if q.download_mbps < low else "within"
        item.update(basis="median", position=position)
    return item
