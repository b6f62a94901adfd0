"""Per-test-server health of a month, from the stored results: tests, errors, load and saturation.

For the site's fleet page and for operators. Everything comes from `measurements` (each result
carries its `server_id`), so it works on one store, a cluster, and for every server at once:

- tests, valid and invalid tests, the invalid share, and the commonest invalid reasons (numbers
  in the reasons folded to `N`, so "download 912.0 Mbps exceeds …" groups with its kind);
- median download of valid tests, median TCP minimum RTT and retransmission ratio (a server
  whose RTT or retransmissions climb is in trouble before its users notice);
- load per minute: the Gbit/s the server sent, averaged over each minute (each test's download
  phase, `duration_s` seconds after a one-second latency phase, spread over the minutes it
  overlaps), and the tests active in that minute; the month's peaks of both;
- saturation, when the server's capacity is known (`capacity_gbps`, from the fleet file):
  minutes whose load reached `saturation_share` of it. `saturated_minutes()` lists those
  windows, so tests run in them can be told apart or excluded.

Queries use only what ClickHouse 18.16 and chDB both have.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ispeed.core.store import Store
from ispeed.core.timeutil import month_bounds

SATURATION_SHARE = 0.8
LATENCY_PHASE_S = 1.0

_WHERE = "local_date >= {start} AND local_date < {end} AND (simulated = 0 OR {include_simulated} = 1)"

_TOTALS = f"""
SELECT server_id, count() AS tests, countIf(valid = 1) AS valid_tests,
       quantileExactIf(0.5)(download_mbps, valid = 1) AS download_median_mbps,
       quantileExactIf(0.5)(ifNull(tcp_min_rtt_ms, 0.), isNotNull(tcp_min_rtt_ms)) AS tcp_min_rtt_median_ms,
       quantileExactIf(0.5)(ifNull(tcp_retrans_ratio, 0.), isNotNull(tcp_retrans_ratio)) AS retrans_median,
       countIf(isNotNull(tcp_min_rtt_ms)) AS with_rtt, countIf(isNotNull(tcp_retrans_ratio)) AS with_retrans
FROM {{db}}.measurements FINAL
WHERE {_WHERE}
GROUP BY server_id ORDER BY server_id
"""


class _Totals(NamedTuple):
    """A row of _TOTALS (its aliases, in order)."""

    server_id: str
    tests: int
    valid_tests: int
    download_median_mbps: float
    tcp_min_rtt_median_ms: float
    retrans_median: float
    with_rtt: int
    with_retrans: int


_REASONS = f"""
SELECT server_id, replaceRegexpAll(invalid_reason, '[0-9]+([.][0-9]+)?', 'N') AS reason, count() AS n
FROM {{db}}.measurements FINAL
WHERE {_WHERE} AND valid = 0
GROUP BY server_id, reason ORDER BY server_id, n DESC, reason
"""


class _Reason(NamedTuple):
    """A row of _REASONS."""

    server_id: str
    reason: str
    n: int


# One row per (server, minute) a test's download overlapped; the Gbit/s it added to that minute.
_MINUTES = f"""
SELECT server_id, minute, count() AS tests,
       sum(download_mbps * greatest(0., least(dl_end, toFloat64(minute * 60 + 60))
                                        - greatest(dl_start, toFloat64(minute * 60))))
         / 60. / 1000. AS load_gbps
FROM (
    SELECT server_id, download_mbps,
           toUInt32(started_at) + {LATENCY_PHASE_S!r} AS dl_start,
           toUInt32(started_at) + {LATENCY_PHASE_S!r} + duration_s AS dl_end,
           intDiv(toUInt32(started_at), 60) AS first_minute,
           arrayJoin(arrayMap(i -> first_minute + i, range(toUInt32(
               intDiv(toUInt32(started_at) + toUInt32(ceil({LATENCY_PHASE_S!r} + duration_s)), 60)
               - first_minute + 1)))) AS minute
    FROM {{db}}.measurements FINAL
    WHERE {_WHERE} AND valid = 1
)
GROUP BY server_id, minute
"""

_PEAKS = f"""
SELECT server_id, max(tests) AS peak_tests_per_minute, max(load_gbps) AS peak_load_gbps,
       countIf(capacity > 0 AND load_gbps >= capacity * {{share}}) AS saturated_minutes,
       sumIf(tests, capacity > 0 AND load_gbps >= capacity * {{share}}) AS tests_in_saturated_minutes
FROM (
    SELECT *, transform(server_id, array{{ids}}, array{{capacities}}, 0.) AS capacity FROM ({_MINUTES})
)
GROUP BY server_id ORDER BY server_id
"""


class _Peaks(NamedTuple):
    """A row of _PEAKS (its aliases, in order)."""

    server_id: str
    peak_tests_per_minute: int
    peak_load_gbps: float
    saturated_minutes: int
    tests_in_saturated_minutes: int


@dataclass
class ServerHealth:
    """One server's month. Figures are None where no test gave them."""

    server_id: str
    tests: int
    valid_tests: int
    invalid_tests: int
    invalid_share: float
    invalid_reasons: list[tuple[str, int]] = field(default_factory=list)
    download_median_mbps: float | None = None
    tcp_min_rtt_median_ms: float | None = None
    tcp_retrans_median: float | None = None
    peak_tests_per_minute: int = 0
    peak_load_gbps: float = 0.0
    capacity_gbps: float | None = None
    saturated_minutes: int = 0
    tests_in_saturated_minutes: int = 0  # test-minutes: a test spanning two saturated minutes counts twice

    @property
    def saturated(self) -> bool:
        return self.saturated_minutes > 0

    def as_row(self) -> dict[str, Any]:
        """A flat row for CSV/JSON (reasons as 'reason: n; …')."""
        row = {k: v for k, v in self.__dict__.items() if k != "invalid_reasons"}
        row["invalid_reasons"] = "; ".join(f"{r}: {n}" for r, n in self.invalid_reasons)
        row["saturated"] = self.saturated
        return row


def _params(
    year: int, month: int, include_simulated: bool, capacity_gbps: Mapping[str, float], share: float
) -> dict[str, Any]:
    start, end = month_bounds(year, month)
    ids = sorted(capacity_gbps) or [""]
    return {
        "start": start,
        "end": end,
        "include_simulated": int(include_simulated),
        "share": float(share),
        "ids": ids,
        "capacities": [float(capacity_gbps.get(i, 0.0)) for i in ids],
    }


def server_health(
    store: Store,
    year: int,
    month: int,
    *,
    include_simulated: bool = False,
    capacity_gbps: Mapping[str, float] | None = None,
    saturation_share: float = SATURATION_SHARE,
    top_reasons: int = 3,
) -> list[ServerHealth]:
    """Health of every server that stored a result in the month, ordered by server_id."""
    capacity = dict(capacity_gbps or {})
    params = _params(year, month, include_simulated, capacity, saturation_share)
    out: dict[str, ServerHealth] = {}
    for t in map(_Totals._make, store.query(_TOTALS, params)):
        tests, valid = int(t.tests), int(t.valid_tests)
        out[t.server_id] = ServerHealth(
            server_id=t.server_id,
            tests=tests,
            valid_tests=valid,
            invalid_tests=tests - valid,
            invalid_share=(tests - valid) / tests if tests else 0.0,
            download_median_mbps=float(t.download_median_mbps) if valid else None,
            tcp_min_rtt_median_ms=float(t.tcp_min_rtt_median_ms) if t.with_rtt else None,
            tcp_retrans_median=float(t.retrans_median) if t.with_retrans else None,
            capacity_gbps=capacity.get(t.server_id),
        )
    for r in map(_Reason._make, store.query(_REASONS, params)):
        if r.server_id in out and len(out[r.server_id].invalid_reasons) < top_reasons:
            out[r.server_id].invalid_reasons.append((r.reason, int(r.n)))
    for p in map(_Peaks._make, store.query(_PEAKS, params)):
        if p.server_id in out:
            h = out[p.server_id]
            h.peak_tests_per_minute, h.peak_load_gbps = int(p.peak_tests_per_minute), round(float(p.peak_load_gbps), 3)
            h.saturated_minutes = int(p.saturated_minutes)
            h.tests_in_saturated_minutes = int(p.tests_in_saturated_minutes)
    return [out[k] for k in sorted(out)]


def saturated_minutes(
    store: Store,
    year: int,
    month: int,
    capacity_gbps: Mapping[str, float],
    *,
    include_simulated: bool = False,
    saturation_share: float = SATURATION_SHARE,
) -> list[tuple[str, int, float]]:
    """(server_id, minute start as Unix seconds, load Gbit/s) of every saturated minute."""
    if not capacity_gbps:
        return []
    params = _params(year, month, include_simulated, capacity_gbps, saturation_share)
    rows = store.query(
        f"SELECT server_id, minute * 60, load_gbps FROM ({_MINUTES}) "
        "WHERE load_gbps >= transform(server_id, array{ids}, array{capacities}, 0.) * {share} "
        "AND transform(server_id, array{ids}, array{capacities}, 0.) > 0 ORDER BY server_id, minute",
        params,
    )
    return [(str(s), int(m), float(g)) for s, m, g in rows]
