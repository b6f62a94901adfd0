"""Who and where a result comes from: provider, ASN, province, commune and location source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Placement:
    provider: str = ""
    asn: int = 0
    province_code: str = ""
    commune_code: str = ""
    location_source: str = "none"   # gps / ip / none


class Attribution(Protocol):
    def place(self, ip: str, lat: float | None, lon: float | None, accuracy_m: float | None) -> Placement: ...


class NoAttribution:
    """Used when no geo data is configured: results are stored unattributed."""

    def place(self, ip: str, lat: float | None, lon: float | None, accuracy_m: float | None) -> Placement:
        return Placement()
