"""`ispeed demo`: the whole platform in one command (light at import: argparse and core only)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ispeed.core.settings import parse_min_samples


def cmd_demo(args: argparse.Namespace) -> int:
    from ispeed.cli.demo import DemoOptions, run_demo

    if not 0 <= args.port <= 65535:
        from ispeed.core.errors import ConfigError

        raise ConfigError("--port", args.port, "use a TCP port between 0 and 65535")
    options = DemoOptions(
        out_dir=Path(args.out),
        workdir=Path(args.workdir),
        host=args.host,
        port=args.port,
        serve=not args.no_serve,
        tests=args.tests,
        loopback_tests=args.loopback_tests,
        history_months=args.history_months,
        min_samples=parse_min_samples(args.min_samples),
    )
    return run_demo(options)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser(
        "demo",
        help="the whole platform on an embedded demo store, in one command",
        description="Start a test server, run real loopback tests, simulate a month of "
        "national results, publish the site and serve it (or exit with --no-serve).",
    )
    d.add_argument("--out", default="var/demo/site", help="site directory (default var/demo/site)")
    d.add_argument(
        "--workdir", default="var/demo", help="demo store, spool and geo database live here (default var/demo)"
    )
    d.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    d.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    d.add_argument("--no-serve", action="store_true", help="publish and exit instead of serving")
    d.add_argument(
        "--tests", type=int, default=400_000, help="simulated tests in the last complete month (default 400000)"
    )
    d.add_argument("--loopback-tests", type=int, default=3, help="real loopback tests with the client (default 3)")
    d.add_argument(
        "--history-months",
        type=int,
        default=5,
        help="earlier months simulated (smaller) for the trend charts (default 5)",
    )
    d.add_argument("--min-samples", default="300", help="samples a cell needs to be published (default 300)")
    d.set_defaults(func=cmd_demo)
