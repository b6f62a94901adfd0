"""Parse a store URL: `chdb:PATH` or `clickhouse://[user[:password]@]host[:port]/database[?opts]`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from ispeed.core.errors import ConfigError

DEFAULT_STORE_URL = "chdb:./var/ispeed"
_FIX = "use chdb:PATH or clickhouse://[user[:password]@]host[:port]/database"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
        return f"clickhouse://{auth}{self.host}:{self.port}/{self.database}"

    def option(self, name: str, default: str = "") -> str:
        return dict(self.options).get(name, default)


def parse_store_url(url: str, key: str = "--store") -> StoreURL:
    """Parse and validate; errors name the key, the bad value and the accepted forms."""
    if not url:
        raise ConfigError(key, url, _FIX)
    if url.startswith("chdb:"):
        path = url[len("chdb:"):]
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
    return StoreURL(
        scheme="clickhouse",
        host=parts.hostname,
        port=port,
        user=unquote(parts.username) if parts.username else "default",
        password=unquote(parts.password) if parts.password else "",
        database=database,
        options=tuple(parse_qsl(parts.query)),
    )
