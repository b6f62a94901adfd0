"""Accuracy matrix: `ispeed test` through emulated links, measured against the links' truth.

    sudo python perf/accuracy.py                       # full matrix, both congestion controls
    sudo python perf/accuracy.py --quick               # CI version: 2 points × 2 CCs, 5 s phases
    sudo python perf/accuracy.py --points 100x30,100x30l1 --cc cubic --iperf all

Per congestion control one `netlab.NetLab` (server | tbf | delay line | tbf | client namespaces) and
one `ispeed serve` in its server namespace; each point reshapes the link and runs
`ispeed test --json` in the client namespace.
Truth: shaped rate × 1448/1514 for download and upload; the added RTT for idle latency.
Targets (issue 9): loss-free points within ±2 % of truth each way; lossy points within ±5 % of
iperf3 (same streams, same CC, `-O 2`, `-l 1M`) through the same link; idle latency within
±(1 ms + 3 %) of the added RTT; loaded latency above idle. Writes JSON and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from netlab import SERVER_ADDR, LinkSpec, NetLab, sh, unavailable  # noqa: E402
from serve_process import ServeProcess  # noqa: E402

FULL_POINTS = "20x10,20x30,20x80,100x10,100x30,100x80,500x10,500x30,500x80,100x30l1"
QUICK_POINTS = "100x10,20x80"
RATE_TOLERANCE = 0.02
LOSSY_TOLERANCE = 0.05


def parse_point(text: str) -> LinkSpec:
    """`RATExRTT` or `RATExRTTlLOSS` (Mbit/s, ms, percent): `100x30l1` is 100 Mbit/s, 30 ms, 1 %."""
    try:
        rate, rest = text.lower().split("x", 1)
        rtt, _, loss = rest.partition("l")
        return LinkSpec(float(rate), float(rtt), float(loss) / 100 if loss else 0.0)
    except ValueError:
        raise SystemExit(f"--points: {text!r} is not RATExRTT[lLOSS] (e.g. 100x30 or 100x30l1)") from None


def iperf3(lab: NetLab, streams: int, duration_s: float, reverse: bool) -> float:
    """Receiver-side iperf3 Mbit/s through the lab (`-O 2`: slow start omitted)."""
    server = subprocess.Popen(lab.in_server(["iperf3", "-s", "-1", "-B", SERVER_ADDR]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        args = ["iperf3", "-c", SERVER_ADDR, "-P", str(streams), "-t", str(int(duration_s)), "-O", "2",
                "-l", "1M", "-J", *(["-R"] if reverse else [])]
        out = subprocess.run(lab.in_client(args), capture_output=True, text=True, timeout=duration_s + 60)
        return float(json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"]) / 1e6
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(timeout=10)


def run_point(lab: NetLab, url: str, link: LinkSpec, args: argparse.Namespace) -> dict[str, Any]:
    """Reshape the lab to `link`, run one `ispeed test` (and iperf3 references), judge it."""
    lab.set_link(link)
    row: dict[str, Any] = {"rate_mbit": link.rate_mbit, "rtt_ms": link.rtt_ms, "loss": link.loss, "cc": lab.cc,
                           "truth_mbps": round(link.truth_mbps, 2), "streams": args.streams,
                           "duration_s": args.duration}
    cmd = lab.in_client([sys.executable, "-m", "ispeed.cli.main", "test", "--server", url, "--json",
                         "--no-submit", "--streams", str(args.streams), "--duration", str(args.duration)])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=2 * args.duration + 90)
    if out.returncode != 0:
        raise RuntimeError(f"ispeed test failed at {link.label()} {lab.cc}: {out.stderr.strip()}")
    result = json.loads(out.stdout)
    qdisc = lab.qdisc_stats()
    if args.iperf == "all" or (args.iperf == "lossy" and link.loss > 0):
        row["iperf_down_mbps"] = round(iperf3(lab, args.streams, args.duration, reverse=True), 2)
        row["iperf_up_mbps"] = round(iperf3(lab, args.streams, args.duration, reverse=False), 2)
    lab.set_link(link)   # stop the delay line to read its counters (late frames = lab not faithful)
    row.update({k: result.get(k) for k in ("download_mbps", "upload_mbps", "upload_mbps_client", "latency_ms",
                                           "jitter_ms", "loaded_latency_down_ms", "loaded_latency_up_ms",
                                           "tcp_min_rtt_ms")})
    row["delayline"] = lab.delayline_stats.replace("\n", "; ")
    row["tbf_dropped"] = [int(p.split("dropped ")[1].split(",")[0]) for p in qdisc.split("Sent")[1:]]
    return judge(row)


def judge(row: dict[str, Any]) -> dict[str, Any]:
    """Add errors against the reference and pass/fail per target."""
    lossy = row["loss"] > 0
    ref_down = row.get("iperf_down_mbps") if lossy else row["truth_mbps"]
    ref_up = row.get("iperf_up_mbps") if lossy else row["truth_mbps"]
    tol = LOSSY_TOLERANCE if lossy else RATE_TOLERANCE
    row["reference"] = "iperf3" if lossy else "truth"
    checks = {}
    for key, measured, ref in (("down", row["download_mbps"], ref_down), ("up", row["upload_mbps"], ref_up)):
        if ref:
            row[f"{key}_err"] = round(measured / ref - 1, 4)
            checks[key] = abs(row[f"{key}_err"]) <= tol
    lat = row["latency_ms"]
    row["latency_err_ms"] = round(lat - row["rtt_ms"], 3)
    checks["latency"] = abs(row["latency_err_ms"]) <= 1 + 0.03 * row["rtt_ms"]
    if not lossy:   # with random loss TCP may never fill the bottleneck queue
        checks["loaded"] = (row["loaded_latency_down_ms"] or 0) > lat and (row["loaded_latency_up_ms"] or 0) > lat
    row["checks"] = checks
    row["ok"] = all(checks.values())
    return row


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [f"# ispeed accuracy matrix ({meta['started']})", "",
             f"Load before: {meta['load_before']}; streams {meta['streams']}, phases {meta['duration_s']} s. "
             "Truth = rate × 1448/1514; lossy points compare with iperf3 (-O 2, -l 1M, same streams & CC).", "",
             "| CC | link | truth | download (err) | upload (err) | iperf3 down/up | idle RTT (err) | "
             "loaded down/up | ok |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['cc']} | {r['link']} | | error: {r['error']} | | | | | ✗ |")
            continue
        ip = (f"{r['iperf_down_mbps']:.1f} / {r['iperf_up_mbps']:.1f}" if "iperf_down_mbps" in r else "")
        failed = ", ".join(k for k, v in r["checks"].items() if not v)
        lines.append(
            f"| {r['cc']} | {r['link']} | {r['truth_mbps']:.1f} | {r['download_mbps']:.1f} ({r.get('down_err', 0):+.1%}) | "
            f"{r['upload_mbps']:.1f} ({r.get('up_err', 0):+.1%}) | {ip} | {r['latency_ms']:.2f} "
            f"({r['latency_err_ms']:+.2f}) | {r['loaded_latency_down_ms']:.1f} / {r['loaded_latency_up_ms']:.1f} | "
            f"{'✓' if r['ok'] else '✗ ' + failed} |")
    passed = sum(1 for r in rows if r.get("ok"))
    lines += ["", f"{passed}/{len(rows)} points meet their targets."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", help=f"comma-separated RATExRTT[lLOSS] (default: {FULL_POINTS})")
    parser.add_argument("--cc", help="comma-separated congestion controls (default: the kernel's default,cubic)")
    parser.add_argument("--duration", type=float, help="seconds per phase (default 10; 5 with --quick)")
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--iperf", choices=("none", "lossy", "all"), default="lossy",
                        help="iperf3 references: lossy points only (default), every point, or none")
    parser.add_argument("--quick", action="store_true", help=f"CI version: {QUICK_POINTS}, 5 s phases")
    parser.add_argument("--seed", type=int, default=1, help="loss pattern seed of the delay line")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "accuracy"),
                        help="results path without extension: writes .json and .md")
    args = parser.parse_args(argv)
    reason = unavailable()
    if reason:
        print(f"accuracy: cannot run the network lab: {reason}", file=sys.stderr)
        return 77
    args.duration = args.duration or (5.0 if args.quick else 10.0)
    points = [parse_point(p) for p in (args.points or (QUICK_POINTS if args.quick else FULL_POINTS)).split(",")]
    default_cc = sh("sysctl", "-n", "net.ipv4.tcp_congestion_control").strip()
    ccs = (args.cc or ",".join(dict.fromkeys([default_cc, "cubic"]))).split(",")
    meta = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_before": os.getloadavg()[0],
            "streams": args.streams, "duration_s": args.duration, "kernel": os.uname().release}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ispeed-acc-") as tmp:
        for cc in ccs:
            with NetLab(points[0], cc=cc, seed=args.seed) as lab:
                serve = ServeProcess(f"chdb:{tmp}/{cc}", extra=["--host", SERVER_ADDR])
                serve.args = lab.in_server(serve.args)
                with serve:
                    for link in points:
                        try:
                            row = run_point(lab, serve.url, link, args)
                        except Exception as exc:  # noqa: BLE001 - a failed point is reported, the rest run
                            row = {"cc": cc, "rate_mbit": link.rate_mbit, "rtt_ms": link.rtt_ms,
                                   "loss": link.loss, "error": str(exc)[:300], "ok": False}
                        row["link"] = link.label()
                        row["load"] = os.getloadavg()[0]
                        rows.append(row)
                        print(json.dumps(row), file=sys.stderr, flush=True)
    meta["load_after"] = os.getloadavg()[0]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    table = markdown(rows, meta)
    out.with_suffix(".md").write_text(table)
    print(table)
    return 0 if all(r.get("ok") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
