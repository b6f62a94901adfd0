"""`ispeed serve`: run a test server (measurement endpoints and result ingest)."""

from __future__ import annotations

import argparse
import logging
import os
import re
import secrets
import sys

from ispeed.core.errors import ConfigError
from ispeed.core.settings import add_setting

log = logging.getLogger("ispeed.server")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run a test server: measurement endpoints, result ingest, test page")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    p.add_argument(
        "--udp-port",
        default="",
        metavar="PORT|off",
        help="UDP port of the loss and delay probes (method v2; default: the TCP port's number; "
        "0 picks a free one; off: no UDP probing, clients report udp as not offered)",
    )
    p.add_argument(
        "--probes-inline",
        action="store_true",
        help="answer latency, RPM and UDP probes on the main event loop, where transfers delay them "
        "(default: on their own thread; this is the reference perf/bench_load.py compares with)",
    )
    add_setting(p, "store")
    add_setting(p, "secret")
    add_setting(p, "server-id")
    add_setting(p, "province")
    add_setting(p, "asn-db")
    add_setting(p, "city-db")
    add_setting(p, "connection-db")
    add_setting(p, "network-prefixes")
    p.add_argument(
        "--spool-dir",
        default=None,
        help="durable spool for results while the store is down (default ./var/spool/SERVER_ID; 'none' disables it)",
    )
    p.add_argument("--spool-max-mb", type=int, default=1024, help="spool size limit in MiB (default 1024)")
    p.add_argument(
        "--quarantine-dir",
        default="",
        help="where results the store refuses are kept (quarantine.jsonl; default: the spool dir; "
        "without a spool they are refused with 422 and only logged)",
    )
    p.add_argument(
        "--rate-per-network",
        type=float,
        default=120.0,
        help="new tests per minute from one /24 or /48 network (default 120; bursts of half that)",
    )
    p.add_argument(
        "--max-tests-per-network", type=int, default=32, help="concurrent tests from one network (default 32)"
    )
    p.add_argument("--max-tests", type=int, default=64, help="concurrent tests on this server (default 64)")
    p.add_argument("--max-duration", type=float, default=30.0, help="longest test phase in seconds (default 30)")
    p.add_argument("--max-streams", type=int, default=16, help="most parallel streams per test (default 16)")
    p.add_argument(
        "--fleet",
        default="",
        metavar="FILE",
        help="JSON or CSV file listing the fleet's servers (id, url, province[, capacity_gbps]); "
        "GET /api/v1/servers answers with it",
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="CIDR",
        help="reverse proxy whose X-Forwarded-For gives the client address (repeatable; "
        "default: none, the TCP peer is the client)",
    )
    p.add_argument(
        "--site-dir", default="var/site", help="published site served under /site/ (default var/site; 'none' disables)"
    )
    p.add_argument(
        "--publish-at",
        default=None,
        metavar="HH:MM",
        help="run `ispeed publish` into --site-dir every night at this Vietnam-local time "
        "(default 02:30 with an embedded store, off otherwise; 'off' disables)",
    )
    p.add_argument(
        "--device-ids-per-network",
        type=int,
        default=16,
        metavar="N",
        help="new device ids issued per /24 or /48 network and Vietnam-local day (default 16; see spec/identity.md)",
    )
    p.add_argument(
        "--device-ids-per-cellular-network",
        type=int,
        default=1024,
        metavar="N",
        help="the same for networks the connection database marks cellular, where carrier-grade "
        "NAT puts many phones behind one /24 (default 1024)",
    )
    p.add_argument(
        "--previous-secret",
        action="append",
        default=[],
        metavar="SECRET",
        help="while rotating --secret: device ids signed under this old secret are renewed "
        "without counting against the allowance (repeatable)",
    )
    p.set_defaults(func=run_serve)


def build_config(args: argparse.Namespace) -> object:
    from ispeed.core.store import parse_store_url
    from ispeed.server.config import ServerConfig
    from ispeed.server.fleet import load_fleet
    from ispeed.server.proxy import parse_trusted

    parse_store_url(args.store)  # fail fast, before anything starts
    if not 0 <= args.port <= 65535:
        raise ConfigError("--port", args.port, "use a TCP port between 0 and 65535")
    udp_port = _udp_port(args.udp_port)
    if args.rate_per_network <= 0 or args.max_tests_per_network < 1 or args.max_tests < 1:
        raise ConfigError(
            "--rate-per-network/--max-tests-per-network/--max-tests",
            (args.rate_per_network, args.max_tests_per_network, args.max_tests),
            "use positive values",
        )
    if args.max_duration <= 0 or args.max_streams < 1:
        raise ConfigError("--max-duration/--max-streams", (args.max_duration, args.max_streams), "use positive values")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", args.server_id or ""):
        raise ConfigError("--server-id", args.server_id, "use 1-64 letters, digits, '.', '_' or '-'")
    for flag, path in (
        ("--asn-db", args.asn_db),
        ("--city-db", args.city_db),
        ("--connection-db", args.connection_db),
        ("--network-prefixes", args.network_prefixes),
    ):
        if path and not os.path.isfile(path):
            raise ConfigError(flag, path, "no such file; build one with `ispeed geo build-mmdb`")
    _check_connection_sources(args.connection_db, args.network_prefixes)
    for flag, value in (
        ("--device-ids-per-network", args.device_ids_per_network),
        ("--device-ids-per-cellular-network", args.device_ids_per_cellular_network),
    ):
        if value < 0:
            raise ConfigError(flag, value, "use a number of ids per network and day, 0 or more (0 issues none)")
    for old in args.previous_secret:
        if len(old) < 16:
            raise ConfigError("--previous-secret", "***", "use the old --secret value (at least 16 characters)")
    secret = args.secret
    if not secret:
        secret = secrets.token_hex(32)
        sys.stderr.write(
            "ispeed serve: warning: no --secret / ISPEED_SECRET set; using a random one for this run "
            "(device and IP hashes will not match across restarts; set a secret in production)\n"
        )
    elif len(secret) < 16:
        raise ConfigError("--secret", "***", "use at least 16 characters (e.g. `openssl rand -hex 32`)")
    return ServerConfig(
        host=args.host,
        port=args.port,
        udp=udp_port != "off",
        udp_port=udp_port if isinstance(udp_port, int) else None,
        probe_thread=not args.probes_inline,
        store_url=args.store,
        server_id=args.server_id,
        province_code=args.province,
        secret=secret.encode(),
        max_duration_s=args.max_duration,
        max_streams=args.max_streams,
        asn_db=args.asn_db,
        city_db=args.city_db,
        connection_db=args.connection_db,
        network_prefixes=args.network_prefixes,
        spool_dir="" if args.spool_dir == "none" else (args.spool_dir or os.path.join("var", "spool", args.server_id)),
        spool_max_bytes=args.spool_max_mb << 20,
        quarantine_dir=args.quarantine_dir,
        tests_per_min_per_network=args.rate_per_network,
        results_per_min_per_network=2 * args.rate_per_network,
        max_tests_per_network=args.max_tests_per_network,
        max_running_tests=args.max_tests,
        fleet=load_fleet(args.fleet) if args.fleet else (),
        trusted_proxies=parse_trusted(args.trusted_proxy),
        site_dir="" if args.site_dir == "none" else args.site_dir,
        publish_at=_publish_at(args),
        device_ids_per_network=args.device_ids_per_network,
        device_ids_per_cellular_network=args.device_ids_per_cellular_network,
        device_id_previous_secrets=tuple(old.encode() for old in args.previous_secret),
    )


def _udp_port(text: str) -> int | str | None:
    """--udp-port: None (the TCP port's number), a port number, or 'off'."""
    text = (text or "").strip().lower()
    if text in ("", "same"):
        return None
    if text == "off":
        return "off"
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ConfigError("--udp-port", text, "use a UDP port between 0 and 65535, or off")
    return int(text)


def _check_connection_sources(connection_db: str, network_prefixes: str) -> None:
    """Open the connection-type database and read every row of the prefix file now: a bad file is one
    line at startup, not an error on every result."""
    if not connection_db and not network_prefixes:
        return
    from ispeed.admin_geo.connection import ConnectionClassifier, read_network_prefixes
    from ispeed.core.errors import ValidationError

    if network_prefixes:
        try:
            read_network_prefixes(network_prefixes)
        except ValidationError as exc:
            raise ConfigError("--network-prefixes", network_prefixes, exc.reason) from exc
    if connection_db:
        ConnectionClassifier(connection_db).close()  # ConfigError naming --connection-db if it is not one


def _publish_at(args: argparse.Namespace) -> str:
    from ispeed.server.site_serving import parse_publish_at

    text = args.publish_at if args.publish_at is not None else ("02:30" if args.store.startswith("chdb:") else "off")
    parse_publish_at(text)  # fail fast on a bad value
    return "" if text == "off" or args.site_dir == "none" else text


def run_serve(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    import uvloop

    from ispeed.server.app import serve
    from ispeed.server.config import ServerConfig

    config = build_config(args)
    assert isinstance(config, ServerConfig)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def ready(url: str) -> None:
            sys.stderr.write(
                f"ispeed serve: listening on {url} (server {config.server_id}, store {args.store}); Ctrl-C to stop\n"
            )
            sys.stderr.flush()

        # the nightly publish job comes from the entry point (`ispeed.cli.main`): the server does
        # not import the publisher
        await serve(config, ready=ready, stop=stop, publish_job=getattr(args, "publish_job", None))

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
    return 0
