"""Which address a test runs over: one IP family, one server address, for every connection.

A server checks that every request of a test comes from the network that took its token
(spec/method-v1.md §4a): an IPv4 /24 is never an IPv6 /48, so a test must not mix families. The
client resolves the server's host once (`--ip 4` or `6`: that family only; by default every
address in the system's order, getaddrinfo's preference), connects to the first address that
answers, and pins every connection of the test to it: the token, the WebSocket, the download
streams (rawhttp), the upload streams (aiohttp, through `PinnedResolver`) and the RPM probes.
Host headers and TLS names stay the URL's.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult

from ispeed.core.errors import ConfigError, ServerUnreachable

FAMILIES = {"4": socket.AF_INET, "6": socket.AF_INET6}
TRY_TIMEOUT_S = 3.0  # per address while choosing; the next address is tried after it


def version_of(address: str) -> int:
    """4 or 6 for an address (an IPv4-mapped IPv6 address is 4)."""
    addr = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return 4
    return addr.version


async def addresses(host: str, port: int, ip: str = "") -> list[str]:
    """The server's addresses in the system's order; only those of family `ip` ('4'/'6') if given."""
    family = FAMILIES.get(ip, socket.AF_UNSPEC)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if ip and _is_literal(host):
            raise ConfigError(
                "--ip", ip, f"the server {host} is an IPv{version_of(host)} address; leave --ip out or use its family"
            ) from exc
        suffix = f" over IPv{ip}" if ip else ""
        raise ServerUnreachable(
            f"cannot resolve the test server {host}{suffix} ({exc.strerror}); check the --server URL"
            + (" or try the other --ip family" if ip else "")
        ) from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def choose(host: str, port: int, ip: str = "", timeout_s: float = TRY_TIMEOUT_S) -> str:
    """The first of the server's addresses (of family `ip` if given) that accepts a connection."""
    candidates = await addresses(host, port, ip)
    if ip and _is_literal(host) and version_of(host) != int(ip):
        raise ConfigError(
            "--ip", ip, f"the server {host} is an IPv{version_of(host)} address; use --ip {version_of(host)}"
        )
    failures = []
    for address in candidates:
        try:
            async with asyncio.timeout(timeout_s):
                _, writer = await asyncio.open_connection(address, port)
        except (OSError, TimeoutError) as exc:
            failures.append(f"{address}: {exc.__class__.__name__} {exc}".strip())
            continue
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        return address
    family = f" over IPv{ip}" if ip else ""
    raise ServerUnreachable(
        f"cannot connect to the test server {host} port {port}{family} ({'; '.join(failures) or 'no address'}); "
        "check the --server URL and that `ispeed serve` is running" + (", or try the other --ip family" if ip else "")
    )


class PinnedResolver(AbstractResolver):
    """aiohttp's resolver for one test: the server's host name resolves to the chosen address only."""

    def __init__(self, host: str, address: str) -> None:
        self.host = host
        self.address = address

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host != self.host:
            raise OSError(f"this test's connections go to {self.host} only, not {host}")
        af = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        return [
            ResolveResult(hostname=host, host=self.address, port=port, family=af, proto=0, flags=socket.AI_NUMERICHOST)
        ]

    async def close(self) -> None:
        return None


def other(version: int) -> str:
    """The other family of `version` ('6' for 4, '4' for 6)."""
    return "6" if version == 4 else "4"
