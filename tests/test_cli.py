"""CLI contract: bad input gives one clear line on stderr and exit 2; tracebacks only with -v."""

from __future__ import annotations

import subprocess
import sys

import pytest


def ispeed(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ispeed.cli.main", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    "args,needle",
    [
        (("test", "--server", "nonsense"), "'nonsense'"),
        (("serve", "--store", "bogus://x"), "'bogus://x'"),
        (("export", "--month", "2025-13", "--out", "x.csv"), "'2025-13'"),
        (("test", "--server", "http://127.0.0.1:8080", "--streams", "0"), "--streams"),
        (("test", "--server", "http://127.0.0.1:8080", "--network-type", "4g"), "'4g'"),
        (("test", "--server", "http://127.0.0.1:8080", "--lat", "123", "--lon", "105"), "123"),
        (("test",), "--server"),
        (("frobnicate",), "frobnicate"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args: tuple[str, ...], needle: str) -> None:
    out = ispeed(*args)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in out.stderr


def test_unreachable_server_is_one_line_exit_1() -> None:
    out = ispeed("test", "--server", "http://127.0.0.1:9", "--duration", "1")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the test server" in lines[0]


def test_every_designed_subcommand_exists() -> None:
    out = ispeed("--help")
    for name in ("serve", "test", "agent", "simulate", "export", "aggregate", "publish", "demo", "geo"):
        assert name in out.stdout


def test_the_terminal_result_rates_everyday_uses_in_plain_language() -> None:
    from ispeed.client.cli import format_result

    result = {
        "test_id": "t", "server": "http://x", "download_mbps": 80.0, "upload_mbps": 20.0, "streams": 4,
        "duration_s": 10.0, "latency_ms": 12.0, "jitter_ms": 2.0, "loaded_latency_down_ms": 40.0,
        "loaded_latency_up_ms": 45.0, "loss_down_pct": 3.0, "loss_up_pct": 0.0, "rpm_down": 1500.0,
        "rpm_up": 1400.0, "submitted": True,
    }  # fmt: skip
    text = format_result(result)
    video_call = next(line for line in text.splitlines() if "Video calls" in line)
    # 3 % loss limits a call whatever the speed: the line says so, with the threshold
    assert "OK — Packet loss 3 % (good at ≤ 1 %)" in video_call, video_call
    del result["loss_down_pct"], result["loss_up_pct"]
    assert "not measured: Packet loss" in next(line for line in format_result(result).splitlines() if "Video" in line)


def test_the_terminal_result_says_what_the_server_added_to_the_probes() -> None:
    from ispeed.client.cli import format_result

    result = {
        "test_id": "t", "server": "http://x", "download_mbps": 80.0, "upload_mbps": 20.0, "streams": 4,
        "duration_s": 10.0, "latency_ms": 12.0, "jitter_ms": 2.0, "loaded_latency_down_ms": 40.0,
        "loaded_latency_up_ms": 45.0, "submitted": True, "server_delay_p99_ms": 1.24, "flags": [],
    }  # fmt: skip
    line = next(line for line in format_result(result).splitlines() if "own delay" in line)
    assert "p99 1.2 ms" in line and "not ranked" not in line
    result.update(server_delay_p99_ms=61.0, flags=["server_delayed"])
    line = next(line for line in format_result(result).splitlines() if "own delay" in line)
    assert "p99 61.0 ms" in line and "not ranked" in line
    del result["server_delay_p99_ms"]  # a server before method v2 says nothing: no line
    assert "own delay" not in format_result(result)
