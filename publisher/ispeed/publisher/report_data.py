"""What `ispeed report` shows of a month, read from the store without writing to it.

The month's cells are computed afresh (`compute_month`, as `ispeed aggregate` would, with the
command's methodology flags); the month before is the stored one when it was published, else
computed the same way; the trend and the targets' history come from the stored months; the
estimates from the month's device-day samples.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from ispeed.aggregator import stats_table, targets
from ispeed.aggregator.aggregate import compute_month, month_changes, month_text, previous_month
from ispeed.aggregator.estimates import estimate_month
from ispeed.aggregator.estimates_sql import month_samples
from ispeed.aggregator.methodology import Methodology
from ispeed.core.errors import IspeedError
from ispeed.core.store import Store
from ispeed.core.timeutil import VN_TZ, month_bounds, utcnow
from ispeed.publisher.model import MonthData
from ispeed.publisher.publish import geography, national_trend

log = logging.getLogger("ispeed.publisher.report")


def report_month(
    store: Store, year: int, month: int, method: Methodology, targets_file: targets.TargetsFile
) -> MonthData:
    """The month as the report shows it; a month without a single valid test is an error."""
    label = month_text(year, month)
    stats = compute_month(store, year, month, method)
    if not stats.tests:
        raise IspeedError(
            f"--month {label}: no valid test of that month in {store.url.redacted}; nothing to report "
            "(check --month, --store and, for simulated data, --include-simulated)"
        )
    prev_year, prev_month = previous_month(year, month)
    prev_label = month_text(prev_year, prev_month)
    previous = stats_table.read_month(store, prev_label)
    if not previous:
        previous = compute_month(store, prev_year, prev_month, method).cells
    months, trend = national_trend(store, label)
    for cell in stats.cells:  # this month as computed now, whether stored or not
        if cell["level"] == "national" and cell["published"]:
            trend.setdefault((cell["network_type"], cell["provider"]), [None] * len(months))[-1] = cell[
                "download_median_mbps"
            ]
    today = utcnow().astimezone(VN_TZ).date()
    last_day = month_bounds(year, month)[1] - dt.timedelta(days=1)
    history = targets.history(store, label)
    history.pop(label, None)  # the stored copy of this month may differ from the cells computed now
    return MonthData(
        month=label,
        status="final" if today > last_day else "provisional",
        data_until=min(today, last_day),
        method=dataclasses.replace(method),
        built_at=utcnow().replace(microsecond=0),
        cells=stats.cells,
        changes=month_changes(stats.cells, previous, prev_label),
        trend_months=months,
        trend=trend,
        geo=geography(),
        estimates=estimate_month(month_samples(store, year, month, method), method),
        targets=targets_file,
        target_history=history,
    )
