"""The client's address behind a reverse proxy: `X-Forwarded-For`, believed from trusted proxies only.

A request's peer is its TCP peer. When that peer is a configured trusted proxy
(`--trusted-proxy CIDR`), the `X-Forwarded-For` chain is walked from the right — each proxy
appends the address it received the request from — skipping the trusted proxies; the first
address that is not one of them is the client. Anything a client writes into the header
itself sits to the left of that address and is never believed. A malformed entry stops the
walk at the last address known good. (RFC 7239 section 5.2 describes the same chain for
`Forwarded`; nginx's `real_ip_recursive on` does the same walk.)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from aiohttp import web

from ispeed.core.errors import ConfigError
from ispeed.server.keys import CONFIG

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_CACHE = web.RequestKey("ispeed.client_ip", str)


def parse_trusted(cidrs: Iterable[str], flag: str = "--trusted-proxy") -> tuple[Network, ...]:
    """The networks of `--trusted-proxy` values (an address alone is a /32 or /128)."""
    out = []
    for text in cidrs:
        try:
            out.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError as exc:
            raise ConfigError(flag, text, "use an address or a CIDR network, e.g. 10.0.0.0/8 or ::1") from exc
    return tuple(out)


def _address(text: str) -> Address | None:
    """An address from a header entry or a peer: brackets, ports and IPv4-mapped forms undone."""
    text = text.strip()
    if text.startswith("["):  # "[2001:db8::1]:443"
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # "203.0.113.7:5555"
        text = text.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _trusted(addr: Address, trusted: Sequence[Network]) -> bool:
    return any(addr.version == net.version and addr in net for net in trusted)


def forwarded_client(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The client address for a request from `peer` carrying these X-Forwarded-For header values.

    An IPv4-mapped peer (`::ffff:a.b.c.d`, an IPv4 client of the dual-stack `--host ::` socket)
    is its IPv4 address: one client has one hash, network and IP version on either socket.
    """
    current = _address(peer) if peer else None
    if current is None:
        return peer
    if not trusted or not _trusted(current, trusted):
        return str(current) if ":" not in peer or current.version == 4 else peer
    chain = [part for value in forwarded_for for part in value.split(",") if part.strip()]
    for entry in reversed(chain):
        addr = _address(entry)
        if addr is None:
            break
        current = addr
        if not _trusted(addr, trusted):
            break
    return str(current)


def client_ip(request: web.Request) -> str:
    """The client's address for limits, attribution and hashing ('' when the peer is unknown)."""
    cached = request.get(_CACHE)
    if cached is None:
        cached = forwarded_client(
            request.remote or "", request.headers.getall("X-Forwarded-For", []), request.app[CONFIG].trusted_proxies
        )
        request[_CACHE] = cached
    return str(cached)


def from_trusted_proxy(request: web.Request) -> bool:
    """Whether the request's TCP peer is a configured trusted proxy (its connection is the proxy's)."""
    peer = _address(request.remote or "")
    return peer is not None and _trusted(peer, request.app[CONFIG].trusted_proxies)
