"""Simulated month of device-id traffic: honest CGNAT'd phones keep every sample, a minting machine gains little.

    python -m perf.sim_identity                 # a month, defaults of `ispeed serve`; prints a table
    python -m perf.sim_identity --json          # the same figures as one JSON object

Drives the server's real issuance code (`ispeed.server.devices.Issuer`, one shared instance as in
one `ispeed serve` process, with a simulated clock) and counts samples with methodology v1's rule:
a sample is a distinct (device, Vietnam-local day), where the device is the keyed hash of a
genuine server-issued id (`resolve_device`) or, for a test without one, the keyed hash of its IP.

Scenarios, each on its own /24:
  phones   N honest phones behind one carrier /24 (CGNAT: each test from a random address of the
           /24, Cellular), each gets an id on its first test and tests once a day;
  spike    the same with more first-time phones than the Cellular allowance on day 1 (a launch);
  minter   one machine on a fixed /24 asking for a new id before each of T tests a day;
  hoarder  one machine on a fixed /24 asking for T ids a day, keeping every id it got, and running
           one test a day with each id it holds (plus one without);
  cminter  the minter on a Cellular /24 (a phone hotspot): it gets the Cellular allowance.
Columns: ids issued and refused; samples; `bound` (what spec/identity.md promises: phones and
spike N × days when N ≤ the allowance, minter allowance + 1 a day, hoarder allowance × d + 1 on day
d); `self-chosen` (samples had every client named its own ids, as before server-issued ids);
`ip-only` (samples had every test counted under its IP); `net-cap` (samples had each /24 been
capped at the fixed allowance of samples a day instead: what such a cap would cost CGNAT'd phones).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from ispeed.core.timeutil import VN_TZ
from ispeed.server.devices import Issuer, resolve_device
from ispeed.server.privacy import keyed_hash

SECRET = b"simulation-secret-not-for-production"
CARRIER = "198.51.100."  # Cellular /24 of the honest phones
SPIKE_CARRIER = "198.51.101."  # Cellular /24 of the launch-day phones
CELLULAR_MINTER = "198.51.102."  # Cellular /24 of the hotspot minter
MINTER_IP = "203.0.113.7"
HOARDER_IP = "203.0.114.7"


@dataclass
class Scenario:
    name: str
    clients: int
    issued: int = 0
    refused: int = 0
    tests: list[tuple[str, str, dt.date, str]] = field(default_factory=list)  # (device, ip hash, day, own id)

    def record(self, issuer: Issuer, ip: str, t: float, presented: str, own_id: str) -> None:
        device_hash, _ = resolve_device(issuer.secret, presented)
        self.tests.append(
            (device_hash, keyed_hash(issuer.secret, "ip", ip), dt.datetime.fromtimestamp(t, VN_TZ).date(), own_id)
        )

    def ask(self, issuer: Issuer, ip: str, held: str = "") -> str:
        """The id the client presents with its next test ('' when the server issued none)."""
        grant = issuer.request(ip, held or None)
        self.issued += grant.status == "issued"
        self.refused += grant.status == "refused"
        return grant.device_id if grant.status != "refused" else ""

    def samples_by_day(self) -> dict[dt.date, int]:
        """Methodology v1: distinct (device_hash or ip_hash, local day)."""
        per_day: dict[dt.date, set[str]] = defaultdict(set)
        for device_hash, ip_hash, day, _ in self.tests:
            per_day[day].add(device_hash or ip_hash)
        return {day: len(devices) for day, devices in sorted(per_day.items())}

    def alternative(self, key: Callable[[tuple[str, str, dt.date, str]], str]) -> int:
        return len({(key(test), test[2]) for test in self.tests})


def simulate(
    phones: int = 1000,
    spike_phones: int = 1536,
    days: int = 30,
    tests_per_day: int = 100,
    per_network: int = 16,
    per_cellular_network: int = 1024,
    start: dt.date = dt.date(2025, 7, 1),
    seed: int = 1,
) -> dict[str, object]:
    rng = random.Random(seed)
    now = [0.0]
    issuer = Issuer(
        SECRET,
        per_network,
        per_cellular_network,
        is_cellular=lambda ip: ip.startswith(("198.51.100.", "198.51.101.", "198.51.102.")),
        clock=lambda: now[0],
    )
    sc = {
        name: Scenario(name, n)
        for name, n in (("phones", phones), ("spike", spike_phones), ("minter", 1), ("hoarder", 1), ("cminter", 1))
    }
    held = {"phones": [""] * phones, "spike": [""] * spike_phones}
    hoard: list[str] = []
    serial = [0]

    def cgnat(prefix: str) -> str:
        return prefix + str(rng.randrange(1, 255))

    for d in range(days):
        day = start + dt.timedelta(days=d)
        midnight = dt.datetime.combine(day, dt.time(), VN_TZ).timestamp()
        events: list[tuple[float, Callable[[float], None]]] = []

        def phone(kind: str, i: int, prefix: str) -> Callable[[float], None]:
            def act_phone(at: float) -> None:
                ip = cgnat(prefix)
                held[kind][i] = sc[kind].ask(issuer, ip, held[kind][i])
                sc[kind].record(issuer, ip, at, held[kind][i], f"{kind}-{i}")

            return act_phone

        def minter(kind: str, ip_of: Callable[[], str]) -> Callable[[float], None]:
            def act_minter(at: float) -> None:
                ip = ip_of()
                serial[0] += 1
                sc[kind].record(issuer, ip, at, sc[kind].ask(issuer, ip), f"self-{serial[0]}")

            return act_minter

        def hoarder_mints(t: float) -> None:
            got = sc["hoarder"].ask(issuer, HOARDER_IP)
            if got:
                hoard.append(got)

        def hoarder_tests(t: float) -> None:
            for k, device_id in enumerate(hoard + [""]):
                sc["hoarder"].record(issuer, HOARDER_IP, t + k, device_id, f"self-{serial[0]}-{k}")
                serial[0] += 1
            for _ in range(tests_per_day - len(hoard) - 1):  # its remaining tests of the day, no id
                sc["hoarder"].record(issuer, HOARDER_IP, t, "", f"self-{serial[0]}")
                serial[0] += 1

        events += [(midnight + rng.uniform(0, 86400), phone("phones", i, CARRIER)) for i in range(phones)]
        events += [(midnight + rng.uniform(0, 86400), phone("spike", i, SPIKE_CARRIER)) for i in range(spike_phones)]
        events += [
            (midnight + rng.uniform(0, 86400), minter("minter", lambda: MINTER_IP)) for _ in range(tests_per_day)
        ]
        events += [
            (midnight + rng.uniform(0, 86400), minter("cminter", lambda: cgnat(CELLULAR_MINTER)))
            for _ in range(tests_per_day)
        ]
        events += [(midnight + 3600 + k, hoarder_mints) for k in range(tests_per_day)]
        events.append((midnight + 7200, hoarder_tests))
        for t, act in sorted(events, key=lambda e: e[0]):
            now[0] = t
            act(t)

    out: dict[str, object] = {
        "days": days,
        "per_network": per_network,
        "per_cellular_network": per_cellular_network,
        "tests_per_day": tests_per_day,
    }
    for name, s in sc.items():
        by_day = list(s.samples_by_day().values())
        if name in ("phones", "spike"):
            allowance = per_cellular_network
            bound = s.clients * days if s.clients <= allowance else None
        elif name == "hoarder":
            bound = sum(per_network * (d + 1) + 1 for d in range(days))
        else:
            allowance = per_cellular_network if name == "cminter" else per_network
            bound = min(allowance + 1, tests_per_day) * days
        out[name] = {
            "clients": s.clients,
            "tests": len(s.tests),
            "ids_issued": s.issued,
            "ids_refused": s.refused,
            "samples": sum(by_day),
            "samples_by_day": by_day,
            "max_samples_per_day": max(by_day, default=0),
            "bound": bound,
            "self_chosen_samples": s.alternative(lambda test: test[3]),
            "ip_only_samples": s.alternative(lambda test: test[1]),
            "network_cap_samples": sum(min(n, per_network) for n in by_day),
        }
    return out


def table(result: dict[str, object]) -> str:
    head = (
        f"{result['days']} days; allowances: {result['per_network']} ids per fixed /24 and day, "
        f"{result['per_cellular_network']} per Cellular /24; attackers try {result['tests_per_day']} tests a day"
    )
    cols = (
        "scenario",
        "clients",
        "tests",
        "issued",
        "refused",
        "samples",
        "bound",
        "max/day",
        "self-chosen",
        "ip-only",
        "net-cap",
    )
    rows = [cols]
    for name in ("phones", "spike", "minter", "hoarder", "cminter"):
        r = result[name]
        assert isinstance(r, dict)
        rows.append(
            (
                name,
                r["clients"],
                r["tests"],
                r["ids_issued"],
                r["ids_refused"],
                r["samples"],
                "-" if r["bound"] is None else r["bound"],
                r["max_samples_per_day"],
                r["self_chosen_samples"],
                r["ip_only_samples"],
                r["network_cap_samples"],
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(cols))]
    lines = [head] + [
        "  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--phones", type=int, default=1000, help="honest phones behind one carrier /24 (default 1000)")
    p.add_argument("--spike-phones", type=int, default=1536, help="first-time phones on launch day (default 1536)")
    p.add_argument("--days", type=int, default=30, help="days simulated (default 30)")
    p.add_argument("--tests-per-day", type=int, default=100, help="tests an attacking machine runs a day (default 100)")
    p.add_argument("--per-network", type=int, default=16, help="as `ispeed serve --device-ids-per-network`")
    p.add_argument(
        "--per-cellular-network", type=int, default=1024, help="as `ispeed serve --device-ids-per-cellular-network`"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = p.parse_args(argv)
    if min(args.phones, args.spike_phones, args.days, args.tests_per_day) < 1 or args.days > 366:
        p.error("--phones, --spike-phones, --tests-per-day must be positive and --days 1 to 366")
    t0 = time.perf_counter()
    result = simulate(
        args.phones,
        args.spike_phones,
        args.days,
        args.tests_per_day,
        args.per_network,
        args.per_cellular_network,
        seed=args.seed,
    )
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        sys.stdout.write(table(result) + f"({time.perf_counter() - t0:.1f} s)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
