"""Server-issued device identities: signed ids, their verification, and issuance limits per network.

Format (spec/identity.md): `d1.<random>.<day>.<mac>` — `random` is 16 random bytes in base64url
(22 characters), `day` the Vietnam-local issue day `yyyymmdd`, `mac` the HMAC-SHA256 of
`ID_MAC_PREFIX + "d1.<random>.<day>"` under the server secret, base64url (43 characters). Every
server of a fleet shares the secret, so any of them verifies any of their ids. Ids do not expire.

New ids are limited per client network (/24 or /48) and Vietnam-local day: `per_network`, or
`per_cellular_network` when `is_cellular(ip)` says the address is a carrier's (CGNAT puts many
phones behind one /24). The counters live in this process only.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from ispeed.core.fields import Field
from ispeed.core.timeutil import VN_TZ, isoformat_utc
from ispeed.server.errors import json_error
from ispeed.server.keys import CONFIG, METRICS
from ispeed.server.privacy import ip_network, keyed_hash
from ispeed.server.proxy import client_ip
from ispeed.server.validate import check, read_json

log = logging.getLogger("ispeed.server.devices")

VERSION = "d1"
ID_MAC_PREFIX = b"ispeed device id v1\n"  # domain separation from tokens, receipts and hashes
RANDOM_BYTES = 16
MAX_ID_CHARS = 128  # what results.py accepts as device_id
_ID = re.compile(r"d1\.([A-Za-z0-9_-]{22})\.([0-9]{8})\.([A-Za-z0-9_-]{43})")
BODY_FIELDS = {"device_id": Field(str, max_len=1024)}
MAX_BODY_BYTES = 4096


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _mac(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, ID_MAC_PREFIX + payload.encode("ascii"), hashlib.sha256).digest())


def sign_device_id(secret: bytes, random_part: str, day: dt.date) -> str:
    """The signed id for a random part (22 base64url characters) issued on a Vietnam-local day."""
    payload = f"{VERSION}.{random_part}.{day:%Y%m%d}"
    return f"{payload}.{_mac(secret, payload)}"


def new_device_id(secret: bytes, day: dt.date) -> str:
    """A fresh signed id issued on `day` (Vietnam local)."""
    return sign_device_id(secret, _b64(secrets.token_bytes(RANDOM_BYTES)), day)


def _parts(text: object) -> tuple[str, str] | None:
    """(payload, mac) of a well-formed id; None for anything else (wrong type, length, characters)."""
    if not isinstance(text, str) or len(text) > MAX_ID_CHARS:
        return None
    m = _ID.fullmatch(text)  # ASCII-only character classes: no Unicode digit or letter passes
    if m is None:
        return None
    return text[: m.start(3) - 1], m.group(3)


def verify_device_id(secret: bytes, text: object) -> str | None:
    """The canonical id when `text` is a genuine id signed under `secret`; None for anything else.

    Never raises. The MAC is compared as ASCII bytes in constant time against the canonical
    encoding, so no other spelling of the same bytes verifies: one issued id is one device.
    """
    parts = _parts(text)
    if parts is None or not secret:
        return None
    payload, mac = parts
    if not hmac.compare_digest(mac.encode("ascii"), _mac(secret, payload).encode("ascii")):
        return None
    return f"{payload}.{mac}"


def issue_day(device_id: str) -> dt.date | None:
    """The Vietnam-local day a well-formed id says it was issued on (trust it only once verified)."""
    parts = _parts(device_id)
    if parts is None:
        return None
    try:
        return dt.datetime.strptime(parts[0].rsplit(".", 1)[1], "%Y%m%d").date()
    except ValueError:
        return None


def current_device_id(secret: bytes, text: object, previous_secrets: Sequence[bytes] = ()) -> str | None:
    """The id under `secret` of a genuine id: itself, or — signed under a previous secret while the
    fleet rotates — the same random part and day re-signed under `secret` (what a renewal gives)."""
    canonical = verify_device_id(secret, text)
    if canonical is not None:
        return canonical
    for old in previous_secrets:
        canonical = verify_device_id(old, text)
        if canonical is not None:
            payload = canonical.rsplit(".", 1)[0]
            return f"{payload}.{_mac(secret, payload)}"
    return None


def resolve_device(secret: bytes, device_id_text: object, previous_secrets: Sequence[bytes] = ()) -> tuple[str, str]:
    """Methodology v1's device for a submitted `device_id`.

    ('<keyed hash of the canonical id>', 'issued') for a genuine id; ('', 'ip') for anything else
    (absent, self-chosen, forged, malformed): the sample rule then counts the test under its IP hash.
    An id signed under one of `previous_secrets` counts as its renewal, so a device keeps one hash
    whether its client presented the old id or the renewed one.
    """
    canonical = current_device_id(secret, device_id_text, previous_secrets)
    if canonical is None:
        return "", "ip"
    return keyed_hash(secret, "device", canonical), "issued"


def never_cellular(ip: str) -> bool:
    """The default connection-type lookup: no network is a carrier's."""
    return False


@dataclass(frozen=True)
class Grant:
    """The outcome of one request for an id: `status` is issued, known, renewed or refused."""

    status: str
    device_id: str = ""
    issued_at: float | None = None  # UTC epoch seconds, for a newly issued id
    cellular: bool = False
    allowance: int = 0
    retry_after_s: float = 0.0  # refused: until the next Vietnam-local day


class Issuer:
    """Issues signed ids, at most an allowance per client network and Vietnam-local day."""

    def __init__(
        self,
        secret: bytes,
        per_network: int,
        per_cellular_network: int,
        is_cellular: Callable[[str], bool] = never_cellular,
        clock: Callable[[], float] = time.time,
        previous_secrets: Sequence[bytes] = (),
        max_networks: int = 200_000,
    ) -> None:
        self.secret = secret
        self.per_network = per_network
        self.per_cellular_network = per_cellular_network
        self.is_cellular = is_cellular
        self.clock = clock
        self.previous_secrets = tuple(s for s in previous_secrets if s)
        self.max_networks = max_networks
        self._day: dt.date | None = None
        self._issued: dict[str, int] = {}  # network -> ids issued today (one day kept: bounded)
        self._full_logged = False

    def today(self) -> tuple[dt.date, float]:
        """The Vietnam-local day now, and the seconds until it ends."""
        now = dt.datetime.fromtimestamp(self.clock(), VN_TZ)
        end = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), VN_TZ)
        return now.date(), (end - now).total_seconds()

    def issued_today(self, ip: str) -> int:
        """How many ids the network of `ip` has been issued today."""
        day, _ = self.today()
        return self._issued.get(ip_network(ip), 0) if day == self._day else 0

    def request(self, ip: str, presented: str | None = None) -> Grant:
        """A client at `ip` asks for an id, presenting the one it holds (if any).

        A genuine id comes back as it is (known); one signed under a previous secret comes back
        re-signed under the current one (renewed: same random part and day, so exchanging it
        twice gives the same id); neither counts against the allowance. Otherwise a new id
        is issued if the network's allowance for today is not spent.
        """
        if presented:
            current = current_device_id(self.secret, presented, self.previous_secrets)
            if current is not None:
                return Grant("known" if current == presented else "renewed", current)
        day, left_s = self.today()
        if day != self._day:
            self._day, self._issued, self._full_logged = day, {}, False
        network = ip_network(ip)
        cellular = self._cellular(ip)
        allowance = self.per_cellular_network if cellular else self.per_network
        count = self._issued.get(network)
        if count is None and len(self._issued) >= self.max_networks:
            if not self._full_logged:
                self._full_logged = True
                log.warning(
                    "device id counters full (%d networks today): refusing new networks until tomorrow",
                    self.max_networks,
                )
            count = allowance  # fail closed: a refused client counts under its IP, an attacker gains nothing
        if (count or 0) >= allowance:
            return Grant("refused", cellular=cellular, allowance=allowance, retry_after_s=left_s)
        self._issued[network] = (count or 0) + 1
        return Grant("issued", new_device_id(self.secret, day), self.clock(), cellular, allowance)

    def _cellular(self, ip: str) -> bool:
        try:
            return bool(self.is_cellular(ip))
        except Exception:
            log.exception("connection-type lookup failed for a client address; using the fixed allowance")
            return False


ISSUER = web.AppKey("device_issuer", Issuer)


async def issue_device_id(request: web.Request) -> web.Response:
    """POST /api/v1/devices: 201 with a new signed id, 200 for one already held, 429 over the allowance."""
    metrics = request.app[METRICS]
    body: object = {}
    if request.body_exists and request.content_length != 0:  # fetch() without a body sends length 0
        body = await read_json(request, MAX_BODY_BYTES)
    presented = check(body, BODY_FIELDS)["device_id"]
    grant = request.app[ISSUER].request(client_ip(request), presented)
    if grant.status == "refused":
        metrics.inc("device_ids_refused_total")
        kind = "carrier (cellular) network" if grant.cellular else "network"
        raise json_error(
            429,
            f"your {kind} has been issued its {grant.allowance} new device ids for today (Vietnam time); "
            "tests still count, under your IP address, until an id can be issued tomorrow",
            retry_after_s=round(grant.retry_after_s, 1),
            allowance=grant.allowance,
        )
    metrics.inc(f"device_ids_{grant.status}_total")
    answer: dict[str, object] = {
        "device_id": grant.device_id,
        "status": grant.status,
        "issued_on": str(issue_day(grant.device_id)),
    }
    if grant.issued_at is not None:
        answer["issued_at"] = isoformat_utc(grant.issued_at)
    return web.json_response(answer, status=201 if grant.status == "issued" else 200)


def add_routes(
    app: web.Application, is_cellular: Callable[[str], bool] | None = None, clock: Callable[[], float] = time.time
) -> None:
    """POST /api/v1/devices, with the issuer built from the app's config."""
    cfg = app[CONFIG]
    app[ISSUER] = Issuer(
        cfg.secret,
        cfg.device_ids_per_network,
        cfg.device_ids_per_cellular_network,
        is_cellular or never_cellular,
        clock,
        cfg.device_id_previous_secrets,
    )
    app.router.add_post("/api/v1/devices", issue_device_id)
