-- Individual test results, one row per test (test_id).
-- Same DDL for ClickHouse 18.16 (Debian) and chDB 26.x: no codecs, TTL, DateTime64 or
-- LowCardinality. Partitioned by the Vietnam-local month; ordered for the aggregator.
-- ReplacingMergeTree(received_at) is the safety net behind insert-time dedup by test_id:
-- a replayed row that slipped through collapses on merge (readers use FINAL).
CREATE TABLE IF NOT EXISTS {db}.measurements (
    test_id String,
    started_at DateTime('UTC'),
    local_date Date,
    network_type String,
    provider String,
    asn UInt32,
    province_code String,
    commune_code String,
    location_source String,
    lat Nullable(Float64),
    lon Nullable(Float64),
    device_hash String,
    ip_hash String,
    ip_network String,
    download_mbps Float64,
    upload_mbps Float64,
    latency_ms Nullable(Float64),
    jitter_ms Nullable(Float64),
    loaded_latency_down_ms Nullable(Float64),
    loaded_latency_up_ms Nullable(Float64),
    bytes_down UInt64,
    bytes_up UInt64,
    server_bytes_down UInt64,
    server_bytes_up UInt64,
    streams UInt16,
    duration_s Float64,
    tcp_min_rtt_ms Nullable(Float64),
    tcp_retrans_ratio Nullable(Float64),
    server_id String,
    client_kind String,
    client_version String,
    method_version String,
    simulated UInt8,
    valid UInt8,
    invalid_reason String,
    received_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(local_date)
ORDER BY (network_type, provider, province_code, commune_code, started_at, test_id);
