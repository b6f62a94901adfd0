"""The result schema: one `Measurement` per test, mirrored column for column by the DDL.

`tests/test_store.py::test_schema_dataclass_matches_ddl` checks these fields (names, order,
ClickHouse types) against the `measurements` table that the migrations create, on both store
backends.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from ispeed.core.method import METHOD_VERSION

NETWORK_TYPES = ("fixed", "mobile", "5g")
LOCATION_SOURCES = ("gps", "ip", "none")
NETWORK_TYPE_SOURCES = ("declared", "device", "ip", "none")
DEVICE_SOURCES = ("issued", "ip")


def _col(ch_type: str, default: Any = dataclasses.MISSING) -> Any:
    return field(default=default, metadata={"ch": ch_type})


@dataclass(frozen=True, slots=True)
class Measurement:
    """One stored test result (privacy-safe: no raw IP, hashed device, rounded GPS)."""

    test_id: str = _col("String")
    started_at: dt.datetime = _col("DateTime('UTC')")
    local_date: dt.date = _col("Date")
    network_type: str = _col("String")
    provider: str = _col("String", "")
    asn: int = _col("UInt32", 0)
    province_code: str = _col("String", "")
    commune_code: str = _col("String", "")
    location_source: str = _col("String", "none")
    lat: float | None = _col("Nullable(Float64)", None)
    lon: float | None = _col("Nullable(Float64)", None)
    device_hash: str = _col("String", "")
    ip_hash: str = _col("String", "")
    ip_network: str = _col("String", "")
    download_mbps: float = _col("Float64", 0.0)
    upload_mbps: float = _col("Float64", 0.0)
    latency_ms: float | None = _col("Nullable(Float64)", None)
    jitter_ms: float | None = _col("Nullable(Float64)", None)
    loaded_latency_down_ms: float | None = _col("Nullable(Float64)", None)
    loaded_latency_up_ms: float | None = _col("Nullable(Float64)", None)
    bytes_down: int = _col("UInt64", 0)
    bytes_up: int = _col("UInt64", 0)
    server_bytes_down: int = _col("UInt64", 0)
    server_bytes_up: int = _col("UInt64", 0)
    streams: int = _col("UInt16", 0)
    duration_s: float = _col("Float64", 0.0)
    tcp_min_rtt_ms: float | None = _col("Nullable(Float64)", None)
    tcp_retrans_ratio: float | None = _col("Nullable(Float64)", None)
    server_id: str = _col("String", "")
    client_kind: str = _col("String", "cli")
    client_version: str = _col("String", "")
    method_version: str = _col("String", METHOD_VERSION)
    simulated: bool = _col("UInt8", False)
    valid: bool = _col("UInt8", True)
    invalid_reason: str = _col("String", "")
    received_at: dt.datetime | None = _col("DateTime('UTC')", None)
    # migration 0004: the client's own figures (audit only) and the evidence behind every label
    client_download_mbps: float | None = _col("Nullable(Float64)", None)
    client_upload_mbps: float | None = _col("Nullable(Float64)", None)
    location_accuracy_m: float | None = _col("Nullable(Float64)", None)
    network_type_source: str = _col("String", "")  # declared / device / ip / none
    connection_type: str = _col("String", "")  # the IP's class: Cellular, Cable/DSL, ... ('' unknown)
    device_source: str = _col("String", "")  # issued (a server-signed id) / ip
    flags: str = _col("String", "")  # comma-separated: location_conflict, ...
    # migration 0007, method v2 (spec/method-v2.md): quality beyond speed
    ip_version: int = _col("UInt8", 0)  # 4 / 6; 0 unknown (before method v2)
    udp_status: str = _col("String", "")  # ok / blocked; '' not tried (method v1, ndt7)
    udp_probes: int = _col("UInt32", 0)  # UDP probes the client sent in the idle phase
    loss_down_pct: float | None = _col("Nullable(Float64)", None)  # idle phase, server -> client
    loss_up_pct: float | None = _col("Nullable(Float64)", None)  # idle phase, client -> server (server-counted)
    udp_rtt_ms: float | None = _col("Nullable(Float64)", None)  # idle UDP round trip, median
    udp_rtt_p90_ms: float | None = _col("Nullable(Float64)", None)  # idle UDP round trip, 90th percentile
    rpm_down: float | None = _col("Nullable(Float64)", None)  # responsiveness while downloading
    rpm_up: float | None = _col("Nullable(Float64)", None)  # responsiveness while uploading
    server_delay_p99_ms: float | None = _col("Nullable(Float64)", None)  # delay this server added to the probes
    quality_phases: str = _col("String", "")  # JSON: loss and delay per phase (idle, download, upload)


MEASUREMENT_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (f.name, f.metadata["ch"]) for f in dataclasses.fields(Measurement)
)


# UInt8 columns that hold a flag (0/1), as their bool defaults say; the others (ip_version) are numbers
FLAG_COLUMNS = frozenset(f.name for f in dataclasses.fields(Measurement) if isinstance(f.default, bool))


def to_columns(rows: list[Measurement]) -> dict[str, list[Any]]:
    """Columnar form of `rows` for a batched insert; timestamps become UTC epoch seconds."""
    out: dict[str, list[Any]] = {name: [] for name, _ in MEASUREMENT_COLUMNS}
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        for name, ch_type in MEASUREMENT_COLUMNS:
            value = getattr(row, name)
            if ch_type.startswith("DateTime"):
                value = int((value or now).timestamp())
            elif name in FLAG_COLUMNS:
                value = int(bool(value))
            out[name].append(value)
    return out


def to_record(row: Measurement) -> dict[str, Any]:
    """JSON-safe dict of a measurement (timestamps as UTC epoch seconds, date as ISO text)."""
    out = dataclasses.asdict(row)
    for name in ("started_at", "received_at"):
        if out[name] is not None:
            out[name] = out[name].timestamp()
    out["local_date"] = row.local_date.isoformat()
    return out


def from_record(record: dict[str, Any]) -> Measurement:
    """Inverse of `to_record`; unknown keys are an error (a spool written by a newer version)."""
    data = dict(record)
    for name in ("started_at", "received_at"):
        if data.get(name) is not None:
            data[name] = dt.datetime.fromtimestamp(float(data[name]), dt.UTC)
    data["local_date"] = dt.date.fromisoformat(data["local_date"])
    return Measurement(**data)
