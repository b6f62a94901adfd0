"""Speed on loopback, as ratios against references run in the same invocation.

    python -m perf.bench_server [--streams 4] [--gib 1] [--repeat 3] [--duration 10] [--e2e-only]

(a) Server alone: the ispeed server's download and upload endpoints against nginx (one worker,
    like the one ispeed process) serving a static file of random bytes and receiving a POST,
    both driven by the same C client: `curl` with N parallel connections, each moving --gib GiB.
    nginx's upload reference is `return 200` on a POST: nginx reads the whole body and discards
    it (ngx_http_discard_request_body, 4 KiB reads; curl only finishes once all was sent).
    Server CPU seconds per GB (user+system of the server process, /proc/PID/stat) for both.
(b) End to end: `ispeed test --json --no-submit` against iperf3 (`-l 1M`, same stream count,
    same duration; `-R` for download). Targets: server ≥ 1.0 × nginx; `ispeed test`
    ≥ 0.4 × iperf3 each way (goal 0.6). Medians of --repeat runs; load average printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.serve_process import ServeProcess

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
        location /upload {{ client_max_body_size 0; return 200 "ok\\n"; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def curl_parallel(urls: list[str], upload_file: str | None = None) -> tuple[float, int]:
    """Run one curl per URL at once; (seconds until the last ends, bytes moved)."""
    cmd = ["curl", "-f", "-s", "-S", "-o", "/dev/null", "-w", "%{size_download} %{size_upload}"]
    if upload_file:
        cmd += ["-X", "POST", "-T", upload_file, "-H", "Content-Type: application/octet-stream"]
    start = time.perf_counter()
    procs = [subprocess.Popen([*cmd, url], stdout=subprocess.PIPE, text=True) for url in urls]
    moved = 0
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"curl failed ({proc.returncode}) on {urls[0]}")
        down, up = out.split()
        moved += int(float(up if upload_file else down))
    return time.perf_counter() - start, moved


def measure(label: str, pid: int, urls: list[str], upload_file: str | None, expected: int) -> dict[str, float]:
    cpu0 = cpu_seconds(pid)
    seconds, moved = curl_parallel(urls, upload_file)
    cpu = cpu_seconds(pid) - cpu0
    if moved < expected:
        raise RuntimeError(f"{label}: moved {moved} bytes, expected {expected}")
    return {"gbps": moved * 8 / seconds / 1e9, "cpu_s_per_gb": cpu / (moved / 1e9), "bytes": moved}


def ispeed_token(base: str, streams: int) -> str:
    req = urllib.request.Request(
        base + "/api/v1/tests",
        method="POST",
        headers={"content-type": "application/json"},
        data=json.dumps({"streams": streams, "duration_s": 30}).encode(),
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(json.load(resp)["token"])


def iperf3(streams: int, duration_s: float, reverse: bool) -> float:
    port = free_port()
    server = subprocess.Popen(
        ["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(0.3)
        out = subprocess.run(
            [
                "iperf3",
                "-c",
                "127.0.0.1",
                "-p",
                str(port),
                "-P",
                str(streams),
                "-l",
                "1M",
                "-t",
                str(int(duration_s)),
                "-J",
                *(["-R"] if reverse else []),
            ],
            capture_output=True,
            text=True,
            timeout=duration_s + 60,
        )
        return float(json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"]) / 1e9
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(timeout=10)


def ispeed_test(url: str, streams: int, duration_s: float) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ispeed.cli.main",
            "test",
            "--server",
            url,
            "--json",
            "--no-submit",
            "--streams",
            str(streams),
            "--duration",
            str(duration_s),
        ],
        capture_output=True,
        text=True,
        timeout=2 * duration_s + 120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"ispeed test failed: {out.stderr.strip()}")
    r = json.loads(out.stdout)
    return {"down": r["download_mbps"] / 1000, "up": r["upload_mbps"] / 1000}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--gib", type=float, default=1.0, help="GiB per connection in the server-alone runs")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase end to end")
    parser.add_argument(
        "--e2e-only", action="store_true", help="run only part (b), `ispeed test` against iperf3 (no nginx, no curl)"
    )
    args = parser.parse_args()
    for tool in ("iperf3",) if args.e2e_only else ("nginx", "curl", "iperf3"):
        if shutil.which(tool) is None:
            print(
                f"bench_server: `{tool}` is not installed (Debian packages: nginx-light, curl, iperf3)", file=sys.stderr
            )
            return 2
    size = int(args.gib * (1 << 30))
    print(f"load average before: {os.getloadavg()}; {os.cpu_count()} CPUs; {args.streams} connections")
    runs: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        runs.setdefault(key, []).append(value)

    with tempfile.TemporaryDirectory(
        prefix="ispeed-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
    ) as tmp:
        nginx: subprocess.Popen[bytes] | None = None
        server = ServeProcess(f"chdb:{tmp}/store")
        try:
            if not args.e2e_only:
                www = Path(tmp, "www")
                www.mkdir()
                blob = www / "blob.bin"
                with blob.open("wb") as f:  # random, incompressible; 64 MiB pattern repeated
                    chunk = os.urandom(64 << 20)
                    for _ in range(max(1, size // len(chunk))):
                        f.write(chunk)
                size = blob.stat().st_size
                for path in (Path(tmp), www):  # nginx workers run as an unprivileged user
                    path.chmod(0o755)
                blob.chmod(0o644)
                port = free_port()
                Path(tmp, "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp, port=port))
                nginx = subprocess.Popen(["nginx", "-c", f"{tmp}/nginx.conf", "-p", tmp], stderr=subprocess.PIPE)
                time.sleep(1.0)
                workers = subprocess.run(["pgrep", "-P", str(nginx.pid)], capture_output=True, text=True).stdout.split()
                if not workers:
                    raise RuntimeError("nginx did not start: " + (nginx.stderr.read().decode() if nginx.stderr else ""))
                worker = int(workers[0])
            server.start()
            spid = server.proc.pid if server.proc else 0
            for _ in range(args.repeat):
                if not args.e2e_only:
                    ngx = f"http://127.0.0.1:{port}"
                    r = measure("nginx down", worker, [f"{ngx}/blob.bin"] * args.streams, None, size * args.streams)
                    add("nginx_down", r["gbps"])
                    add("nginx_down_cpu", r["cpu_s_per_gb"])
                    token = ispeed_token(server.url, args.streams)
                    urls = [
                        f"{server.url}/api/v1/download?token={token}&stream={i}&bytes={size}"
                        for i in range(args.streams)
                    ]
                    r = measure("ispeed down", spid, urls, None, size * args.streams)
                    add("ispeed_down", r["gbps"])
                    add("ispeed_down_cpu", r["cpu_s_per_gb"])
                    r = measure("nginx up", worker, [f"{ngx}/upload"] * args.streams, str(blob), size * args.streams)
                    add("nginx_up", r["gbps"])
                    add("nginx_up_cpu", r["cpu_s_per_gb"])
                    token = ispeed_token(server.url, args.streams)
                    urls = [f"{server.url}/api/v1/upload?token={token}&stream={i}" for i in range(args.streams)]
                    r = measure("ispeed up", spid, urls, str(blob), size * args.streams)
                    add("ispeed_up", r["gbps"])
                    add("ispeed_up_cpu", r["cpu_s_per_gb"])
                e2e = ispeed_test(server.url, args.streams, args.duration)
                add("test_down", e2e["down"])
                add("test_up", e2e["up"])
                add("iperf_down", iperf3(args.streams, args.duration, reverse=True))
                add("iperf_up", iperf3(args.streams, args.duration, reverse=False))
        finally:
            server.stop()
            if nginx is not None:
                if nginx.poll() is None:
                    nginx.send_signal(signal.SIGQUIT)
                try:
                    nginx.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    nginx.kill()
                    nginx.wait(timeout=5)
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"load average after: {os.getloadavg()}")
    if not args.e2e_only:
        print(f"\n(a) server alone, curl × {args.streams}, {size / (1 << 30):.2f} GiB each, medians of {args.repeat}")
        print(
            f"  download  ispeed {med['ispeed_down']:6.2f} Gbit/s  nginx {med['nginx_down']:6.2f}  "
            f"ratio {med['ispeed_down'] / med['nginx_down']:.2f}  (target ≥ 1.0)"
        )
        print(
            f"  upload    ispeed {med['ispeed_up']:6.2f} Gbit/s  nginx {med['nginx_up']:6.2f}  "
            f"ratio {med['ispeed_up'] / med['nginx_up']:.2f}  (target ≥ 1.0)"
        )
        print(
            f"  CPU s/GB  ispeed down {med['ispeed_down_cpu']:.3f} up {med['ispeed_up_cpu']:.3f}; "
            f"nginx down {med['nginx_down_cpu']:.3f} up {med['nginx_up_cpu']:.3f}"
        )
    print(f"\n(b) end to end, {args.streams} streams, {args.duration:g} s, medians of {args.repeat}")
    print(
        f"  download  ispeed test {med['test_down']:6.2f} Gbit/s  iperf3 -R {med['iperf_down']:6.2f}  "
        f"ratio {med['test_down'] / med['iperf_down']:.2f}  (target ≥ 0.4, goal 0.6)"
    )
    print(
        f"  upload    ispeed test {med['test_up']:6.2f} Gbit/s  iperf3    {med['iperf_up']:6.2f}  "
        f"ratio {med['test_up'] / med['iperf_up']:.2f}  (target ≥ 0.4, goal 0.6)"
    )
    print("\nruns: " + json.dumps({k: [round(x, 3) for x in v] for k, v in runs.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
