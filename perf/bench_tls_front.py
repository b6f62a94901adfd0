"""The deployment guide's nginx TLS front (docs/nginx/ispeed.conf) on loopback: does it carry
uploads and downloads, and what does TLS cost per Gbit/s?

    python -m perf.bench_tls_front [--streams 4] [--gib 1] [--repeat 3]

Starts `ispeed serve` and nginx (one worker) with the guide's site configuration — only the
ports and a throw-away self-signed certificate swapped in — then moves --gib GiB per
connection with N parallel curls, down and up, directly and through the TLS front.
Prints Gbit/s and CPU seconds per GB of the ispeed process and of the nginx worker (medians),
so the sizing model can add the front's CPU to the server's. Fails if an upload or download
through the front moves fewer bytes than sent (body-size limits or buffering breaking it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from tests.serve_process import ServeProcess  # noqa: E402

from perf.bench_server import cpu_seconds, curl_parallel, free_port  # noqa: E402

MAIN_CONF = """worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/f; uwsgi_temp_path {tmp}/u; scgi_temp_path {tmp}/s; include {tmp}/site.conf; }}
"""


def site_conf(tmp: str, upstream_port: int, http_port: int, https_port: int) -> str:
    text = (ROOT / "docs" / "nginx" / "ispeed.conf").read_text()
    for old, new in (
        ("/etc/letsencrypt/live/hn-1.speed.example.vn/fullchain.pem", f"{tmp}/cert.pem"),
        ("/etc/letsencrypt/live/hn-1.speed.example.vn/privkey.pem", f"{tmp}/key.pem"),
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream_port};"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen [::]:80;", ""),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        ("listen [::]:443 ssl;", ""),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text


def token(base: str, streams: int) -> str:
    req = urllib.request.Request(
        base + "/api/v1/tests",
        method="POST",
        headers={"content-type": "application/json"},
        data=json.dumps({"streams": streams, "duration_s": 30}).encode(),
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(json.load(resp)["token"])


def run(label: str, pids: dict[str, int], urls: list[str], upload: str | None, expected: int) -> dict[str, float]:
    before = {k: cpu_seconds(p) for k, p in pids.items()}
    seconds, moved = curl_parallel(urls, upload)
    if moved < expected:
        raise RuntimeError(f"{label}: moved {moved} of {expected} bytes")
    gb = moved / 1e9
    out = {"gbps": moved * 8 / seconds / 1e9}
    for k, p in pids.items():
        out[f"{k}_cpu_s_per_gb"] = (cpu_seconds(p) - before[k]) / gb
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(
        prefix="ispeed-tls-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
    ) as tmp:
        size = int(args.gib * (1 << 30))
        blob = Path(tmp, "blob.bin")
        with blob.open("wb") as f:
            chunk = os.urandom(64 << 20)
            for _ in range(max(1, size // len(chunk))):
                f.write(chunk)
        size = blob.stat().st_size
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                f"{tmp}/key.pem",
                "-out",
                f"{tmp}/cert.pem",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
            ],
            check=True,
            capture_output=True,
        )
        os.chmod(tmp, 0o755)
        upstream, http_port, https_port = free_port(), free_port(), free_port()
        Path(tmp, "site.conf").write_text(site_conf(tmp, upstream, http_port, https_port))
        Path(tmp, "nginx.conf").write_text(MAIN_CONF.format(tmp=tmp))
        server = ServeProcess(f"chdb:{tmp}/store", ["--port", str(upstream), "--trusted-proxy", "127.0.0.1/32"])
        server.start()
        nginx = subprocess.Popen(["nginx", "-c", f"{tmp}/nginx.conf", "-p", tmp], stderr=subprocess.PIPE)
        try:
            time.sleep(1.0)
            workers = subprocess.run(["pgrep", "-P", str(nginx.pid)], capture_output=True, text=True).stdout.split()
            if not workers:
                raise RuntimeError("nginx did not start: " + (nginx.stderr.read().decode() if nginx.stderr else ""))
            pids = {"ispeed": server.proc.pid if server.proc else 0, "nginx": int(workers[0])}
            fronts = {"direct": server.url, "tls_front": f"https://localhost:{https_port}"}
            os.environ["CURL_CA_BUNDLE"] = f"{tmp}/cert.pem"
            for _ in range(args.repeat):
                for name, base in fronts.items():
                    t = token(base if name == "direct" else server.url, args.streams)
                    urls = [f"{base}/api/v1/download?token={t}&stream={i}&bytes={size}" for i in range(args.streams)]
                    results.setdefault(f"{name}_down", []).append(
                        run(f"{name} down", pids, urls, None, size * args.streams)
                    )
                    t = token(server.url, args.streams)
                    urls = [f"{base}/api/v1/upload?token={t}&stream={i}" for i in range(args.streams)]
                    results.setdefault(f"{name}_up", []).append(
                        run(f"{name} up", pids, urls, str(blob), size * args.streams)
                    )
        finally:
            server.stop()
            if nginx.poll() is None:
                nginx.send_signal(signal.SIGQUIT)
            nginx.wait(timeout=15)
    print(
        f"{args.streams} connections x {args.gib:g} GiB, medians of {args.repeat}; {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()}"
    )
    for key, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"{key:16s} {med['gbps']:6.2f} Gbit/s   ispeed {med['ispeed_cpu_s_per_gb']:.3f} CPU s/GB   "
            f"nginx {med['nginx_cpu_s_per_gb']:.3f} CPU s/GB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
