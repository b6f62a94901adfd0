"""Loss and delay per phase (method v2): the figures both ends compute from the same counts.

The server counts what reached it (upstream) and what it answered; the client counts the
answers that reached it (downstream) and times them. `phase_figures` joins the two into one
phase's object of `quality_phases` (spec/method-v2.md, UDP loss and delay): the client prints
it, the server stores it, from the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ispeed.core.fields import Field
from ispeed.core.method import latency_summary
from ispeed.core.udp_probe import PHASES

UDP_OK = "ok"
UDP_BLOCKED = "blocked"
UDP_STATUSES: tuple[str, ...] = (UDP_OK, UDP_BLOCKED)
_COUNT = 10_000_000

# A client's own counts of one phase, as it submits them (`quality_phases`, one object per phase).
PHASE_FIELDS: dict[str, Field] = {
    "probes": Field(int, low=0, high=_COUNT, doc="UDP probes the client sent in this phase"),
    "echoes": Field(int, low=0, high=_COUNT, doc="distinct echoes the client received of this phase's probes"),
    "duplicates": Field(int, low=0, high=_COUNT, doc="echoes received more than once"),
    "reordered": Field(int, low=0, high=_COUNT, doc="echoes that arrived after one the server sent later"),
    "rtt_ms": Field(float, low=0, high=60_000, doc="median round trip of the echoes, ms"),
    "rtt_p90_ms": Field(float, low=0, high=60_000, doc="90th percentile round trip (nearest rank), ms"),
    "jitter_ms": Field(float, low=0, high=60_000, doc="mean absolute difference of consecutive round trips, ms"),
}
# The server's counts of one phase (GET /api/v1/tests/{id} `udp`, and the signed receipt).
SERVER_KEYS: tuple[str, ...] = ("probes", "received", "echoed", "duplicates", "reordered", "refused")
# A client count this far above the server's highest sequence number + 1 is not tail loss.
PROBES_SLACK = 10
PROBES_SLACK_FRACTION = 0.1


def p90(values: Sequence[float]) -> float | None:
    """The 90th percentile by nearest rank: the ceil(0.9 n)-th smallest value."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(0.9 * len(ordered)), 1) - 1]


def rtt_summary(rtts_ms: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    """(median, 90th percentile, jitter) of round trips in the order the probes were sent."""
    median, jitter = latency_summary(rtts_ms)
    return median, p90(rtts_ms), jitter


def loss_pct(lost: int, total: int) -> float | None:
    return None if total <= 0 else round(100.0 * lost / total, 3)


def phase_figures(server: Mapping[str, Any] | None, client: Mapping[str, Any] | None) -> dict[str, Any]:
    """One phase's loss and delay from the server's counts and the client's.

    Upstream loss rests on the server alone: `probes` is its highest sequence number + 1, so a
    client cannot inflate it by claiming more probes. Downstream loss is the share of the echoes
    the server sent (`echoed`) that the client says it received (`echoes`): it rests on the
    client's count, bounded by the server's; a count above it leaves the figure out.
    """
    s = {k: int((server or {}).get(k) or 0) for k in SERVER_KEYS}
    c = dict(client or {})
    echoes = c.get("echoes")
    probes, received, echoed = s["probes"], min(s["received"], s["probes"]), s["echoed"]
    down_ok = echoes is not None and echoed > 0 and echoes <= echoed
    dup_down, reord_down = c.get("duplicates"), c.get("reordered")
    return {
        "probes": probes,
        "probes_client": c.get("probes"),
        "received": received,
        "echoed": echoed,
        "echoes": echoes,
        "loss_up_pct": loss_pct(probes - received, probes),
        "loss_down_pct": loss_pct(echoed - echoes, echoed) if down_ok else None,  # type: ignore[operator]
        "rtt_ms": _r(c.get("rtt_ms")),
        "rtt_p90_ms": _r(c.get("rtt_p90_ms")),
        "jitter_ms": _r(c.get("jitter_ms")),
        "duplicates": s["duplicates"] + int(dup_down or 0),
        "reordered": s["reordered"] + int(reord_down or 0),
        "duplicates_up": s["duplicates"],
        "reordered_up": s["reordered"],
        "duplicates_down": dup_down,
        "reordered_down": reord_down,
        "refused": s["refused"],
        "loss_up_source": "server",
        "loss_down_source": "client",
    }


def disagreements(server: Mapping[str, Any] | None, client: Mapping[str, Any] | None) -> list[str]:
    """Why a client's counts of a phase cannot be right, given the server's (empty: they can)."""
    s = server or {}
    c = client or {}
    out = []
    echoes, echoed = c.get("echoes"), int(s.get("echoed") or 0)
    if echoes is not None and echoes > echoed:
        out.append(f"{echoes} echoes received of {echoed} the server sent")
    sent, seen = c.get("probes"), int(s.get("probes") or 0)
    if sent is not None and sent < seen:
        out.append(f"{sent} probes sent, but the server saw sequence numbers up to {seen - 1}")
    if sent is not None and sent > seen + max(PROBES_SLACK, PROBES_SLACK_FRACTION * seen):
        out.append(f"{sent} probes sent, the server saw sequence numbers up to {seen - 1} only")
    return out


def empty_phases() -> dict[str, dict[str, Any]]:
    return {name: {} for name in PHASES}


def _r(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)
