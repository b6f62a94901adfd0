"""The month's device-day download samples per commune × provider, read for the small-area estimates.

One query, both backends: the month's valid tests grouped once by (network type, province,
commune, provider, device, local date) — methodology v1's sample within a commune × provider
cell, its value the median of the day's downloads (replayed copies of a test count once) —
then gathered per cell as an array. On a 1 M-test month that is ~0.7 M device-days in ~30 k
cell rows (tests placed by IP alone have no commune: their cells carry an empty commune code and
feed the province-level priors only).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ispeed.aggregator.aggregate import month_query_params
from ispeed.aggregator.cells_sql import median_of_sorted, valid_tests
from ispeed.aggregator.methodology import Methodology
from ispeed.core.store import Store

SAMPLES_QUERY = f"""
SELECT network_type, province_code, commune_code, provider, count() AS samples, groupArray(sample) AS samples_mbps
FROM (
    SELECT network_type, province_code, commune_code, provider,
           arraySort(arrayMap(x -> x.2, groupUniqArray((test_id, download_mbps)))) AS v,
           {median_of_sorted("v", None)} AS sample
    FROM {{db}}.measurements
    WHERE {valid_tests("network_type IN {network_types}")}
    GROUP BY network_type, province_code, commune_code, provider,
             if(device_hash != '', device_hash, ip_hash), local_date
)
GROUP BY network_type, province_code, commune_code, provider
"""


class SampleRow(NamedTuple):
    """A row of SAMPLES_QUERY, in its column order."""

    network_type: str
    province_code: str
    commune_code: str
    provider: str
    samples: int
    samples_mbps: list[float]


def month_samples(store: Store, year: int, month: int, method: Methodology) -> pd.DataFrame:
    """The month's device-day samples, one row each: network_type, province_code, commune_code,
    provider, download_mbps (empty frame when the month has no valid test)."""
    params = {**month_query_params(year, month, method), "network_types": list(method.network_types)}
    rows = [SampleRow._make(r) for r in store.query(SAMPLES_QUERY, params)]
    return samples_frame(rows)


def samples_frame(rows: list[SampleRow]) -> pd.DataFrame:
    """SAMPLES_QUERY's rows as one row per sample."""
    counts = np.array([len(r.samples_mbps) for r in rows], dtype=np.int64)
    frame = pd.DataFrame(
        {
            name: np.repeat(np.array([getattr(r, name) for r in rows], dtype=object), counts)
            for name in ("network_type", "province_code", "commune_code", "provider")
        }
    )
    values = [v for r in rows for v in r.samples_mbps]
    frame["download_mbps"] = np.array(values, dtype=float)
    return frame
