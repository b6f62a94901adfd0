-- ISP portal: access keys, their revocations, and the audit log of every portal request.
-- Append-only on purpose: ClickHouse 18.16 has no UPDATE, so a revocation is a row in
-- isp_key_events and a key's last use is the newest allowed row of isp_audit for it.
-- A key is stored as a salted HMAC-SHA256 of its secret (bound to its id and provider); the
-- secret itself is printed once by `ispeed isp-key create` and never stored.
-- expires_at 0 (1970-01-01) = never expires.
CREATE TABLE IF NOT EXISTS {db}.isp_keys (
    key_id String,
    provider String,
    salt String,
    key_hash String,
    created_at DateTime('UTC'),
    expires_at DateTime('UTC'),
    note String
) ENGINE = MergeTree
ORDER BY key_id;

-- event: 'revoked' (the only kind so far); the earliest revocation counts.
CREATE TABLE IF NOT EXISTS {db}.isp_key_events (
    key_id String,
    event String,
    at DateTime('UTC'),
    detail String
) ENGINE = MergeTree
ORDER BY (key_id, at);

-- One row per request under /isp/v1/, allowed or refused. client_network is the /24 (IPv4) or
-- /48 (IPv6), never the address; key_id is the id the request claimed ('' when it had none).
CREATE TABLE IF NOT EXISTS {db}.isp_audit (
    at DateTime('UTC'),
    key_id String,
    provider String,
    method String,
    path String,
    client_network String,
    outcome String,
    status UInt16
) ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (key_id, at);
