"""Subcommands whose components have not landed yet: they exist and say so (exit 2)."""

from __future__ import annotations

import argparse
import sys

# name -> (help, issue that brings it); a component that implements one removes it here.
PENDING: dict[str, tuple[str, str]] = {
}


def _not_yet(args: argparse.Namespace) -> int:
    _, issue = PENDING[args.command]
    sys.stderr.write(
        f"ispeed {args.command}: not available yet (arrives with the {issue} work); "
        "see README.md for what works today\n"
    )
    return 2


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    existing = set(sub.choices)
    for name, (help_text, _) in PENDING.items():
        if name in existing:
            continue
        p = sub.add_parser(name, help=f"{help_text} (not available yet)")
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=_not_yet)
