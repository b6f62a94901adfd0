"""Time rules of methodology v1: UTC storage, Vietnam local time (UTC+7, no DST) for days and months."""

from __future__ import annotations

import datetime as dt
import re

from ispeed.core.errors import UsageError

VN_TZ = dt.timezone(dt.timedelta(hours=7), "Asia/Ho_Chi_Minh")
_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def local_date(ts: dt.datetime) -> dt.date:
    """The Vietnam-local calendar day of an aware UTC timestamp."""
    return ts.astimezone(VN_TZ).date()


def parse_month(text: str, flag: str = "--month") -> tuple[int, int]:
    """Parse 'YYYY-MM'; raise UsageError naming the flag and the bad value."""
    m = _MONTH_RE.match(text or "")
    if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 2000:
        raise UsageError(f"{flag} {text!r} is not a month: use YYYY-MM, e.g. 2025-07")
    return int(m.group(1)), int(m.group(2))


def month_bounds(year: int, month: int) -> tuple[dt.date, dt.date]:
    """First local day of the month and first local day of the next month."""
    start = dt.date(year, month, 1)
    end = dt.date(year + (month == 12), month % 12 + 1, 1)
    return start, end


ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"  # the one written form of a UTC time: exports, logs, answers


def isoformat_utc(ts: dt.datetime | float | int) -> str:
    """An aware datetime, or UTC epoch seconds, as ISO 8601 UTC to the second (`2025-07-01T03:04:05Z`)."""
    if not isinstance(ts, dt.datetime):
        ts = dt.datetime.fromtimestamp(ts, dt.UTC)
    return ts.astimezone(dt.UTC).strftime(ISO_UTC)
