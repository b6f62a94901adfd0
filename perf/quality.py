"""Quality lab: UDP loss and delay (method v2) through emulated links whose truth is known.

    sudo python -m perf.quality              # 50x40 (control), 50x40d1, 50x40u1, 50x40d5, 50x40u5
    sudo python -m perf.quality --quick      # CI version: 50x40d1 and 50x40u5, one run each (~1.5 min)
    sudo python -m perf.quality --points 50x40u5 --runs 3 --probes 2000

Points are RATExRTT[dPCT][uPCT]: `50x40d1` is 50 Mbit/s × 40 ms with 1 % of the frames dropped
server → client only (`perf/delayline.c`, seeded per run), `u` client → server. Each run is one
`ispeed test --json --no-submit` in the client namespace of a `netlab.NetLab`, against an
`ispeed serve` in its server namespace, with `--udp-probes PROBES --udp-rate 200` in the idle
phase (2,000 probes, 10 s) and 5 s transfer phases; the delay line restarts before each run with
the run's own seed.

The delay line also counts the idle probes and echoes it drops (`probes_lost`): the measured
losses must equal them exactly (`counted_exactly`), datagram for datagram. Targets, per run and
pooled over a point's runs (counts summed):
- the lossy direction within 3 binomial standard errors of the injected loss, SE = sqrt(p(1 − p) / n)
  with p the injected loss and n the probes sent that way (upstream: the server's `probes`;
  downstream: the echoes it sent);
- pooled, within ±0.5 percentage points, judged where the pooled n makes 3 SE ≤ 0.5 pp
  (n ≥ 17,100 at 5 %: the default 9 runs × 2,000 = 18,000 probes give 3 SE = 0.49 pp);
- the other direction under 0.2 %;
- the idle UDP round trip median within 1 ms + 3 % of the added RTT.
A run outside 3 SE of the injected loss is not held against the method when its losses were
counted exactly and the line's own drops were that far from the injected share (`line_outlier`:
the seeded draws missed; expected in ~0.3 % of runs).
The loaded phases' loss and round trips are reported beside them (tbf tail drops, queueing).
A run whose delay line fell more than STALL_LIMIT_MS behind is run again (up to `--attempts`),
as in perf/accuracy.py: the first within the limit is judged, else the least late. The server and
the client run at `nice -n -10` (NICE): on this shared 2-core machine other people's tests would
otherwise add their scheduling delay to the server's answers (the delay line, which stands in
for hardware, runs SCHED_FIFO for the same reason); the client times echoes by the kernel's
receive time already.
Writes perf/results/quality.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.serve_process import ServeProcess

from perf import lab_results
from perf.accuracy import ATTEMPTS, STALL_LIMIT_MS, git_state, late_max_ms
from perf.netlab import SERVER_ADDR, LinkSpec, NetLab, unavailable

FULL_POINTS = "50x40,50x40d1,50x40u1,50x40d5,50x40u5"
QUICK_POINTS = "50x40d1,50x40u5"
PROBES = 2000  # idle probes per run: 10 s at RATE_PER_S
RATE_PER_S = 200.0
RUNS = 9  # per lossy point: 18,000 probes pooled, 3 SE <= 0.5 pp at 5 %
CONTROL_RUNS = 2  # a loss-free point only checks that nothing is lost and the round trip
DURATION_S = 5.0
STREAMS = 4
SE_LIMIT = 3.0
POOLED_LIMIT_PP = 0.5
OTHER_LIMIT_PCT = 0.2
NICE = ["nice", "-n", "-10"]
_POINT = re.compile(r"(\d+(?:\.\d+)?)x(\d+(?:\.\d+)?)(?:d(\d+(?:\.\d+)?))?(?:u(\d+(?:\.\d+)?))?$")


def parse_point(text: str) -> LinkSpec:
    """`RATExRTT[dPCT][uPCT]`: `50x40d1` is 50 Mbit/s, 40 ms, 1 % loss downstream only."""
    m = _POINT.match(text.strip().lower())
    if not m:
        raise SystemExit(f"--points: {text!r} is not RATExRTT[dPCT][uPCT] (e.g. 50x40d1 or 50x40u5)")
    rate, rtt, down, up = m.groups()
    return LinkSpec(float(rate), float(rtt), 0.0, float(down or 0) / 100, float(up or 0) / 100)


def point_name(link: LinkSpec) -> str:
    name = f"{link.rate_mbit:g}x{link.rtt_ms:g}"
    name += f"d{link.down_loss * 100:g}" if link.down_loss else ""
    return name + (f"u{link.up_loss * 100:g}" if link.up_loss else "")


def ispeed_test(lab: NetLab, url: str, probes: int) -> dict[str, Any]:
    """One `ispeed test --json --no-submit` in the client namespace."""
    cmd = lab.in_client(
        [
            *NICE,
            sys.executable,
            "-m",
            "ispeed.cli.main",
            "test",
            "--server",
            url,
            "--json",
            "--no-submit",
            "--streams",
            str(STREAMS),
            "--duration",
            f"{DURATION_S:g}",
            "--udp-probes",
            str(probes),
            "--udp-rate",
            f"{RATE_PER_S:g}",
        ]
    )
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=probes / RATE_PER_S + 2 * DURATION_S + 90)
    if out.returncode != 0:
        raise RuntimeError(f"ispeed test failed: {out.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def run_once(lab: NetLab, url: str, link: LinkSpec, seed: int, probes: int, attempts: int) -> dict[str, Any]:
    """One judged run (stalled attempts repeated with the same seed); the idle counts and figures."""
    tries: list[dict[str, Any]] = []
    for _ in range(attempts):
        lab.set_link(link, seed=seed)
        result = ispeed_test(lab, url, probes)
        lab.set_link(link, seed=seed)  # stop the delay line: its counters for this run
        stats = lab.delayline_stats.replace("\n", "; ")
        idle = (result.get("phases") or {}).get("idle") or {}
        tries.append(
            {
                "seed": seed,
                "udp": result.get("udp"),
                "probes": idle.get("probes"),
                "received": idle.get("received"),
                "echoed": idle.get("echoed"),
                "echoes": idle.get("echoes"),
                "probes_client": idle.get("probes_client"),
                "line": line_counts(stats),
                "loss_up_pct": result.get("loss_up_pct"),
                "loss_down_pct": result.get("loss_down_pct"),
                "udp_rtt_ms": result.get("udp_rtt_ms"),
                "udp_rtt_p90_ms": result.get("udp_rtt_p90_ms"),
                "latency_ms": result.get("latency_ms"),
                "loaded": {
                    name: {k: p.get(k) for k in ("probes", "loss_up_pct", "loss_down_pct", "rtt_ms", "rtt_p90_ms")}
                    for name, p in (result.get("phases") or {}).items()
                    if name != "idle"
                },
                "delayline": stats,
                "late_max_ms": late_max_ms(stats),
            }
        )
        if tries[-1]["late_max_ms"] <= STALL_LIMIT_MS:
            break
    chosen = next((t for t in tries if t["late_max_ms"] <= STALL_LIMIT_MS), min(tries, key=lambda t: t["late_max_ms"]))
    chosen = {**chosen, "attempt": tries.index(chosen) + 1, "attempt_lates_ms": [t["late_max_ms"] for t in tries]}
    return chosen


_LINE = re.compile(r"delayline (\w+)->(\w+) [^;]*?probes_taken=(\d+)/\d+/\d+ probes_lost=(\d+)/\d+/\d+")


def line_counts(stats: str) -> dict[str, dict[str, int]]:
    """What the delay line did to the idle phase's datagrams: probes (up) and echoes (down) it took
    in and how many of them it dropped, from its counters (`delayline.c`, `probes_taken`, `probes_lost`)."""
    out = {}
    for m in _LINE.finditer(stats):
        out["down" if m.group(1) == "mr" else "up"] = {"taken": int(m.group(3)), "lost": int(m.group(4))}
    return out


def counted_exactly(run: dict[str, Any]) -> bool:
    """The measured idle losses are exactly the line's drops: upstream, the probes the client sent
    less those the server received; downstream, the echoes the server sent less those the client got."""
    line = run.get("line") or {}
    up, down = line.get("up"), line.get("down")
    if not up or not down or run.get("probes_client") is None:
        return False
    return (
        up["taken"] == run["probes_client"]
        and up["lost"] == run["probes_client"] - run["received"]
        and down["taken"] == run["echoed"]
        and down["lost"] == run["echoed"] - run["echoes"]
    )


def se_pp(p: float, n: int) -> float:
    """Binomial standard error of a loss share p over n probes, in percentage points."""
    return 100 * math.sqrt(p * (1 - p) / n) if n > 0 else math.inf


def judge_loss(measured_pct: float | None, truth: float, n: int, pooled: bool) -> dict[str, Any]:
    """The checks of one direction's loss figure against the injected share `truth`."""
    if measured_pct is None:
        return {"ok": False, "why": "no figure"}
    if truth == 0:
        return {"ok": measured_pct < OTHER_LIMIT_PCT, "limit_pct": OTHER_LIMIT_PCT}
    se = se_pp(truth, n)
    out: dict[str, Any] = {
        "se_pp": round(se, 3),
        "z": round((measured_pct - 100 * truth) / se, 2),
        "within_3se": abs(measured_pct - 100 * truth) <= SE_LIMIT * se,
    }
    if pooled and SE_LIMIT * se <= POOLED_LIMIT_PP:
        out["within_0p5pp"] = abs(measured_pct - 100 * truth) <= POOLED_LIMIT_PP
    out["ok"] = out["within_3se"] and out.get("within_0p5pp", True)
    return out


def judge(figures: dict[str, Any], link: LinkSpec, pooled: bool) -> dict[str, Any]:
    """Checks of one run's (or the pooled) idle figures.

    `counted_exactly`: the losses measured are the line's own drops, datagram for datagram. A run
    outside 3 SE of the injected loss whose line itself dropped a share that far from it (its
    seeded draws, not the measurement) is marked `line_outlier` and not held against the method.
    """
    exact = counted_exactly(figures)
    checks: dict[str, Any] = {"udp": figures.get("udp") == "ok", "counted_exactly": exact}
    for way, truth, sent in (("down", link.down_loss, "echoed"), ("up", link.up_loss, "probes")):
        check = judge_loss(figures.get(f"loss_{way}_pct"), truth, figures.get(sent) or 0, pooled)
        line = (figures.get("line") or {}).get(way)
        if line and line["taken"]:
            check["line_pct"] = round(100 * line["lost"] / line["taken"], 4)
            if not check["ok"] and exact and truth and "within_0p5pp" not in check:
                line_z = (check["line_pct"] - 100 * truth) / se_pp(truth, line["taken"])
                check["line_outlier"] = abs(line_z) > SE_LIMIT
                check["ok"] = check["line_outlier"]
        checks[f"loss_{way}"] = check
    rtt = figures.get("udp_rtt_ms")
    checks["rtt"] = rtt is not None and abs(rtt - link.rtt_ms) <= 1 + 0.03 * link.rtt_ms
    return checks


def _ok(checks: dict[str, Any]) -> bool:
    return all(v["ok"] if isinstance(v, dict) else v for v in checks.values())


def pool(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The runs' idle counts summed: one binomial sample per direction."""
    probes = sum(r["probes"] or 0 for r in runs)
    received = sum(r["received"] or 0 for r in runs)
    echoed = sum(r["echoed"] or 0 for r in runs)
    echoes = sum(r["echoes"] or 0 for r in runs)
    rtts = sorted(r["udp_rtt_ms"] for r in runs if r["udp_rtt_ms"] is not None)
    line = {
        way: {k: sum(((r.get("line") or {}).get(way) or {}).get(k, 0) for r in runs) for k in ("taken", "lost")}
        for way in ("up", "down")
    }
    return {
        "udp": "ok" if all(r["udp"] == "ok" for r in runs) else "blocked",
        "probes_client": sum(r.get("probes_client") or 0 for r in runs),
        "line": line,
        "probes": probes,
        "received": received,
        "echoed": echoed,
        "echoes": echoes,
        "loss_up_pct": round(100 * (probes - received) / probes, 4) if probes else None,
        "loss_down_pct": round(100 * (echoed - echoes) / echoed, 4) if echoed else None,
        "udp_rtt_ms": rtts[len(rtts) // 2] if rtts else None,  # the median run's median
    }


def run_point(lab: NetLab, url: str, link: LinkSpec, args: argparse.Namespace, base_seed: int) -> dict[str, Any]:
    n_runs = args.runs if (link.down_loss or link.up_loss) else min(args.runs, CONTROL_RUNS)
    runs = []
    for k in range(n_runs):
        run = run_once(lab, url, link, base_seed + k, args.probes, args.attempts)
        run["checks"] = judge(run, link, pooled=False)
        run["ok"] = _ok(run["checks"])
        run["load"] = round(os.getloadavg()[0], 2)
        runs.append(run)
        print(
            json.dumps({"point": point_name(link), **{k: v for k, v in run.items() if k != "delayline"}}),
            file=sys.stderr,
            flush=True,
        )
    pooled = pool(runs)
    checks = judge(pooled, link, pooled=True)
    return {
        "point": point_name(link),
        "link": link.label(),
        "rate_mbit": link.rate_mbit,
        "rtt_ms": link.rtt_ms,
        "loss_down": link.down_loss,
        "loss_up": link.up_loss,
        "probes_per_run": args.probes,
        "rate_per_s": RATE_PER_S,
        "pooled": pooled,
        "checks": checks,
        "runs_ok": sum(r["ok"] for r in runs),
        "ok": _ok(checks) and all(r["ok"] for r in runs),
        "runs": runs,
    }


def _pct(v: float | None) -> str:
    return "" if v is None else f"{v:.3f} %"


def _loss_cell(measured: float | None, check: dict[str, Any]) -> str:
    cell = _pct(measured)
    if "z" in check:
        cell += f" (z {check['z']:+.2f}, SE {check['se_pp']:.2f} pp)"
    return cell + ("" if check.get("ok") else " ✗")


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"# ispeed quality lab: UDP loss and delay ({meta['started']})",
        "",
        f"Load before: {meta['load_before']:.2f}, after {meta.get('load_after', 0):.2f}; git {meta['git']['head']}; "
        f"seed base {meta['seed']}. Each run: `ispeed test --udp-probes {meta['probes']} --udp-rate {RATE_PER_S:g} "
        f"--duration {DURATION_S:g} --streams {STREAMS} --no-submit` through the lab (spec/method-v2.md). "
        "Truth: the delay line's seeded per-frame loss on one direction, and the added RTT. Targets: the lossy "
        f"direction within {SE_LIMIT:g} binomial SE of the injected loss (n = probes sent that way) per run and "
        f"pooled, pooled within ±{POOLED_LIMIT_PP} pp where 3 SE ≤ {POOLED_LIMIT_PP} pp, the other direction "
        f"< {OTHER_LIMIT_PCT} %, idle UDP round trip median within 1 ms + 3 % of the added RTT.",
        "",
        "| point | link | runs (ok) | probes up / echoes sent | loss down (z, SE) | loss up (z, SE) | "
        "UDP RTT median | WS latency | loaded down: loss ↓/↑, RTT | loaded up: loss ↓/↑, RTT | ok |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['point']} | {r.get('link', '')} | error: {r['error']} | | | | | | | | ✗ |")
            continue
        p, c = r["pooled"], r["checks"]

        def loaded(name: str, runs: list[dict[str, Any]]) -> str:
            figs = [run["loaded"].get(name) or {} for run in runs]
            med = {
                k: sorted(v for f in figs if (v := f.get(k)) is not None)
                for k in ("loss_down_pct", "loss_up_pct", "rtt_ms")
            }
            mid = {k: v[len(v) // 2] if v else None for k, v in med.items()}
            if mid["rtt_ms"] is None:
                return ""
            return f"{_pct(mid['loss_down_pct'])} / {_pct(mid['loss_up_pct'])}, {mid['rtt_ms']:.1f} ms"

        lat = sorted(x["latency_ms"] for x in r["runs"] if x.get("latency_ms") is not None)
        lines.append(
            f"| {r['point']} | {r['link']} | {len(r['runs'])} ({r['runs_ok']}) | {p['probes']} / {p['echoed']} | "
            f"{_loss_cell(p['loss_down_pct'], c['loss_down'])} | {_loss_cell(p['loss_up_pct'], c['loss_up'])} | "
            f"{p['udp_rtt_ms']:.2f} ms{'' if c['rtt'] else ' ✗'} | {lat[len(lat) // 2]:.2f} ms | "
            f"{loaded('download', r['runs'])} | {loaded('upload', r['runs'])} | "
            f"{'✓' if r['ok'] else '✗'}{'' if c['counted_exactly'] else ' (not counted exactly)'} |"
        )
    lines += [
        "",
        f"{sum(1 for r in rows if r.get('ok'))}/{len(rows)} points meet their targets. Loss and RTT in the "
        "table are pooled over the point's runs (counts summed; RTT: the median run's median); loaded phases "
        "are medians over runs (50 probes/s while 4 TCP streams fill the tbf queue: its tail drops show as loss).",
        "",
        "## Runs",
        "",
        "Probes up: what the client sent; the line's drops are the delay line's own count of the idle "
        "probes (up) and echoes (down) it dropped: the measured losses equal them when `counted exactly`. "
        "A run outside 3 SE of the injected loss whose line dropped a share that far off itself is marked "
        "*line outlier*: the seeded draws missed, not the measurement.",
        "",
        "| point | seed | attempt (line late, ms) | probes up | received | echoes sent | echoes | line dropped "
        "up / down | loss down | loss up | RTT median / p90 | ok |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for run in r.get("runs", []):
            lates = ", ".join(f"{x:.1f}" for x in run["attempt_lates_ms"])
            rtt = f"{run['udp_rtt_ms']:.2f} / {run['udp_rtt_p90_ms']:.2f}" if run["udp_rtt_ms"] is not None else ""
            failed = ", ".join(k for k, v in run["checks"].items() if not (v["ok"] if isinstance(v, dict) else v))
            line = run.get("line") or {}
            dropped = " / ".join(str((line.get(w) or {}).get("lost", "?")) for w in ("up", "down"))
            outliers = [w for w in ("down", "up") if run["checks"][f"loss_{w}"].get("line_outlier")]
            note = f" (line outlier {', '.join(outliers)})" if outliers else ""
            lines.append(
                f"| {r['point']} | {run['seed']} | {run['attempt']} ({lates}) | {run['probes_client']} | "
                f"{run['received']} | {run['echoed']} | {run['echoes']} | {dropped} | {_pct(run['loss_down_pct'])} | "
                f"{_pct(run['loss_up_pct'])} | {rtt} | {('✓' if run['ok'] else '✗ ' + failed) + note} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", help=f"comma-separated RATExRTT[dPCT][uPCT] (default: {FULL_POINTS})")
    parser.add_argument("--runs", type=int, help=f"runs per lossy point (default {RUNS}; 1 with --quick)")
    parser.add_argument("--probes", type=int, default=PROBES, help=f"idle UDP probes per run (default {PROBES})")
    parser.add_argument(
        "--attempts", type=int, default=ATTEMPTS, help=f"runs while the delay line stalls (default {ATTEMPTS})"
    )
    parser.add_argument("--quick", action="store_true", help=f"CI version: {QUICK_POINTS}, one run each")
    parser.add_argument(
        "--seed", type=int, help="base loss seed (default random, recorded); run k of point i: base + 100 i + k"
    )
    parser.add_argument(
        "--out",
        default=str(Path(__file__).resolve().parent / "results" / "quality"),
        help="results path without extension: writes .json and .md",
    )
    args = parser.parse_args(argv)
    args.runs = args.runs or (1 if args.quick else RUNS)
    if args.runs < 1 or args.attempts < 1 or not 100 <= args.probes <= 20_000:
        parser.error("--runs and --attempts must be >= 1, --probes 100 to 20000")
    reason = unavailable()
    if reason:
        print(f"quality: cannot run the network lab: {reason}", file=sys.stderr)
        return 77
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(3), "big")
    point_text = args.points or (QUICK_POINTS if args.quick else FULL_POINTS)
    points = [parse_point(p) for p in point_text.split(",")]
    meta: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_before": os.getloadavg()[0],
        "points": point_text,
        "runs": args.runs,
        "probes": args.probes,
        "rate_per_s": RATE_PER_S,
        "duration_s": DURATION_S,
        "streams": STREAMS,
        "seed": args.seed,
        "attempts": args.attempts,
        "stall_limit_ms": STALL_LIMIT_MS,
        "nice": " ".join(NICE),
        "kernel": os.uname().release,
        "git": git_state(),
    }
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ispeed-quality-") as tmp, NetLab(points[0], seed=args.seed) as lab:
        serve = ServeProcess(f"chdb:{tmp}/store", extra=["--host", SERVER_ADDR, "--site-dir", "none"])
        serve.args = lab.in_server([*NICE, *serve.args])
        with serve:
            for i, link in enumerate(points):
                started = time.monotonic()
                try:
                    row = run_point(lab, serve.url, link, args, args.seed + 100 * i)
                except Exception as exc:  # noqa: BLE001 - a failed point is reported, the rest run
                    row = {"point": point_name(link), "link": link.label(), "error": str(exc)[:300], "ok": False}
                row["wall_s"] = round(time.monotonic() - started, 1)
                rows.append(row)
    meta["load_after"] = os.getloadavg()[0]
    lab_results.write(Path(args.out), meta, rows, markdown)
    return 0 if all(r.get("ok") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
