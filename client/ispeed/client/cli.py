"""`ispeed test`: one speed test against a server, with live progress or one JSON object."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("test", help="run one speed test against a server")
    p.add_argument("--server", required=True, help="test server base URL, e.g. http://127.0.0.1:8080")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--no-submit", action="store_true", help="measure only; do not store the result")
    p.add_argument("--streams", type=int, default=4, help="parallel TCP streams (default 4)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per download/upload phase (default 10)")
    p.add_argument("--network-type", default="fixed", help="fixed, mobile or 5g (default fixed)")
    p.add_argument("--lat", type=float, help="latitude of this device (optional, for commune placement)")
    p.add_argument("--lon", type=float, help="longitude of this device")
    p.add_argument("--device-id", default="", help="a stable id for this device (stored only as a keyed hash)")
    p.set_defaults(func=run_test)


def run_test(args: argparse.Namespace) -> int:
    import asyncio

    from ispeed.client.config import TestConfig
    from ispeed.client.engine import Engine
    from ispeed.client.progress import TerminalProgress

    config = TestConfig(
        server_url=args.server, streams=args.streams, duration_s=args.duration,
        network_type=args.network_type, lat=args.lat, lon=args.lon, submit=not args.no_submit,
        device_id=args.device_id,
    )
    progress = TerminalProgress(sys.stderr, config.duration_s)
    result = asyncio.run(Engine(config, progress).run())
    progress.done()
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        sys.stdout.write(format_result(result))
    return 0


def format_result(r: dict[str, Any]) -> str:
    def ms(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f} ms"

    lines = [
        f"test {r['test_id']} on {r['server']}",
        f"  download  {r['download_mbps']:10.1f} Mbps   ({r['streams']} streams, {r['duration_s']:g} s)",
        f"  upload    {r['upload_mbps']:10.1f} Mbps   (server-measured)",
        f"  latency   {ms(r['latency_ms'])}   jitter {ms(r['jitter_ms'])}",
        f"  loaded latency: download {ms(r['loaded_latency_down_ms'])}, upload {ms(r['loaded_latency_up_ms'])}",
        "  result submitted" if r["submitted"] else "  result not submitted (--no-submit)",
    ]
    return "\n".join(lines) + "\n"
