"""Privacy rules: raw IPs never stored, only a keyed hash and the /24 (IPv4) or /48 (IPv6)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress


def keyed_hash(secret: bytes, kind: str, value: str) -> str:
    """HMAC-SHA256 of `kind:value` under the server secret, hex, 32 characters."""
    return hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def ip_network(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of `ip`, or '' when it is not an address."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def ip_version(ip: str) -> int:
    """4 or 6 for an address (an IPv4-mapped IPv6 address is 4), 0 when `ip` is not one."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return 0
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        return 4
    return addr.version


def round_coord(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
