-- Method v1 §4 and the evidence rules (spec/evidence.md): the published figures are the server's
-- own; the client's own figures are kept beside them for audit, and every label says what it
-- rests on. Rows stored before this migration read the defaults: client figures NULL, sources ''.
-- One column per statement: the cluster store applies each to the local and Distributed tables.
ALTER TABLE {db}.measurements ADD COLUMN client_download_mbps Nullable(Float64);
ALTER TABLE {db}.measurements ADD COLUMN client_upload_mbps Nullable(Float64);
ALTER TABLE {db}.measurements ADD COLUMN location_accuracy_m Nullable(Float64);
ALTER TABLE {db}.measurements ADD COLUMN network_type_source String;
ALTER TABLE {db}.measurements ADD COLUMN connection_type String;
ALTER TABLE {db}.measurements ADD COLUMN device_source String;
ALTER TABLE {db}.measurements ADD COLUMN flags String;
