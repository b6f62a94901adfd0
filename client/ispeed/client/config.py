"""Configuration of one client test, built at the entry point and passed down."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ispeed.core.errors import ConfigError
from ispeed.core.schema import NETWORK_TYPES
from ispeed.core.udp_probe import IDLE_PROBES, IDLE_RATE_PER_S, MAX_CLIENT_RATE_PER_S, MAX_IDLE_PROBES


@dataclass(frozen=True)
class TestConfig:
    """What one test does: server, streams, phase length, network type, place, submission."""

    __test__ = False  # not a pytest test class

    server_url: str
    streams: int = 4
    duration_s: float = 10.0
    network_type: str = ""  # declared by the user; '' = not declared (the server decides, spec/evidence.md)
    lat: float | None = None
    lon: float | None = None
    accuracy_m: float | None = None
    submit: bool = True
    device_id: str = ""
    client_kind: str = "cli"
    latency_probes: int = 12
    connect_timeout_s: float = 10.0
    udp_probes: int = IDLE_PROBES  # method v2: idle-phase UDP probes (0: no UDP probing)
    udp_rate_per_s: float = IDLE_RATE_PER_S
    ip_version: str = ""  # "4" or "6": every connection over that family; "" = the system's preference

    def __post_init__(self) -> None:
        check_server_url(self.server_url)
        if not 1 <= self.streams <= 64:
            raise ConfigError("--streams", self.streams, "use 1 to 64 parallel streams")
        if not 1 <= self.duration_s <= 600:
            raise ConfigError("--duration", self.duration_s, "use 1 to 600 seconds per phase")
        if self.network_type and self.network_type not in NETWORK_TYPES:
            raise ConfigError(
                "--network-type",
                self.network_type,
                f"use one of {', '.join(NETWORK_TYPES)}, or leave it out to let the evidence decide",
            )
        if not 0 <= self.udp_probes <= MAX_IDLE_PROBES:
            raise ConfigError(
                "--udp-probes", self.udp_probes, f"use 0 (no UDP probes) to {MAX_IDLE_PROBES} idle-phase probes"
            )
        if not 1 <= self.udp_rate_per_s <= MAX_CLIENT_RATE_PER_S:
            raise ConfigError(
                "--udp-rate", self.udp_rate_per_s, f"use 1 to {MAX_CLIENT_RATE_PER_S:g} probes per second"
            )
        if self.ip_version not in ("", "4", "6"):
            raise ConfigError("--ip", self.ip_version, "use 4, 6 or both, or leave it out for the system's preference")
        if (self.lat is None) != (self.lon is None):
            raise ConfigError("--lat/--lon", (self.lat, self.lon), "give both or neither")
        if self.lat is not None and not -90 <= self.lat <= 90:
            raise ConfigError("--lat", self.lat, "latitude is between -90 and 90 (Vietnam: 8 to 24)")
        if self.lon is not None and not -180 <= self.lon <= 180:
            raise ConfigError("--lon", self.lon, "longitude is between -180 and 180 (Vietnam: 102 to 110)")


def check_server_url(url: str) -> str:
    """`url` if it is http(s)://host[:port][/path]; ConfigError naming it otherwise."""
    hint = "use the server's base URL, e.g. http://127.0.0.1:8080"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError("--server", url, hint) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("--server", url, hint)
    del port
    return url.rstrip("/")
