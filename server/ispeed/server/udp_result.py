"""The stored UDP loss and delay of a result (method v2): the server's own counts joined with the client's.

What each stored figure rests on (spec/method-v2.md, UDP loss and delay):
- `udp_probes`, `loss_up_pct` and every phase's `probes`, `received`, `loss_up_pct`: the server's
  counts alone (the client's `probes` is kept beside them as `probes_client`, a cross-check);
- `loss_down_pct`: the client's count of distinct echoes over the server's count of echoes sent
  (a client count above the server's leaves the figure out);
- `udp_rtt_ms`, `udp_rtt_p90_ms` and the phases' round trips and jitter: the client's timing.
A client whose counts cannot be right (more echoes than were sent, fewer probes than the server
saw, or far more) is stored with the flag `udp_disagrees`; `ok` claimed for a test whose probes
the server never answered is stored `blocked`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from ispeed.core import quality
from ispeed.core.errors import ValidationError
from ispeed.core.udp_probe import PHASES
from ispeed.server.receipts import Counters
from ispeed.server.validate import check

log = logging.getLogger("ispeed.server.udp")
FLAG_DISAGREES = "udp_disagrees"


@dataclass(frozen=True)
class StoredQuality:
    """The method v2 UDP columns of one stored result, and the flags they add."""

    udp_status: str = ""
    udp_probes: int = 0
    loss_down_pct: float | None = None
    loss_up_pct: float | None = None
    udp_rtt_ms: float | None = None
    udp_rtt_p90_ms: float | None = None
    quality_phases: str = ""
    flags: tuple[str, ...] = ()

    def columns(self) -> dict[str, Any]:
        """The Measurement keyword arguments (schema.py, migration 0007)."""
        return {
            "udp_status": self.udp_status,
            "udp_probes": self.udp_probes,
            "loss_down_pct": self.loss_down_pct,
            "loss_up_pct": self.loss_up_pct,
            "udp_rtt_ms": self.udp_rtt_ms,
            "udp_rtt_p90_ms": self.udp_rtt_p90_ms,
            "quality_phases": self.quality_phases,
        }


def parse_phases(text: str | None) -> dict[str, dict[str, Any]]:
    """The client's per-phase counts of a submission's `quality_phases`; ValidationError naming the
    bad part (`quality_phases.idle.echoes`)."""
    if text is None:
        return {}
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValidationError("quality_phases", f"is not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise ValidationError("quality_phases", "must be a JSON object of phases")
    out = {}
    for name, counts in raw.items():
        if name not in PHASES:
            raise ValidationError(
                "quality_phases", f"has an unknown phase {str(name)[:20]!r} (use {', '.join(PHASES)})"
            )
        try:
            out[name] = check(counts, quality.PHASE_FIELDS)
        except ValidationError as exc:
            raise ValidationError(f"quality_phases.{name}.{exc.field}", exc.reason) from exc
    return out


def stored(status: str | None, client: dict[str, dict[str, Any]], counters: Counters) -> StoredQuality:
    """The columns to store: nothing for a client that did not probe (method v1)."""
    if status is None:
        return StoredQuality()
    server = counters.udp or {}
    idle_server = server.get("idle") or {}
    if status == quality.UDP_BLOCKED or not idle_server.get("echoed"):
        flags = (FLAG_DISAGREES,) if status == quality.UDP_OK else ()  # "ok", yet the server answered none
        return StoredQuality(quality.UDP_BLOCKED, int(idle_server.get("probes") or 0), flags=flags)
    names = [n for n in PHASES if n in client or (server.get(n) or {}).get("probes")]
    phases = {n: quality.phase_figures(server.get(n), client.get(n)) for n in names}
    reasons = [f"{n}: {why}" for n in names for why in quality.disagreements(server.get(n), client.get(n))]
    if reasons:
        log.info("test %s: UDP counts disagree with the server's: %s", counters.test_id, "; ".join(reasons))
    idle = phases.get("idle") or quality.phase_figures(idle_server, None)
    return StoredQuality(
        udp_status=quality.UDP_OK,
        udp_probes=int(idle["probes"]),
        loss_down_pct=idle["loss_down_pct"],
        loss_up_pct=idle["loss_up_pct"],
        udp_rtt_ms=idle["rtt_ms"],
        udp_rtt_p90_ms=idle["rtt_p90_ms"],
        quality_phases=json.dumps(phases, separators=(",", ":"), sort_keys=True),
        flags=(FLAG_DISAGREES,) if reasons else (),
    )
