"""Entry point of the `ispeed` command: parse, configure logging, dispatch, report errors.

Each component module in `COMMAND_MODULES` has `register(subparsers)`; those modules stay light
(argparse and core only) and import their heavy parts inside the command functions, so
`ispeed test` never loads pandas, scipy, chDB or clickhouse-driver.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from ispeed.cli import extras, jobs
from ispeed.core import redact
from ispeed.core.errors import IspeedError

COMMAND_MODULES = (
    "ispeed.server.cli",
    "ispeed.server.cli_isp",
    "ispeed.client.cli",
    "ispeed.aggregator.cli_export",
    "ispeed.aggregator.cli",
    "ispeed.publisher.cli",
    "ispeed.publisher.cli_report",
    "ispeed.cli.demo_cli",
    "ispeed.admin_geo.cli",
)


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line naming the command and pointing at --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ispeed", description="ispeed: national Internet speed measurement platform")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging; tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    # the composition root wires what components may not import themselves
    sub.choices["serve"].set_defaults(publish_job=jobs.publish_site)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    redact.install(*logging.getLogger().handlers)  # no raw client IP in any log line
    if args.verbose < 2:  # WeasyPrint logs every layout step at INFO: only -vv shows them
        logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    missing = extras.missing_extra_message(args.command)
    if missing:  # a base install (`pip install ispeed`) holds the client and the agent only
        sys.stderr.write(missing + "\n")
        return 2
    try:
        return int(args.func(args) or 0)
    except IspeedError as exc:
        if args.verbose:
            logging.getLogger("ispeed").exception("failed")
        sys.stderr.write(f"ispeed {args.command}: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(f"ispeed {args.command}: interrupted\n")
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
