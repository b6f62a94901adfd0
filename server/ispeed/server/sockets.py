"""Listening sockets of a test server: one per address, IPv6 ones dual-stack (IPv4 arrives too).

asyncio sets `IPV6_V6ONLY` on every IPv6 socket it creates, so `ispeed serve --host ::` through
`loop.create_server(host="::")` refused IPv4. Here the sockets are made by hand: an IPv6 socket
has the option off, so `::` takes both families on one port (IPv4 peers appear as IPv4-mapped
addresses, `::ffff:a.b.c.d`, which `proxy.client_ip` unmaps), and an IPv4 wildcard is left out
when the IPv6 wildcard already covers it. The UDP probes use the same function with
`socket.SOCK_DGRAM` to listen on the TCP port's number.
"""

from __future__ import annotations

import ipaddress
import socket

from ispeed.core.errors import ConfigError

ANY_V4 = "0.0.0.0"


def _addresses(host: str, port: int, kind: socket.SocketKind) -> list[tuple[socket.AddressFamily, str]]:
    """(family, address) to bind for `host`, in resolver order; every address: `::`, then IPv4's."""
    if host in ("", "::"):
        candidates = [(socket.AF_INET6, "::")] if socket.has_ipv6 else []
        candidates.append((socket.AF_INET, ANY_V4))
    else:
        try:
            literal = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
            candidates = [(socket.AF_INET6 if literal.version == 6 else socket.AF_INET, host.strip("[]"))]
        except ValueError:
            try:
                infos = socket.getaddrinfo(host, port, type=kind, flags=socket.AI_PASSIVE)
            except socket.gaierror as exc:
                raise ConfigError("--host", host, f"cannot resolve it ({exc.strerror}); use an address or ::") from exc
            candidates = list(dict.fromkeys((info[0], str(info[4][0])) for info in infos))
    return candidates


def _open(family: socket.AddressFamily, kind: socket.SocketKind, address: str, port: int) -> socket.socket:
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart while old connections linger
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 too, as IPv4-mapped peers
        sock.bind((address, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def listening_sockets(
    host: str, port: int, kind: socket.SocketKind = socket.SOCK_STREAM, backlog: int = 1024
) -> list[socket.socket]:
    """Bound sockets for `host` and `port` (0: a free port, the same number on every socket).

    `host` "::" or "" listens on every address of both families through one dual-stack socket
    (plain IPv4 where the kernel has no IPv6); an address listens on it alone; a name on each
    address it resolves to. TCP sockets are listening (`backlog`), UDP ones bound. ConfigError
    names the host and port when the kernel refuses (in use, not an address of this machine).
    """
    sockets: list[socket.socket] = []
    try:
        for family, address in _addresses(host, port, kind):
            if address == ANY_V4 and any(dual_stack(s) for s in sockets):
                continue  # the dual-stack `::` socket already takes IPv4
            bound_port = sockets[0].getsockname()[1] if sockets else port
            try:
                sock = _open(family, kind, address, bound_port)
            except OSError as exc:
                if host in ("", "::") and family == socket.AF_INET6 and not sockets:
                    continue  # IPv6 disabled in this kernel: plain IPv4 wildcard follows
                raise ConfigError(
                    "--host/--port",
                    f"{address}:{bound_port}",
                    f"cannot listen there ({exc.strerror or exc}); choose another port, or an address of this machine",
                ) from exc
            sockets.append(sock)
            if kind == socket.SOCK_STREAM:
                sock.listen(backlog)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def dual_stack(sock: socket.socket) -> bool:
    """Whether `sock` is an IPv6 socket that takes IPv4 too."""
    return sock.family == socket.AF_INET6 and sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
