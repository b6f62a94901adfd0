"""The labels a stored result carries — place, network type, device — and the evidence behind each.

One decision for every way a result arrives (the native API, ndt7), following spec/evidence.md
and spec/identity.md:

- place: GPS when it is usable and the IP databases do not contradict it, else the IP's province;
  a contradicted fix is not used and the result is flagged `location_conflict` (still ranked,
  by its IP place: the speed is the server's own, only the commune is not believed);
- network type: declared, else what the device reported, else the IP classification, else
  `fixed` with source `none`; a type the IP classification contradicts is flagged
  `network_type_conflict` and stored invalid (kept for audit, never ranked);
- device: a server-issued, signed id (`issued`), else the result counts under its IP hash (`ip`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from ispeed.server.attribution import Attribution, Placement
from ispeed.server.devices import resolve_device
from ispeed.server.keys import ATTRIBUTION, CONFIG

DEFAULT_NETWORK_TYPE = "fixed"  # what a result nobody labelled is ranked under (source `none`)


@dataclass(frozen=True)
class Labels:
    """What a result is stored under, and why."""

    place: Placement
    network_type: str
    network_type_source: str
    device_hash: str
    device_source: str
    flags: tuple[str, ...] = field(default=())
    invalid_reason: str = ""  # '' or why the evidence says the result must not be ranked


def decide(
    app: web.Application,
    ip: str,
    lat: float | None,
    lon: float | None,
    accuracy_m: float | None,
    declared_type: str | None,
    device_type: str | None,
    device_id: object,
) -> Labels:
    """The labels of a result whose transfers ran from `ip`, with what its client said."""
    cfg = app[CONFIG]
    attribution: Attribution = app[ATTRIBUTION]  # type: ignore[assignment]
    place = attribution.place(ip, lat, lon, accuracy_m, declared_type, device_type)
    flags = []
    reason = ""
    if place.location_conflict:
        flags.append("location_conflict")
    if place.network_type_conflict:
        flags.append("network_type_conflict")
        reason = f"network_type_conflict: {place.network_type_conflict}"
    device_hash, device_source = resolve_device(cfg.secret, device_id, cfg.device_id_previous_secrets)
    network_type = place.network_type or DEFAULT_NETWORK_TYPE
    source = place.network_type_source if place.network_type else "none"
    return Labels(place, network_type, source, device_hash, device_source, tuple(flags), reason)
