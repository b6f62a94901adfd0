"""IP address -> connection type (Cellular, Cable/DSL, …) from a MaxMind Connection-Type database
and an operator's prefix file of fixed and mobile pools.

Two sources, both optional:
- a database in MaxMind's GeoIP2-Connection-Type shape, records `{"connection_type": "Cellular"}`
  (values Cellular, Cable/DSL, Corporate, Satellite and, in old files, Dialup); GeoIP2-Enterprise
  records (`traits.connection_type`) are read too;
- a CSV `prefix,network` (network `fixed` or `mobile`): the operator's own pools. It wins over the
  database wherever both know the address (the operator knows its own pools). Its words are stored
  in the database's vocabulary, so one column holds one vocabulary: `mobile` -> `Cellular`,
  `fixed` -> `Cable/DSL` (MaxMind's name for every fixed broadband line, fibre included); the
  `source` field says which of the two answered.

Family: Cellular -> `mobile`; Cable/DSL, Corporate, Satellite, Dialup -> `fixed`; anything else
(unknown, or a value this code does not know) -> ``.
"""

from __future__ import annotations

import csv
import ipaddress
from pathlib import Path
from typing import Any, NamedTuple

from ispeed.core.errors import ConfigError, ValidationError

CONNECTION_TYPES = ("Cellular", "Cable/DSL", "Corporate", "Satellite", "Dialup")
_FAMILY = {"Cellular": "mobile", "Cable/DSL": "fixed", "Corporate": "fixed", "Satellite": "fixed", "Dialup": "fixed"}
_CANONICAL = {t.lower(): t for t in CONNECTION_TYPES}
NETWORK_WORDS = {"fixed": "Cable/DSL", "mobile": "Cellular"}  # prefix file word -> connection type
NETWORK_PREFIX_COLUMNS = ("prefix", "network")
CACHE_MAX_ENTRIES = 100_000

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConnectionClass(NamedTuple):
    """How an address connects; every field is '' when unknown."""

    connection_type: str = ""  # Cellular, Cable/DSL, Corporate, Satellite, Dialup (or a newer database value)
    family: str = ""  # mobile / fixed
    source: str = ""  # prefixes / connection-db


UNKNOWN = ConnectionClass()


def family_of(connection_type: str | None) -> str:
    """'Cellular' -> 'mobile'; 'Cable/DSL', 'Corporate', 'Satellite', 'Dialup' -> 'fixed'; else ''."""
    return _FAMILY.get(connection_type or "", "")


def canonical_connection_type(text: str) -> str | None:
    """'cable/dsl' -> 'Cable/DSL'; None for a value that is not one of CONNECTION_TYPES."""
    return _CANONICAL.get(text.strip().lower())


def parse_address(ip: str) -> IPAddress:
    """The address; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) becomes IPv4. ValidationError if malformed."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except (ValueError, AttributeError):
        raise ValidationError("ip", f"{ip!r} is not an IPv4 or IPv6 address") from None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _unmapped(net: IPNetwork) -> IPNetwork:
    """::ffff:10.0.0.0/104 -> 10.0.0.0/8 (a mapped prefix matches the IPv4 addresses it maps)."""
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96 and net.network_address.ipv4_mapped:
        return ipaddress.IPv4Network((net.network_address.ipv4_mapped, net.prefixlen - 96))
    return net


class NetworkPrefixes:
    """An operator's fixed/mobile pools with longest-prefix match over IPv4 and IPv6."""

    def __init__(self, pools: dict[IPNetwork, str]) -> None:
        # per IP version: prefix length -> {network address as int: word}, lengths longest first
        self._tables: dict[int, list[tuple[int, int, dict[int, str]]]] = {4: [], 6: []}
        grouped: dict[tuple[int, int], dict[int, str]] = {}
        for net, word in pools.items():
            grouped.setdefault((net.version, net.prefixlen), {})[int(net.network_address)] = word
        for (version, length), table in sorted(grouped.items(), key=lambda kv: -kv[0][1]):
            bits = 32 if version == 4 else 128
            self._tables[version].append((length, bits - length, table))
        self._count = len(pools)

    def __len__(self) -> int:
        return self._count

    def lookup(self, addr: IPAddress) -> str | None:
        """'fixed' or 'mobile' for the longest prefix holding addr, None outside every pool."""
        value = int(addr)
        for _length, shift, table in self._tables[addr.version]:
            word = table.get(value >> shift << shift)
            if word is not None:
                return word
        return None


def read_network_prefixes(path: str | Path) -> NetworkPrefixes:
    """The pools of a `prefix,network` CSV; every row is checked, errors name file:line and column."""
    pools: dict[IPNetwork, str] = {}
    first_line: dict[IPNetwork, int] = {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in NETWORK_PREFIX_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValidationError(
                    "network_prefixes",
                    f"{path}:1: missing column(s) {', '.join(missing)}; "
                    f"the header must be {','.join(NETWORK_PREFIX_COLUMNS)}",
                )
            for line, row in enumerate(reader, start=2):
                where = f"{path}:{line}"
                text = (row.get("prefix") or "").strip()
                try:
                    net = _unmapped(ipaddress.ip_network(text, strict=True))
                except ValueError as exc:
                    raise ValidationError(
                        "network_prefixes", f"{where}: column prefix: {text!r} is not a network prefix ({exc})"
                    ) from None
                word = (row.get("network") or "").strip().lower()
                if word not in NETWORK_WORDS:
                    raise ValidationError(
                        "network_prefixes",
                        f"{where}: column network: {row.get('network')!r} is neither 'fixed' nor 'mobile'",
                    )
                if net in pools:
                    raise ValidationError(
                        "network_prefixes", f"{where}: column prefix: {net} is already listed on line {first_line[net]}"
                    )
                pools[net], first_line[net] = word, line
    except OSError as exc:
        raise ValidationError("network_prefixes", f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ValidationError("network_prefixes", f"{path}: not UTF-8 text ({exc.reason})") from exc
    return NetworkPrefixes(pools)


def open_connection_db(path: str | Path) -> Any:
    """A maxminddb reader of a connection-type database; ConfigError if it is not one."""
    import maxminddb  # C extension: only when a database is configured

    try:
        reader = maxminddb.open_database(str(path))
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:  # the last is a RuntimeError
        raise ConfigError("--connection-db", str(path), f"cannot open a MaxMind DB file ({exc})") from exc
    kind = str(reader.metadata().database_type)
    if "Connection-Type" not in kind and "Enterprise" not in kind:
        reader.close()
        raise ConfigError(
            "--connection-db",
            str(path),
            f"this is a {kind!r} database, not a connection-type one "
            "(GeoIP2-Connection-Type; build one with `ispeed geo build-mmdb --connection-out`)",
        )
    return reader


def _record_type(record: Any) -> str:
    if not isinstance(record, dict):
        return ""
    value = record.get("connection_type") or (record.get("traits") or {}).get("connection_type")
    return value if isinstance(value, str) else ""


class ConnectionClassifier:
    """Connection type of addresses from a prefix file and/or a connection-type database (either may be absent)."""

    def __init__(
        self, connection_db: str | Path | None = None, network_prefixes: str | Path | NetworkPrefixes | None = None
    ) -> None:
        self._db = open_connection_db(connection_db) if connection_db else None
        if network_prefixes is None or isinstance(network_prefixes, NetworkPrefixes):
            self._prefixes = network_prefixes
        else:
            self._prefixes = read_network_prefixes(network_prefixes)
        self._cache: dict[str, ConnectionClass] = {}

    @property
    def configured(self) -> bool:
        return self._db is not None or self._prefixes is not None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def classify(self, ip: str) -> ConnectionClass:
        """What the sources say about one address; ValidationError for a malformed address."""
        try:
            return self._cache[ip]
        except KeyError:
            pass
        addr = parse_address(ip)
        found = UNKNOWN
        word = self._prefixes.lookup(addr) if self._prefixes is not None else None
        if word is not None:
            kind = NETWORK_WORDS[word]
            found = ConnectionClass(kind, family_of(kind), "prefixes")
        elif self._db is not None:
            try:
                kind = _record_type(self._db.get(str(addr)))
            except ValueError:  # an IPv6 address in an IPv4-only database
                kind = ""
            if kind:
                kind = canonical_connection_type(kind) or kind
                found = ConnectionClass(kind, family_of(kind), "connection-db")
        if len(self._cache) >= CACHE_MAX_ENTRIES:
            self._cache.clear()
        self._cache[ip] = found
        return found
