"""A logging filter that keeps raw IP addresses out of log lines: each becomes its /24 (IPv4) or /48 (IPv6).

Client addresses are personal data: the store keeps a keyed hash and the network only
(server/privacy.py), and so must the logs. aiohttp logs the peer on every request error
("Error handling request from 203.0.113.7"), so entry points put this filter on their handlers
(the CLI) or on aiohttp's loggers (an app run in-process). Messages, arguments, tracebacks and
stack traces are all redacted.
"""

from __future__ import annotations

import ipaddress
import logging
import re

# IPv6 (which may end in dotted IPv4) or IPv4, in one pass so a replacement is never rescanned;
# candidates are checked by `ipaddress`, so times ("12:34:56") and versions ("1.2.3") stay.
_ADDRESS = re.compile(
    r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}(?:%\w+)?(?![\w:])"
    r"|(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)"
)


def _network(text: str) -> str | None:
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        elif addr.is_unspecified:
            return text  # "::" is a listening address, never a client
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def _sub(match: re.Match[str]) -> str:
    return _network(match.group()) or match.group()


def redact(text: str) -> str:
    """`text` with every IPv4/IPv6 address replaced by its /24 or /48 network."""
    if "." not in text and ":" not in text:
        return text
    return _ADDRESS.sub(_sub, text)


class RedactAddresses(logging.Filter):
    """Rewrites each record so that no raw IP address reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format must not leak its arguments in the error report
            message = f"{record.msg} (arguments that do not fit the message were dropped)"
        record.msg, record.args = redact(str(message)), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


# the loggers aiohttp and asyncio log peers on (aiohttp/log.py)
PEER_LOGGERS = (
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.access",
    "aiohttp.internal",
    "aiohttp.websocket",
    "aiohttp.client",
    "asyncio",
)


def install(*targets: logging.Logger | logging.Handler) -> None:
    """Put one RedactAddresses on each target (a logger's filter sees only records logged on it)."""
    for target in targets:
        if not any(isinstance(f, RedactAddresses) for f in target.filters):
            target.addFilter(RedactAddresses())


def install_on_peer_loggers() -> None:
    """Redact the loggers of aiohttp and asyncio, for servers run without the CLI's handlers."""
    install(*(logging.getLogger(name) for name in PEER_LOGGERS))
