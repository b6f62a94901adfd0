"""Configuration of one test server, built at the entry point and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network

from ispeed.server.fleet import FleetServer


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    store_url: str = "chdb:./var/ispeed"
    server_id: str = "local-1"
    province_code: str = ""
    secret: bytes = field(default=b"", repr=False)
    # measurement limits
    max_streams: int = 16
    max_duration_s: float = 30.0
    default_duration_s: float = 10.0
    max_request_bytes: int = 8 << 30  # one download response / upload body
    max_bytes_per_test: int = 200 << 30  # all streams, both directions
    token_ttl_s: float = 600.0  # a result may be submitted until then
    max_running_tests: int = 64
    max_tests_per_network: int = 32  # concurrent tests from one /24 or /48
    tests_per_min_per_network: float = 120  # new tests per minute from one network (burst: half)
    results_per_min_per_network: float = 240
    keepalive_timeout_s: float = 15.0  # idle or trickling (slowloris) connections close after this
    shutdown_grace_s: float = 30.0  # on SIGTERM: running tests may finish within this
    # method v2's UDP probes (spec/method-v2.md): on the TCP port's number unless udp_port is given
    udp: bool = True
    udp_port: int | None = None
    # probes (WebSocket, RPM, UDP) answered on their own thread and loop (probe_runtime.py);
    # False answers them on the main loop, as before (the reference of perf/bench_load.py)
    probe_thread: bool = True
    # ingest
    ingest_batch_rows: int = 500
    ingest_batch_wait_s: float = 0.05
    max_result_body_bytes: int = 16 << 10
    body_timeout_s: float = 10.0  # a JSON body must arrive whole within this, else 408
    spool_dir: str = ""  # "" = no spool (results refused while the store is down)
    spool_max_bytes: int = 1 << 30
    quarantine_dir: str = ""  # results the store refused; "" = the spool dir (none without a spool)
    # optional geo databases (paths)
    asn_db: str = ""
    city_db: str = ""
    connection_db: str = ""  # MaxMind GeoIP2-Connection-Type (IP -> Cellular, Cable/DSL, …)
    network_prefixes: str = ""  # operator's CSV prefix,network (fixed/mobile); wins over connection_db
    peers: tuple[str, ...] = ()
    # scale-out: the fleet listed by /api/v1/servers (--fleet), proxies whose X-Forwarded-For is believed
    fleet: tuple[FleetServer, ...] = ()
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    # the published site: served under /site/ ("" = not served); nightly `publish` at HH:MM local ("" = off)
    site_dir: str = ""
    publish_at: str = ""
    # device identities (spec/identity.md): new signed ids per client network (/24, /48) and Vietnam-local day
    device_ids_per_network: int = 16
    device_ids_per_cellular_network: int = 1024
    device_id_previous_secrets: tuple[bytes, ...] = field(default=(), repr=False)  # ids renewed while rotating
