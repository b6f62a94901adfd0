"""The open-data export contract: its columns, the SQL that reads each, and how a row is written.

One definition for `ispeed export` (the aggregator) and the ISP portal's tests.csv (the server).
Columns are only ever added, at the end, never renamed. No IP addresses: `device_hash` is
methodology v1's device (the keyed hash of a server-issued device id, else of the IP).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ispeed.core.timeutil import isoformat_utc

EXPORT_COLUMNS: tuple[str, ...] = (
    "test_id",
    "started_at",
    "local_date",
    "device_hash",
    "network_type",
    "provider",
    "asn",
    "province_code",
    "commune_code",
    "download_mbps",
    "upload_mbps",
    "latency_ms",
    "jitter_ms",
    "loaded_latency_down_ms",
    "loaded_latency_up_ms",
    "server_id",
    "client_kind",
    "simulated",
    "valid",
    # added with the evidence rules (spec/evidence.md): what each label rests on
    "location_source",
    "network_type_source",
    "connection_type",
    "device_source",
    "flags",
    # added with method v2 (spec/method-v2.md): quality beyond speed; empty for method v1 results
    "method_version",
    "ip_version",
    "loss_down_pct",
    "loss_up_pct",
    "udp_rtt_ms",
    "udp_rtt_p90_ms",
    "rpm_down",
    "rpm_up",
)
# columns read by an expression rather than as stored
_SELECT = {
    "device_hash": "if(device_hash != '', device_hash, ip_hash)",
    "started_at": "toUnixTimestamp(started_at)",  # formatted here: %M differs between versions
    "local_date": "toString(local_date)",
}
SELECT_LIST = ", ".join(_SELECT.get(c, c) for c in EXPORT_COLUMNS)
_STARTED_AT = EXPORT_COLUMNS.index("started_at")


def csv_cells(row: Sequence[Any]) -> list[Any]:
    """One store row (read with SELECT_LIST) as the export writes it: ISO 8601 UTC start, '' for
    missing values, floats as their shortest round-trip repr."""
    out: list[Any] = []
    for value in row:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append("")
        elif isinstance(value, float):
            out.append(repr(value))
        else:
            out.append(value)
    out[_STARTED_AT] = isoformat_utc(int(row[_STARTED_AT]))
    return out
