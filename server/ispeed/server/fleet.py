"""The fleet of test servers, from a configuration file (`ispeed serve --fleet FILE`).

Every server of a deployment is given the same file, so any of them answers
`GET /api/v1/servers` with the whole fleet and clients pick the nearest (lowest latency).
The file is JSON — a list of objects, or `{"servers": [...]}` — or CSV with a header row;
fields: `id` (the server's `--server-id`), `url` (its public base URL), `province` (province
code of its location), and optionally `capacity_gbps` (what it can serve; the health report
uses it to mark saturation).

    [{"id": "hn-1", "url": "https://hn-1.speed.example.vn", "province": "01", "capacity_gbps": 20}]

    id,url,province,capacity_gbps
    hn-1,https://hn-1.speed.example.vn,01,20
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ispeed.core.errors import ConfigError

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_FIELDS = ("id", "url", "province", "capacity_gbps")


@dataclass(frozen=True)
class FleetServer:
    server_id: str
    url: str
    province_code: str = ""
    capacity_gbps: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "server_id": self.server_id,
            "url": self.url,
            "province_code": self.province_code,
            "capacity_gbps": self.capacity_gbps,
        }


def load_fleet(path: str | Path, flag: str = "--fleet") -> tuple[FleetServer, ...]:
    """Read and check a fleet file; errors name the file, the entry and the field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(flag, str(path), f"cannot read it ({exc.strerror}); give a JSON or CSV fleet file") from exc
    entries: Any
    if path.suffix.lower() == ".csv" or not text.lstrip().startswith(("[", "{")):
        entries = list(csv.DictReader(text.splitlines()))
    else:
        try:
            entries = json.loads(text)
        except ValueError as exc:
            raise ConfigError(flag, str(path), f"is not valid JSON ({exc})") from exc
        if isinstance(entries, dict):
            entries = entries.get("servers")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(flag, str(path), "lists no servers; expected a list of {id, url, province} entries")
    fleet = tuple(_entry(flag, path, i, e) for i, e in enumerate(entries, 1))
    ids = [s.server_id for s in fleet]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ConfigError(flag, str(path), f"names server id(s) {', '.join(duplicated)} more than once")
    return fleet


def _entry(flag: str, path: Path, n: int, entry: Any) -> FleetServer:
    where = f"{path} entry {n}"
    if not isinstance(entry, dict):
        raise ConfigError(flag, where, "must be an object with id, url and province")
    unknown = sorted(set(entry) - set(_FIELDS) - {"server_id", "province_code"})
    if unknown:
        raise ConfigError(flag, where, f"unknown field(s) {', '.join(map(str, unknown))}; fields: {', '.join(_FIELDS)}")
    server_id = str(entry.get("id") or entry.get("server_id") or "")
    if not _ID.fullmatch(server_id):
        raise ConfigError(flag, where, f"id {server_id!r} must be 1-64 letters, digits, '.', '_' or '-'")
    url = str(entry.get("url") or "").rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(flag, where, f"url {url!r} must be an http(s) base URL such as https://hn-1.example.vn")
    province = str(entry.get("province") or entry.get("province_code") or "")
    if province and not province.isdigit():
        raise ConfigError(flag, where, f"province {province!r} must be a province code (digits)")
    capacity: float | None = None
    raw = entry.get("capacity_gbps")
    if raw not in (None, ""):
        try:
            capacity = float(raw)
        except (TypeError, ValueError):
            capacity = -1.0
        if not capacity > 0:
            raise ConfigError(flag, where, f"capacity_gbps {raw!r} must be a positive number")
    return FleetServer(server_id, url, province, capacity)


def listed(fleet: tuple[FleetServer, ...], self_entry: FleetServer) -> list[dict[str, Any]]:
    """The fleet for `GET /api/v1/servers`; this server first if the file does not name it."""
    entries = [s.as_json() for s in fleet]
    if all(s.server_id != self_entry.server_id for s in fleet):
        entries.insert(0, self_entry.as_json())
    return entries
