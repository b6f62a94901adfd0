"""Parse a store URL: `chdb:PATH` or `clickhouse://[user[:password]@]host[:port]/database[?opts]`.

Options: `cluster=NAME` (tables spread over that cluster, `ispeed.core.store.cluster`) and
`replicated=1` (its local tables are ReplicatedMergeTree).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from ispeed.core.errors import ConfigError

DEFAULT_STORE_URL = "chdb:./var/ispeed"
_FIX = "use chdb:PATH or clickhouse://[user[:password]@]host[:port]/database"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OPTIONS = ("cluster", "replicated")
_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL; `redacted` is safe to print (no password)."""

    scheme: str  # "chdb" or "clickhouse"
    path: str = ""
    host: str = ""
    port: int = 9000
    user: str = "default"
    password: str = field(default="", repr=False)
    database: str = "ispeed"
    options: tuple[tuple[str, str], ...] = ()

    @property
    def redacted(self) -> str:
        if self.scheme == "chdb":
            return f"chdb:{self.path}"
        auth = f"{self.user}:***@" if self.password else (f"{self.user}@" if self.user != "default" else "")
        query = f"?cluster={self.cluster}" if self.cluster else ""
        return f"clickhouse://{auth}{self.host}:{self.port}/{self.database}{query}"

    def option(self, name: str, default: str = "") -> str:
        return dict(self.options).get(name, default)

    @property
    def cluster(self) -> str:
        """`?cluster=NAME`: the cluster (of the servers' remote_servers) the tables are spread on."""
        return self.option("cluster")

    @property
    def replicated(self) -> bool:
        """`?replicated=1`: the cluster's local tables are ReplicatedMergeTree (needs ZooKeeper)."""
        return self.option("replicated") in _TRUE


def parse_store_url(url: str, key: str = "--store") -> StoreURL:
    """Parse and validate; errors name the key, the bad value and the accepted forms."""
    if not url:
        raise ConfigError(key, url, _FIX)
    if url.startswith("chdb:"):
        path = url[len("chdb:") :]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise ConfigError(key, url, "chdb: needs a directory, e.g. chdb:./var/ispeed")
        return StoreURL(scheme="chdb", path=path)
    parts = urlsplit(url)
    if parts.scheme != "clickhouse":
        raise ConfigError(key, url, f"unknown store scheme; {_FIX}")
    try:
        port = parts.port or 9000
    except ValueError as exc:
        raise ConfigError(key, url, f"the port is not a number; {_FIX}") from exc
    if not parts.hostname:
        raise ConfigError(key, url, f"no host; {_FIX}")
    database = parts.path.lstrip("/") or "ispeed"
    if not _IDENT.match(database):
        raise ConfigError(key, url, "the database name must be letters, digits and _")
    options = tuple(parse_qsl(parts.query))
    _check_options(key, url, dict(options))
    return StoreURL(
        scheme="clickhouse",
        host=parts.hostname,
        port=port,
        user=unquote(parts.username) if parts.username else "default",
        password=unquote(parts.password) if parts.password else "",
        database=database,
        options=options,
    )


def _check_options(key: str, url: str, options: dict[str, str]) -> None:
    for name, value in options.items():
        if name not in _OPTIONS:
            raise ConfigError(key, url, f"unknown option {name!r}; the options are {', '.join(_OPTIONS)}")
        if name == "cluster" and not _IDENT.match(value):
            raise ConfigError(
                key, url, "?cluster= needs the name of a cluster in the servers' remote_servers (letters, digits and _)"
            )
        if name == "replicated" and value not in _TRUE + _FALSE:
            raise ConfigError(key, url, "?replicated= takes 1 or 0")
    if options.get("replicated", "0") in _TRUE and not options.get("cluster"):
        raise ConfigError(key, url, "?replicated=1 needs ?cluster=NAME as well")
