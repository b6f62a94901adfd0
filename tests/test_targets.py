"""National targets: the shipped file, bad files refused in one line, each metric's figure from a month's cells."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from ispeed.aggregator.targets import GIGABIT_COLUMN, gigabit_threshold_mbps, load_targets, month_labels, value
from ispeed.core.errors import UsageError
from ispeed.core.stats import empty_cell


def test_the_shipped_file_holds_decision_1132s_measurable_targets() -> None:
    shipped = load_targets()
    by_id = {t.id: t for t in shipped.targets}
    assert shipped.version and len(shipped.sha256) == 64
    gigabit, five_g, ipv6 = by_id["fixed-gigabit-2030"], by_id["5g-coverage-2030"], by_id["ipv6-2030"]
    assert (gigabit.metric, gigabit.scope, gigabit.threshold, gigabit.by) == (
        "share_ge_gigabit",
        "fixed",
        1.0,
        dt.date(2030, 12, 31),
    )
    assert "1132/QĐ-TTg" in gigabit.text("source", "vi") and "1132" in five_g.text("source", "en")
    assert five_g.proxy and five_g.metric == "share_5g" and five_g.threshold == 0.99
    assert "proxy" in five_g.text("measure", "en").lower() and "thay thế" in five_g.text("measure", "vi")
    assert ipv6.metric == "ipv6_share" and not ipv6.proxy
    for t in shipped.targets:  # every target says what the platform can and cannot show, in both languages
        for lang in ("vi", "en"):
            assert len(t.text("can", lang)) > 20 and len(t.text("cannot", lang)) > 20


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """version = "test-1"
[[target]]
id = "t"
metric = "share_5g"
scope = "mobile+5g"
threshold = 0.5
by = 2030-12-31
proxy = true
"""
GOOD += "".join(
    f'{f}_{lang} = "{f} {lang}"\n'
    for f in ("title", "goal", "source", "measure", "can", "cannot")
    for lang in "vi en".split()
)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.replace('metric = "share_5g"', 'metric = "speed"'), "metric 'speed': use one of"),
        (lambda s: s.replace('scope = "mobile+5g"', 'scope = "fixed"'), "scope 'fixed' for share_5g"),
        (lambda s: s.replace("threshold = 0.5", "threshold = 50"), "give a share between 0 and 1"),
        (lambda s: s.replace("by = 2030-12-31", 'by = "2030-13-01"'), "give a date YYYY-MM-DD"),
        (lambda s: s.replace('can_en = "can en"\n', ""), "lacks can_en"),
        (lambda s: s + 'colour = "red"\n', "unknown fields colour"),
        (lambda s: s.replace('version = "test-1"', ""), "needs a `version`"),
        (lambda s: s + s[s.index("[[target]]") :].replace('"t"', '"t"', 1), "ids repeat"),
        (lambda s: s.replace("[[target]]", "[[target"), "not a TOML file"),
    ],
)
def test_a_bad_targets_file_is_one_clear_error(tmp_path: Path, edit: Any, message: str) -> None:
    assert load_targets(_write(tmp_path, GOOD)).targets[0].by == dt.date(2030, 12, 31)
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace("`", ".")):
        load_targets(_write(tmp_path, edit(GOOD)))
    with pytest.raises(UsageError, match="cannot read it"):
        load_targets(tmp_path / "missing.toml")


def _cell(network_type: str, province: str, samples: int, published: bool = True, **figures: Any) -> dict[str, Any]:
    cell: dict[str, Any] = dict(empty_cell("2025-07", network_type, "province" if province else "national", province))
    cell.update(samples=samples, tests=samples, published=published, **figures)
    return cell


def test_each_metric_from_a_months_cells() -> None:
    targets = {t.id: t for t in load_targets().targets}
    cells = [
        _cell("fixed", "", 5000, **{GIGABIT_COLUMN: 0.05, "download_mean_mbps": 310.0, "ipv6_share": 0.6}),
        _cell("mobile", "", 3000, ipv6_share=0.8),
        _cell("5g", "", 1000, ipv6_share=1.0),
        _cell("fixed", "01", 100, published=False, **{GIGABIT_COLUMN: None}),
        _cell("mobile", "01", 250, published=False),
        _cell("5g", "01", 150, published=False),
        _cell("mobile", "79", 90, published=False),
    ]
    cells[0]["gigabit_threshold_mbps"] = 900.0
    gigabit = value(targets["fixed-gigabit-2030"], cells)
    assert (gigabit.value, gigabit.samples, gigabit.reached(targets["fixed-gigabit-2030"])) == (0.05, 5000, False)
    assert value(targets["fixed-speed-2025"], cells).reached(targets["fixed-speed-2025"]) is True
    # the 5G share counts samples, suppressed cells included: 1000 / (3000 + 1000) nationally
    assert value(targets["5g-coverage-2030"], cells).value == pytest.approx(0.25)
    assert value(targets["5g-coverage-2030"], cells, "01", min_samples=300).value == pytest.approx(150 / 400)
    assert value(targets["5g-coverage-2030"], cells, "79", min_samples=300).note == "insufficient"
    # IPv6: weighted by each network type's samples
    ipv6 = value(targets["ipv6-2030"], cells)
    assert ipv6.value == pytest.approx((0.6 * 5000 + 0.8 * 3000 + 1.0 * 1000) / 9000) and ipv6.samples == 9000
    # a suppressed cell has no figure (every column of the target now exists in the statistics)
    assert value(targets["fixed-gigabit-2030"], cells, "01").note == "insufficient"
    assert value(targets["fixed-speed-2025"], cells, "01").note == "insufficient"
    assert value(targets["ipv6-2030"], cells, "01").note == "insufficient"
    # a month aggregated before a target's column existed says so
    old = [{k: v for k, v in cells[3].items() if k != "download_mean_mbps"}]
    assert value(targets["fixed-speed-2025"], old, "01").note == "not_in_stats"
    assert value(targets["fixed-gigabit-2030"], cells, "96").note == "insufficient"  # no cell at all
    assert gigabit_threshold_mbps(cells) == 900.0 and gigabit_threshold_mbps(cells[1:]) is None
    assert month_labels("2025-02", 4) == ["2024-11", "2024-12", "2025-01", "2025-02"]
