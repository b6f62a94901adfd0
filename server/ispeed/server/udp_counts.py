"""What the server saw of one test's UDP probes, per phase: the upstream truth, and its answer budget.

Per phase the server keeps which sequence numbers arrived (a bitmap), the highest + 1
(`probes`: what the client sent, as far as the server can tell), the distinct arrivals
(`received`), the ones it answered (`echoed`), duplicates, reordered arrivals (a sequence number
below one seen before) and probes it did not answer for the rate bound (`refused`). For each
answer it records when the probe arrived and how long the answer took, for the report of the
delay the server itself adds. Everything is bounded: a phase counts sequence numbers below its
cap, and no faster than the answer rate allows since its first probe.
"""

from __future__ import annotations

import hashlib
import hmac
from array import array
from typing import Any

from ispeed.core import udp_probe
from ispeed.core.udp_probe import ANSWER_BURST, ANSWER_RATE_PER_S, MAX_IDLE_PROBES, PHASES, SEQ_SLACK

TRANSFER_SLACK_S = 10.0  # a transfer phase's cap: the answer rate over the token's duration + this


def udp_key(secret: bytes, test_id: str) -> bytes:
    """The per-test key that tags a test's probes: HMAC-SHA256(secret, 'udp:' + test id)."""
    return hmac.digest(secret, b"udp:" + test_id.encode("ascii"), hashlib.sha256)


class PhaseCount:
    """One phase's probes as they arrive."""

    __slots__ = (
        "cap",
        "seen",
        "probes",
        "received",
        "echoed",
        "duplicates",
        "reordered",
        "refused",
        "first_ns",
        "arrived_us",
        "answer_ns",
    )

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.seen = bytearray()
        self.probes = 0  # highest sequence number + 1
        self.received = 0
        self.echoed = 0
        self.duplicates = 0
        self.reordered = 0
        self.refused = 0
        self.first_ns = 0
        self.arrived_us = array("I")  # each answered probe: arrival, µs after the phase's first probe
        self.answer_ns = array("I")  # ... and ns from its arrival to the answer leaving

    def arrive(self, seq: int, now_ns: int) -> int:
        """Count an authenticated probe: its arrival number (0, 1, …) if new; -1 for a duplicate,
        -2 for a sequence number out of bounds (not counted at all)."""
        if not self.first_ns:
            self.first_ns = now_ns  # the phase's first authenticated probe: the sequence numbers' clock
        if seq >= self.cap or seq > ANSWER_RATE_PER_S * (now_ns - self.first_ns) / 1e9 + SEQ_SLACK:
            return -2
        byte, bit = divmod(seq, 8)
        if byte >= len(self.seen):
            self.seen.extend(bytes(byte + 1 - len(self.seen)))
        if self.seen[byte] >> bit & 1:
            self.duplicates += 1
            return -1
        self.seen[byte] |= 1 << bit
        if seq + 1 < self.probes:
            self.reordered += 1
        self.probes = max(self.probes, seq + 1)
        self.received += 1
        return self.received - 1

    def answered(self, arrived_ns: int, sent_ns: int, waited_ns: int = 0) -> None:
        """One probe answered: `waited_ns` is how long it waited before its callback (loop lateness)."""
        self.echoed += 1
        self.arrived_us.append(min((arrived_ns - self.first_ns) // 1000, 0xFFFFFFFF))
        self.answer_ns.append(min(sent_ns - arrived_ns + waited_ns, 0xFFFFFFFF))

    def summary(self) -> dict[str, int]:
        return {
            "probes": self.probes,
            "received": self.received,
            "echoed": self.echoed,
            "duplicates": self.duplicates,
            "reordered": self.reordered,
            "refused": self.refused,
        }


class UdpTest:
    """One test's key, its phases' counts, its answer budget (a token bucket) and its checked peer."""

    __slots__ = ("key", "test_id", "phases", "tokens", "refilled_ns", "peer")

    def __init__(self, key: bytes, test_id: str, duration_s: float) -> None:
        self.key = key
        self.test_id = udp_probe.id_bytes(test_id)
        transfer_cap = int(ANSWER_RATE_PER_S * (duration_s + TRANSFER_SLACK_S))
        self.phases = [PhaseCount(MAX_IDLE_PROBES), PhaseCount(transfer_cap), PhaseCount(transfer_cap)]
        self.tokens = float(ANSWER_BURST)
        self.refilled_ns = 0
        self.peer: Any = None  # the last source address whose network matched the token's

    def may_answer(self, now_ns: int) -> bool:
        """Take one answer from the budget: ANSWER_RATE_PER_S per second, bursts of ANSWER_BURST."""
        if self.refilled_ns:
            self.tokens = min(ANSWER_BURST, self.tokens + (now_ns - self.refilled_ns) * ANSWER_RATE_PER_S / 1e9)
        self.refilled_ns = now_ns
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def summary(self) -> dict[str, dict[str, int]]:
        """Per phase name, the counts the client and the receipt get."""
        return {name: phase.summary() for name, phase in zip(PHASES, self.phases, strict=True)}

    def answer_delays_ms(self) -> list[float]:
        """How long each answer took from the probe's arrival, ms, every phase."""
        return [ns / 1e6 for phase in self.phases for ns in phase.answer_ns]
