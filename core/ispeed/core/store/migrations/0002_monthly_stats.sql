-- Monthly statistics of methodology v1 (written by `ispeed aggregate`), one row per cell.
-- A month is replaced atomically: rows go to monthly_stats_staging first, then
-- ALTER TABLE monthly_stats REPLACE PARTITION '<month>' FROM monthly_stats_staging.
-- rank 0 = not ranked (suppressed cell); NULL figures = suppressed or not measurable.
CREATE TABLE IF NOT EXISTS {db}.monthly_stats (
    month String,
    network_type String,
    level String,
    province_code String,
    commune_code String,
    provider String,
    tests UInt64,
    samples UInt64,
    devices UInt64,
    download_median_mbps Nullable(Float64),
    download_ci_low_mbps Nullable(Float64),
    download_ci_high_mbps Nullable(Float64),
    upload_median_mbps Nullable(Float64),
    latency_median_ms Nullable(Float64),
    jitter_median_ms Nullable(Float64),
    rank UInt32,
    published UInt8,
    methodology_version String,
    min_samples UInt32,
    ci_level Float64,
    include_simulated UInt8,
    computed_at DateTime('UTC')
) ENGINE = MergeTree
PARTITION BY month
ORDER BY (network_type, level, province_code, commune_code, provider);

CREATE TABLE IF NOT EXISTS {db}.monthly_stats_staging (
    month String,
    network_type String,
    level String,
    province_code String,
    commune_code String,
    provider String,
    tests UInt64,
    samples UInt64,
    devices UInt64,
    download_median_mbps Nullable(Float64),
    download_ci_low_mbps Nullable(Float64),
    download_ci_high_mbps Nullable(Float64),
    upload_median_mbps Nullable(Float64),
    latency_median_ms Nullable(Float64),
    jitter_median_ms Nullable(Float64),
    rank UInt32,
    published UInt8,
    methodology_version String,
    min_samples UInt32,
    ci_level Float64,
    include_simulated UInt8,
    computed_at DateTime('UTC')
) ENGINE = MergeTree
PARTITION BY month
ORDER BY (network_type, level, province_code, commune_code, provider);
