"""GPS and IP lookups per second in one process, with ratios against references run in the same invocation.

    python -m perf.bench_geo [--n 200000]

References: a raw scipy cKDTree single-point query (what a naive locator would cost per lookup)
and a plain Python dict lookup loop (the floor of any per-call Python work). Targets of the
admin_geo component: >= 100,000 GPS and >= 200,000 IP lookups/s.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import random
import sys
import tempfile
import time
from pathlib import Path

from ispeed.admin_geo import DEMO_PREFIXES, Geo, GeoConfig, build_mmdb, communes
from ispeed.admin_geo.mmdb import PrefixRow


def rate(fn, items) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for item in items:
        fn(*item)
    return len(items) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="lookups per measurement")
    args = parser.parse_args()
    rng = random.Random(1)
    units = communes()
    # GPS: positions scattered around commune centroids (where people are), ~2 km jitter.
    gps = [(c.lat + rng.gauss(0, 0.02), c.lon + rng.gauss(0, 0.02)) for c in (rng.choice(units) for _ in range(args.n))]
    geo = Geo()
    geo.locate(21.0, 105.8)  # build the KD-tree outside the timing
    gps_cold = rate(geo.locate, gps)
    gps_warm = rate(geo.locate, gps)
    tree = geo.locator._tree
    xyz = [
        (
            math.cos(math.radians(a)) * math.cos(math.radians(o)),
            math.cos(math.radians(a)) * math.sin(math.radians(o)),
            math.sin(math.radians(a)),
        )
        for a, o in gps
    ]
    kd_ref = rate(lambda p: tree.query(p), [(p,) for p in xyz[: args.n // 4]])

    # IP: a table of 5,000 /24 and /48 prefixes, addresses drawn from them.
    rows = list(DEMO_PREFIXES)
    nets4 = [ipaddress.ip_network(f"{10 + i // 256 % 200}.{i % 256}.{i // 51200}.0/24") for i in range(4000)]
    nets6 = [ipaddress.ip_network(f"2001:db8:{i:x}::/48") for i in range(1, 1001)]
    rows += [PrefixRow(str(n), 7552 + i % 3, None, f"{[1, 79, 48][i % 3]:02d}") for i, n in enumerate(nets4 + nets6)]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.mmdb"
        build_mmdb(rows, db)
        ips = [
            str(rng.choice(nets4)[rng.randrange(1, 255)])
            if rng.random() < 0.8
            else str(rng.choice(nets6)[rng.randrange(1, 1 << 16)])
            for _ in range(args.n)
        ]
        ipgeo = Geo(GeoConfig(asn_db=db, city_db=db))
        ip_rate = rate(ipgeo.lookup_ip, [(ip,) for ip in ips])
        reader = ipgeo.ip_locator._asn
        raw_rate = rate(reader.get, [(ip,) for ip in ips])
        ipgeo.close()
    table = {ip: i for i, ip in enumerate(ips)}
    dict_ref = rate(table.get, [(ip,) for ip in ips])

    print(f"GPS locate (cold grid):  {gps_cold:>12,.0f} lookups/s")
    print(
        f"GPS locate (warm grid):  {gps_warm:>12,.0f} lookups/s   target 100,000: "
        f"{'met' if gps_warm >= 100_000 else 'NOT met'}"
    )
    print(f"  reference cKDTree.query single point: {kd_ref:>12,.0f}/s  -> locate is {gps_warm / kd_ref:.2f}x")
    print(
        f"IP lookup_ip:            {ip_rate:>12,.0f} lookups/s   target 200,000: "
        f"{'met' if ip_rate >= 200_000 else 'NOT met'}"
    )
    print(f"  reference maxminddb Reader.get:       {raw_rate:>12,.0f}/s  -> lookup_ip is {ip_rate / raw_rate:.2f}x")
    print(f"  reference dict.get loop:              {dict_ref:>12,.0f}/s  -> lookup_ip is {ip_rate / dict_ref:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
