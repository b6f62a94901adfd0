"""Vietnamese Internet providers (canonical name, short name, ASNs, kinds) from the editable providers.csv."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache

from ispeed.admin_geo.names import fold
from ispeed.admin_geo.units import read_data_text


@dataclass(frozen=True, slots=True)
class Provider:
    """One provider; `name` is the canonical spelling stored with every result."""

    name: str
    short_name: str
    asns: tuple[int, ...]
    kinds: tuple[str, ...]  # "fixed", "mobile"
    aliases: tuple[str, ...]
    note: str


@lru_cache(maxsize=1)
def providers() -> tuple[Provider, ...]:
    """The provider table, in file order (operators edit data/providers.csv)."""
    out = []
    for r in csv.DictReader(read_data_text("providers.csv").splitlines()):
        out.append(
            Provider(
                name=r["name"],
                short_name=r["short_name"],
                asns=tuple(int(a) for a in r["asns"].split()),
                kinds=tuple(r["kinds"].split()),
                aliases=tuple(a.strip() for a in r["aliases"].split(";") if a.strip()),
                note=r["note"],
            )
        )
    return tuple(out)


@lru_cache(maxsize=1)
def _by_asn() -> dict[int, Provider]:
    return {asn: p for p in providers() for asn in p.asns}


@lru_cache(maxsize=1)
def _by_name() -> dict[str, Provider]:
    index: dict[str, Provider] = {}
    for p in providers():
        for text in (p.name, p.short_name, *p.aliases):
            index.setdefault(fold(text), p)
    return index


def provider_for_asn(asn: int | None) -> Provider | None:
    """The provider announcing this AS number, or None when it is not in the table."""
    return None if asn is None else _by_asn().get(asn)


def canonical_provider(name: str | None) -> Provider | None:
    """'vinaphone', 'FPT', 'Viettel Group' -> the table's provider; None when unknown."""
    return None if not name else _by_name().get(fold(name))
