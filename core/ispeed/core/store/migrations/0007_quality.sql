-- Method v2 (spec/method-v2.md): quality beyond speed. UDP loss and delay (idle phase; the
-- per-phase figures under load in quality_phases, JSON), responsiveness (RPM) per direction, the
-- IP version a test ran over, and the delay the server itself added to the test's probes.
-- Rows stored before this migration read the defaults: NULL figures, ip_version 0 (unknown),
-- udp_status '' (not tried: method v1).
ALTER TABLE {db}.measurements ADD COLUMN ip_version UInt8;
ALTER TABLE {db}.measurements ADD COLUMN udp_status String;
ALTER TABLE {db}.measurements ADD COLUMN udp_probes UInt32;
ALTER TABLE {db}.measurements ADD COLUMN loss_down_pct Nullable(Float64);
ALTER TABLE {db}.measurements ADD COLUMN loss_up_pct Nullable(Float64);
ALTER TABLE {db}.measurements ADD COLUMN udp_rtt_ms Nullable(Float64);
ALTER TABLE {db}.measurements ADD COLUMN udp_rtt_p90_ms Nullable(Float64);
ALTER TABLE {db}.measurements ADD COLUMN rpm_down Nullable(Float64);
ALTER TABLE {db}.measurements ADD COLUMN rpm_up Nullable(Float64);
ALTER TABLE {db}.measurements ADD COLUMN server_delay_p99_ms Nullable(Float64);
ALTER TABLE {db}.measurements ADD COLUMN quality_phases String;
