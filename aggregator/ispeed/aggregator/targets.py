"""National targets (a versioned TOML file, overridable) and each month's progress towards them.

`load_targets()` reads the shipped `targets.toml` (or a file given with `--targets`), checking
every field; `value(target, cells, province)` is a target's figure for one month and place
(national when `province` is empty) from that month's cells (`stats.csv` rows, read by name and
defensively: a column the month's statistics do not carry yields no figure, not an error);
`history(store, month)` reads the national and province cells of the twelve months to `month`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ispeed.core.errors import UsageError
from ispeed.core.stats import STATS_CSV_COLUMNS, decode_row
from ispeed.core.store import Store

LANGUAGES = ("vi", "en")
TEXT_FIELDS = ("title", "goal", "source", "measure", "can", "cannot")
# metric -> the scopes it takes
METRICS: dict[str, tuple[str, ...]] = {
    "share_ge_gigabit": ("fixed", "mobile", "5g"),
    "share_5g": ("mobile+5g",),
    "ipv6_share": ("all",),
    "download_mean_mbps": ("fixed", "mobile", "5g"),
}
SHARE_METRICS = ("share_ge_gigabit", "share_5g", "ipv6_share")  # shown in per cent
GIGABIT_COLUMN = "share_ge_1000_mbps"  # stats.csv (issue #22 item 1), at the methodology's gigabit_threshold_mbps
Cells = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Target:
    """One target of the file: what it asks, where it comes from, how the platform measures it."""

    id: str
    metric: str
    scope: str
    threshold: float
    by: dt.date
    proxy: bool
    texts: Mapping[str, str]  # "<field>_<lang>" -> text

    def text(self, field: str, lang: str) -> str:
        return self.texts[f"{field}_{lang}"]

    @property
    def is_share(self) -> bool:
        return self.metric in SHARE_METRICS


@dataclass(frozen=True)
class TargetsFile:
    version: str
    source: str  # "ispeed (shipped)" or the path given
    sha256: str
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Value:
    """A target's figure for one month and place: `value` (a share 0-1, or Mbps) when there is one,
    else `note`: 'not_in_stats' (the month's statistics do not carry the column) or 'insufficient'."""

    value: float | None
    samples: int
    note: str = ""

    def reached(self, target: Target) -> bool | None:
        return None if self.value is None else self.value >= target.threshold


def load_targets(path: str | Path | None = None) -> TargetsFile:
    """The shipped targets file, or the one at `path`; a bad file is one clear UsageError."""
    if path is None:
        data = resources.files("ispeed.aggregator").joinpath("targets.toml").read_bytes()
        where = "ispeed (shipped targets.toml)"
    else:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise UsageError(f"--targets {path}: cannot read it ({exc.strerror}); give a TOML targets file") from None
        where = str(path)
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"--targets {where}: not a TOML file ({exc}); see the shipped targets.toml") from None
    version = doc.get("version")
    entries = doc.get("target")
    if not isinstance(version, str) or not version or not isinstance(entries, list) or not entries:
        raise UsageError(f"--targets {where}: needs a `version` string and at least one [[target]]")
    targets = tuple(_target(entry, where, i) for i, entry in enumerate(entries, 1))
    ids = [t.id for t in targets]
    if len(set(ids)) != len(ids):
        raise UsageError(f"--targets {where}: target ids repeat ({', '.join(ids)}); give each its own id")
    return TargetsFile(version, where, hashlib.sha256(data).hexdigest(), targets)


def _target(entry: Any, where: str, number: int) -> Target:
    def fail(what: str) -> UsageError:
        return UsageError(f"--targets {where}: target {number} {what}; see the shipped targets.toml")

    if not isinstance(entry, dict):
        raise fail("is not a table")
    names = ["id", "metric", "scope", "threshold", "by", "proxy"]
    names += [f"{f}_{lang}" for f in TEXT_FIELDS for lang in LANGUAGES]
    missing = [n for n in names if n not in entry]
    if missing:
        raise fail(f"lacks {', '.join(missing)}")
    unknown = sorted(set(entry) - set(names))
    if unknown:
        raise fail(f"has unknown fields {', '.join(unknown)}")
    metric, scope = entry["metric"], entry["scope"]
    if metric not in METRICS:
        raise fail(f"has metric {metric!r}: use one of {', '.join(METRICS)}")
    if scope not in METRICS[metric]:
        raise fail(f"has scope {scope!r} for {metric}: use {' or '.join(METRICS[metric])}")
    threshold = entry["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold <= 0:
        raise fail(f"has threshold {threshold!r}: give a positive number")
    if metric in SHARE_METRICS and threshold > 1:
        raise fail(f"has threshold {threshold!r} for a share: give a share between 0 and 1")
    by = entry["by"]
    if isinstance(by, str):
        try:
            by = dt.date.fromisoformat(by)
        except ValueError:
            raise fail(f"has by {by!r}: give a date YYYY-MM-DD") from None
    if not isinstance(by, dt.date):
        raise fail(f"has by {by!r}: give a date YYYY-MM-DD")
    if not isinstance(entry["proxy"], bool):
        raise fail("has a proxy that is not true or false")
    texts = {n: entry[n] for n in names[6:]}
    if not all(isinstance(v, str) and v.strip() for v in texts.values()) or not isinstance(entry["id"], str):
        raise fail("has an empty or non-text id, title, goal, source, measure, can or cannot")
    return Target(entry["id"], metric, scope, float(threshold), by, entry["proxy"], texts)


def _cell(cells: Cells, network_type: str, province: str) -> Mapping[str, Any] | None:
    level = "province" if province else "national"
    for c in cells:
        if (
            c["network_type"] == network_type
            and c["level"] == level
            and c["province_code"] == province
            and not c["provider"]
        ):
            return c
    return None


def value(target: Target, cells: Cells, province: str = "", min_samples: int = 300) -> Value:
    """The target's figure for one month's `cells` (national and province all-ISP cells are
    enough) at `province` ('' = national); shares need `min_samples` samples behind them."""
    if target.metric == "share_5g":
        mobile, five_g = (_cell(cells, nt, province) for nt in ("mobile", "5g"))
        on_5g = int(five_g["samples"]) if five_g else 0
        total = on_5g + (int(mobile["samples"]) if mobile else 0)
        return Value(
            on_5g / total if total >= min_samples else None, total, "" if total >= min_samples else "insufficient"
        )
    if target.metric == "ipv6_share":
        weighted, samples, known = 0.0, 0, False
        for network_type in ("fixed", "mobile", "5g"):
            c = _cell(cells, network_type, province)
            if c is None:
                continue
            known = known or "ipv6_share" in c
            share = c.get("ipv6_share")
            if c["published"] and share is not None:
                weighted += float(share) * int(c["samples"])
                samples += int(c["samples"])
        if not known:
            return Value(None, 0, "not_in_stats")
        return Value(weighted / samples if samples else None, samples, "" if samples else "insufficient")
    column = GIGABIT_COLUMN if target.metric == "share_ge_gigabit" else target.metric
    c = _cell(cells, target.scope, province)
    if c is None:
        return Value(None, 0, "insufficient")
    if column not in c:
        return Value(None, int(c["samples"]), "not_in_stats")
    figure = c.get(column)
    if not c["published"] or figure is None:
        return Value(None, int(c["samples"]), "insufficient")
    return Value(float(figure), int(c["samples"]), "")


def gigabit_threshold_mbps(cells: Cells) -> float | None:
    """The methodology's gigabit threshold, when the month's cells carry it."""
    for c in cells:
        if c.get("gigabit_threshold_mbps") is not None:
            return float(c["gigabit_threshold_mbps"])
    return None


def month_labels(month: str, count: int = 12) -> list[str]:
    """The `count` months ending at `month`, oldest first."""
    year, mon = int(month[:4]), int(month[5:7])
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{mon:02d}")
        year, mon = (year - 1, 12) if mon == 1 else (year, mon - 1)
    return out[::-1]


def history(store: Store, month: str, count: int = 12) -> dict[str, list[Mapping[str, Any]]]:
    """The national and province all-ISP cells of the stored months among the `count` ending at
    `month`, by month (months never aggregated are absent)."""
    labels = month_labels(month, count)
    names = list(STATS_CSV_COLUMNS)
    rows = store.query(
        f"SELECT {', '.join(names)} FROM {{db}}.monthly_stats WHERE month >= {{first}} AND month <= {{last}} "
        "AND level != 'commune' AND provider = '' ORDER BY month, network_type, level, province_code",
        {"first": labels[0], "last": labels[-1]},
    )
    out: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        cell = decode_row(names, row)
        out.setdefault(cell["month"], []).append(cell)
    return out
