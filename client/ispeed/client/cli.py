"""`ispeed test` (one test, live progress or one JSON object) and `ispeed agent` (scheduled tests)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ispeed.core.udp_probe import IDLE_PROBES, IDLE_RATE_PER_S, MAX_CLIENT_RATE_PER_S


def _add_test_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--server",
        default="",
        help="test server base URL, e.g. http://127.0.0.1:8080; several (comma-separated): "
        "the one with the lowest latency is used",
    )
    p.add_argument(
        "--server-list",
        default="",
        help="URL of a server list (any server's /api/v1/servers): test the lowest-latency one",
    )
    p.add_argument("--streams", type=int, default=4, help="parallel TCP streams (default 4)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per download/upload phase (default 10)")
    p.add_argument(
        "--network-type",
        default="",
        help="fixed, mobile or 5g: what you know this connection is (default: not declared; the "
        "server decides from what this computer's network manager reports and from the IP "
        "address's connection type, else counts it as fixed; spec/evidence.md)",
    )
    p.add_argument("--lat", type=float, help="latitude of this device (optional, for commune placement)")
    p.add_argument("--lon", type=float, help="longitude of this device")
    p.add_argument(
        "--udp-probes",
        type=int,
        default=IDLE_PROBES,
        help=f"UDP loss and delay probes in the idle phase (default {IDLE_PROBES}; 0: no UDP probes; "
        "spec/method-v2.md)",
    )
    p.add_argument(
        "--udp-rate",
        type=float,
        default=IDLE_RATE_PER_S,
        help=f"idle-phase UDP probes per second (default {IDLE_RATE_PER_S:g}, at most {MAX_CLIENT_RATE_PER_S:g})",
    )
    p.add_argument(
        "--ip",
        default="",
        metavar="4|6|both",
        help="IP version of every connection of the test (default: the address the system prefers); "
        f"`both` (ispeed test only): the test on the preferred one, then a {BOTH_SECOND_DURATION_S:g} s-phase "
        "test on the other, both submitted",
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("test", help="run one speed test against a server")
    _add_test_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--no-submit", action="store_true", help="measure only; do not store the result")
    p.add_argument(
        "--device-id",
        default="",
        help="a signed device id from a server (POST /api/v1/devices); anything else counts as no id, "
        "i.e. the test counts under your IP address (default: the id kept in --state-dir)",
    )
    p.add_argument(
        "--state-dir",
        default=_default_state_dir(),
        help="where this device's server-issued id is kept (default ~/.local/state/ispeed, shared with the agent)",
    )
    p.set_defaults(func=run_test)

    a = sub.add_parser("agent", help="scheduled tests with a local log; retries submissions later")
    _add_test_options(a)
    a.add_argument("--every", required=True, help="time between tests, e.g. 30m, 1h, 6h (±10%% random jitter)")
    a.add_argument("--log", default="", help="JSON-lines log of every result (default STATE_DIR/agent.jsonl)")
    a.add_argument(
        "--state-dir",
        default=_default_state_dir(),
        help="the server-issued device id and the outbox of results not yet submitted (default ~/.local/state/ispeed)",
    )
    a.add_argument("--count", type=int, default=None, help="stop after this many tests (default: run until stopped)")
    a.set_defaults(func=run_agent)


BOTH_SECOND_DURATION_S = 3.0  # phases of the second, other-family test of `--ip both`


def _ip_choice(args: argparse.Namespace, allow_both: bool) -> str:
    """`--ip` as TestConfig takes it ('', '4', '6'); ConfigError for anything else."""
    from ispeed.core.errors import ConfigError

    if args.ip in ("", "4", "6") or (allow_both and args.ip == "both"):
        return "" if args.ip == "both" else str(args.ip)
    hint = "use 4, 6 or both" if allow_both else "use 4 or 6 (`both` is for `ispeed test`)"
    raise ConfigError("--ip", args.ip, hint + ", or leave it out for the system's preference")


def _default_state_dir() -> str:
    return os.path.join(os.path.expanduser("~"), ".local", "state", "ispeed")


def _candidates(args: argparse.Namespace) -> list[str]:
    from ispeed.client.config import check_server_url
    from ispeed.core.errors import ConfigError

    servers = [s.strip() for s in args.server.split(",") if s.strip()]
    if not servers and not args.server_list:
        raise ConfigError(
            "--server", args.server, "give a server URL (e.g. http://127.0.0.1:8080) or --server-list URL"
        )
    if args.server_list:
        check_server_url(args.server_list.split("/api/")[0])
    return [check_server_url(s) for s in servers]


def _test_config(args: argparse.Namespace, server: str, **extra: Any) -> Any:
    from ispeed.client.config import TestConfig

    return TestConfig(
        server_url=server,
        streams=args.streams,
        duration_s=args.duration,
        network_type=args.network_type,
        lat=args.lat,
        lon=args.lon,
        udp_probes=args.udp_probes,
        udp_rate_per_s=args.udp_rate,
        **extra,
    )


async def _other_family(config: Any, first: dict[str, Any]) -> dict[str, Any]:
    """`--ip both`: a short test over the family the first test did not use (its error, if it fails)."""
    from dataclasses import replace

    from ispeed.client import family
    from ispeed.client.engine import Engine
    from ispeed.client.progress import TerminalProgress
    from ispeed.core.errors import IspeedError

    version = first.get("ip_version") or (
        family.version_of(first["server_address"]) if first.get("server_address") else 4
    )
    other = family.other(int(version))
    second = replace(config, ip_version=other, duration_s=min(BOTH_SECOND_DURATION_S, config.duration_s))
    progress = TerminalProgress(sys.stderr, second.duration_s)
    try:
        result: dict[str, Any] = await Engine(second, progress).run()
    except IspeedError as exc:
        return {"ip_version": int(other), "error": str(exc)}
    finally:
        progress.done()
    return result


def run_test(args: argparse.Namespace) -> int:
    import asyncio

    from ispeed.client.engine import Engine
    from ispeed.client.progress import TerminalProgress
    from ispeed.client.selection import choose, server_list

    candidates = _candidates(args)
    # validate everything before any network traffic
    config = _test_config(
        args,
        candidates[0] if candidates else "http://placeholder.invalid",
        submit=not args.no_submit,
        device_id=args.device_id,
        ip_version=_ip_choice(args, allow_both=True),
    )

    async def main() -> dict[str, Any]:
        options = candidates or await server_list(args.server_list)
        selection = None
        server = options[0]
        if len(options) > 1:
            server, selection = await choose(options)
        from dataclasses import replace
        from pathlib import Path

        from ispeed.client.identity import DeviceIdentity

        device_id = args.device_id
        if config.submit and not device_id:  # the id this server vouches for, or '' (counted by IP)
            device_id = await DeviceIdentity(Path(args.state_dir)).for_server(server)
        progress = TerminalProgress(sys.stderr, config.duration_s)
        test_config = replace(config, server_url=server, device_id=device_id)
        result = await Engine(test_config, progress).run()
        progress.done()
        if selection:
            result["server_selection"] = selection
        if args.ip == "both":  # nested: the first test's figures keep their names
            result["other_family"] = await _other_family(test_config, result)
        return result

    result = asyncio.run(main())
    from ispeed.core.ratings import rate

    # plain-language ratings for everyday uses (added field): grade and what limits it, per use
    result["ratings"] = [{k: v[k] for k in ("use", "grade", "limits", "not_measured")} for v in rate(result, "en")]
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        sys.stdout.write(format_result(result))
    return 0


def run_agent(args: argparse.Namespace) -> int:
    import asyncio
    import signal
    from pathlib import Path

    from ispeed.client.agent import Agent, AgentConfig, parse_every
    from ispeed.core.errors import ConfigError

    every_s = parse_every(args.every)
    if args.count is not None and args.count < 1:
        raise ConfigError("--count", args.count, "use a positive number of tests, or leave it out")
    candidates = _candidates(args)
    state = Path(args.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    cfg = AgentConfig(
        test=_test_config(
            args,
            candidates[0] if candidates else "http://placeholder.invalid",
            client_kind="agent",
            ip_version=_ip_choice(args, allow_both=False),
        ),
        every_s=every_s,
        log_path=Path(args.log) if args.log else state / "agent.jsonl",
        outbox_dir=state / "outbox",
        count=args.count,
        candidates=tuple(candidates),
        server_list_url=args.server_list,
        state_dir=state,
    )

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        sys.stderr.write(f"ispeed agent: a test every {args.every} (±10%), log {cfg.log_path}; Ctrl-C to stop\n")
        return await Agent(cfg).run(stop)

    rounds = asyncio.run(main())
    sys.stderr.write(f"ispeed agent: {rounds} tests run; log in {cfg.log_path}\n")
    return 0


def _udp_line(r: dict[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f} %"

    if r.get("udp") == "ok":
        rtt = "n/a" if r.get("udp_rtt_ms") is None else f"{r['udp_rtt_ms']:.2f} ms (p90 {r['udp_rtt_p90_ms']:.2f})"
        return (
            f"  UDP       loss down {pct(r.get('loss_down_pct'))}, up {pct(r.get('loss_up_pct'))} "
            f"({r.get('udp_probes')} probes), round trip {rtt}"
        )
    if r.get("udp") == "blocked":
        return "  UDP       blocked on this path (no echo came back)"
    return "  UDP       not measured (the server offers no UDP probes, or --udp-probes 0)"


def _rating_lines(r: dict[str, Any]) -> list[str]:
    """One plain-language line per everyday use (core.ratings), with what limits it."""
    from ispeed.core.ratings import rate

    lines = []
    for rating in rate(r, "en"):
        why = "; ".join(limit["text"] for limit in rating["limits"])
        unknown = f" (not measured: {', '.join(rating['not_measured'])})" if rating["not_measured"] else ""
        lines.append(f"    {rating['name']:<22} {rating['grade_name']}{' — ' + why if why else ''}{unknown}")
    return lines


def _server_delay_line(r: dict[str, Any]) -> list[str]:
    """What the server says it added to the probes (its p99), and whether that keeps them unranked."""
    delay = r.get("server_delay_p99_ms")
    if delay is None:
        return []
    delayed = "server_delayed" in (r.get("flags") or [])
    return [
        f"  the server's own delay on the probes: p99 {delay:.1f} ms"
        + ("  (too much: this test's latency, RPM and loss are not ranked)" if delayed else "")
    ]


def format_result(r: dict[str, Any]) -> str:
    def ms(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f} ms"

    def rpm(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.0f}"

    lines = [
        f"test {r['test_id']} on {r['server']}",
        f"  download  {r['download_mbps']:10.1f} Mbps   ({r['streams']} streams, {r['duration_s']:g} s)",
        f"  upload    {r['upload_mbps']:10.1f} Mbps   (server-measured)",
        f"  latency   {ms(r['latency_ms'])}   jitter {ms(r['jitter_ms'])}",
        f"  loaded latency: download {ms(r['loaded_latency_down_ms'])}, upload {ms(r['loaded_latency_up_ms'])}",
        _udp_line(r),
        f"  responsiveness: {rpm(r.get('rpm_down'))} RPM downloading, {rpm(r.get('rpm_up'))} RPM uploading"
        + (f" ({r['rpm_label']})" if r.get("rpm_label") else ""),
        f"  over IPv{r.get('ip_version') or '?'}" + (f" to {r['server_address']}" if r.get("server_address") else ""),
        *_server_delay_line(r),
        "  result submitted" if r["submitted"] else "  result not submitted (--no-submit)",
        "  good for (the thresholds are on the published methodology page):",
        *_rating_lines(r),
    ]
    other = r.get("other_family")
    if isinstance(other, dict):
        if other.get("error"):
            lines.append(f"  IPv{other.get('ip_version')}: not measured ({other['error']})")
        else:
            lines.append(
                f"  IPv{other.get('ip_version')}: download {other['download_mbps']:.1f} Mbps, upload "
                f"{other['upload_mbps']:.1f} Mbps, latency {ms(other.get('latency_ms'))}, "
                f"{rpm(other.get('rpm_down'))} / {rpm(other.get('rpm_up'))} RPM ({other['duration_s']:g} s phases)"
            )
    return "\n".join(lines) + "\n"
