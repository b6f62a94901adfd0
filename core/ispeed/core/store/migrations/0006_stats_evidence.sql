-- The evidence shares of a published cell (stats.csv columns after the methodology columns;
-- spec/evidence.md). Staging and live tables keep one structure: REPLACE PARTITION needs it.
ALTER TABLE {db}.monthly_stats ADD COLUMN place_gps_share Nullable(Float64);
ALTER TABLE {db}.monthly_stats ADD COLUMN place_ip_share Nullable(Float64);
ALTER TABLE {db}.monthly_stats ADD COLUMN network_type_ip_share Nullable(Float64);
ALTER TABLE {db}.monthly_stats ADD COLUMN network_type_device_share Nullable(Float64);
ALTER TABLE {db}.monthly_stats ADD COLUMN network_type_declared_share Nullable(Float64);
ALTER TABLE {db}.monthly_stats ADD COLUMN device_issued_share Nullable(Float64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN place_gps_share Nullable(Float64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN place_ip_share Nullable(Float64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN network_type_ip_share Nullable(Float64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN network_type_device_share Nullable(Float64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN network_type_declared_share Nullable(Float64);
ALTER TABLE {db}.monthly_stats_staging ADD COLUMN device_issued_share Nullable(Float64);
