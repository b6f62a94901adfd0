"""`ispeed` subcommands of ispeed.aggregator (registered by ispeed.cli.main)."""

from __future__ import annotations

import argparse


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Nothing registered yet; see ispeed.cli.pending."""
