-- Method v2's figures in the monthly statistics (issues #21, #22): quality medians, the IPv6
-- share, the peak hours' median download and its sample count, means, percentiles and speed
-- shares of published cells (stats.csv's QUALITY_COLUMNS and DISTRIBUTION_COLUMNS), and two
-- methodology columns: the peak hours ('19-22') and the 1 Gbit/s class's goodput threshold.
-- Months aggregated before read '' and NULL. Staging and live tables keep one structure:
-- REPLACE PARTITION needs it.
ALTER TABLE {db}.monthly_stats ADD COLUMN peak_hours String;
ALTER TABLE {db}.monthly_stats ADD COLUMN gigabit_threshold_mbps Nullable(Float64);
ALTER TABLE {db}.monthly_stats ADD COLUMN loss_down_pct_median Nullable(Float64);
ALTER TABLE {db}.monthly_stats ADD COLUMN loss_up_pct_median Nullable(Float64);
ALTER TABLE {db}.monthly_stats ADD COLUMN rtt_p90_ms_median Nullable(Float64);
ALTER TABLE {db}.monthly_stats ADD COLUMN rpm_down_median Nullable(Float64);
ALTER TABLE {db}.monthly_stats ADD COLUMN rpm_up_median Nullable(Float64);
ALTER TABLE {db}.monthly_stats ADD COLUMN ipv6_share Nullable(Float64);
ALTER TABLE {db}.monthly_stats ADD COLUMN peak_download_median_mbps Nullable(Float64);
ALTER TABLE {db}.monthly_stats ADD COLUMN peak_samples Nullable(UInt64);
ALTER TABLE {db}.monthly_stats ADD COLUMN download_mean_mbps Nullable(Float64);
ALTER TABLE {db}.monthly_stats ADD COLUMN upload_mean_mbps Nullable(Float64);
ALTER TABLE {db}.monthly_stats ADD COLUMN download_p10_mbps Nullable(Float64);
ALTER TABLE {db}.monthly_stats ADD COLUMN download_p90_mbps Nullable(Float64);
ALTER TABLE {db}.monthly_stats ADD COLUMN share_ge_100_mbps Nullable(Float64);
ALTER TABLE {db}.monthly_stats ADD COLUMN share_ge_1000_mbps Nullable(Float64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN peak_hours String;
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN gigabit_threshold_mbps Nullable(Float64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN loss_down_pct_median Nullable(Float64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN loss_up_pct_median Nullable(Float64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN rtt_p90_ms_median Nullable(Float64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN rpm_down_median Nullable(Float64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN rpm_up_median Nullable(Float64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN ipv6_share Nullable(Float64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN peak_download_median_mbps Nullable(Float64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN peak_samples Nullable(UInt64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN download_mean_mbps Nullable(Float64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN upload_mean_mbps Nullable(Float64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN download_p10_mbps Nullable(Float64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN download_p90_mbps Nullable(Float64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN share_ge_100_mbps Nullable(Float64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN share_ge_1000_mbps Nullable(Float64);
