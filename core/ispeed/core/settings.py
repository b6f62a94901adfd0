"""One table of settings (flag, environment variable, default, help) for the CLI and the docs.

Only the entry point reads the environment, through `add_setting`; components receive
frozen config objects. `tests/test_settings.py` fails if a setting is missing from the README.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from ispeed.core.store.url import DEFAULT_STORE_URL


@dataclass(frozen=True)
class Setting:
    name: str  # flag without dashes
    env: str
    default: str | None
    help: str


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "store",
            "ISPEED_STORE",
            DEFAULT_STORE_URL,
            "where results live: chdb:PATH (embedded) or clickhouse://[user[:password]@]host[:port]/database",
        ),
        Setting(
            "secret",
            "ISPEED_SECRET",
            None,
            "server secret for test tokens and IP/device hashes (no default: required by `serve` "
            "outside the demo; at least 16 characters)",
        ),
        Setting("server-id", "ISPEED_SERVER_ID", "local-1", "this test server's id, stored with every result"),
        Setting("province", "ISPEED_PROVINCE", "", "province code of this test server's location"),
        Setting("asn-db", "ISPEED_ASN_DB", "", "MaxMind-format database mapping IP to ASN/ISP"),
        Setting("city-db", "ISPEED_CITY_DB", "", "MaxMind-format database mapping IP to province"),
        Setting(
            "connection-db",
            "ISPEED_CONNECTION_DB",
            "",
            "MaxMind GeoIP2-Connection-Type database mapping IP to Cellular, Cable/DSL, Corporate or Satellite",
        ),
        Setting(
            "network-prefixes",
            "ISPEED_NETWORK_PREFIXES",
            "",
            "operator's CSV of address pools (prefix,network with network fixed or mobile); wins over --connection-db",
        ),
    )
}


def add_setting(parser: argparse.ArgumentParser, name: str, **kwargs: object) -> None:
    """Add `--NAME` with its default taken from the environment variable, then the table."""
    s = SETTINGS[name]
    default = os.environ.get(s.env, s.default)
    parser.add_argument(f"--{s.name}", default=default, help=f"{s.help} (env {s.env})", **kwargs)  # type: ignore[arg-type]


def parse_min_samples(text: str) -> int:
    """`--min-samples TEXT`: a whole number of samples, at least 1; UsageError naming it otherwise."""
    from ispeed.core.errors import UsageError

    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--min-samples {text!r} is not a whole number") from None
    if value < 1:
        raise UsageError(f"--min-samples {value} must be at least 1")
    return value


def add_peak_hours(parser: argparse.ArgumentParser) -> None:
    """`--peak-hours FIRST-LAST` (`ispeed aggregate`, `ispeed publish`); parse it with parse_peak_hours."""
    from ispeed.core.stats import PEAK_HOURS

    parser.add_argument(
        "--peak-hours",
        default=f"{PEAK_HOURS[0]}-{PEAK_HOURS[1]}",
        metavar="FIRST-LAST",
        help="Vietnam local hours of the peak-hour download median, inclusive "
        f"(default {PEAK_HOURS[0]}-{PEAK_HOURS[1]}: {PEAK_HOURS[0]}:00-{PEAK_HOURS[1]}:59)",
    )


def parse_peak_hours(text: str) -> tuple[int, int]:
    """`--peak-hours FIRST-LAST`: Vietnam local hours 0-23, inclusive (`19-22` is 19:00-22:59;
    `22-1` wraps past midnight); UsageError naming it otherwise."""
    from ispeed.core.errors import UsageError

    parts = text.split("-")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise UsageError(f"--peak-hours {text!r} is not FIRST-LAST: give local hours, e.g. 19-22")
    first, last = (int(p) for p in parts)
    if not (0 <= first <= 23 and 0 <= last <= 23):
        raise UsageError(f"--peak-hours {text!r}: hours go from 0 to 23, e.g. 19-22")
    return first, last
