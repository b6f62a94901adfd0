"""Start a throw-away Debian `clickhouse-server` on a free loopback port (tests, perf, demos)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SERVER_BINARY_CANDIDATES = ("/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server")

CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{root}/log/server.log</log><errorlog>{root}/log/error.log</errorlog>
    <size>10M</size><count>1</count></logger>
  <tcp_port>{tcp_port}</tcp_port>
  <http_port>{http_port}</http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{root}/data/</path>
  <tmp_path>{root}/tmp/</tmp_path>
  <user_files_path>{root}/user_files/</user_files_path>
  <format_schema_path>{root}/format_schemas/</format_schema_path>
  <mark_cache_size>268435456</mark_cache_size>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
  {extra}
</yandex>
"""

USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>8000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
"""


def terminate(proc: subprocess.Popen[bytes] | None, grace_s: float = 15.0) -> None:
    """End a process this test started, by its PID: SIGTERM, then SIGKILL after `grace_s`."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def find_server_binary() -> str | None:
    for path in SERVER_BINARY_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("clickhouse-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ClickHouseServer:
    """A clickhouse-server process with its own config and data directory; stop() ends it by PID."""

    def __init__(self, root: str | None = None, extra_config: str = "") -> None:
        binary = find_server_binary()
        if binary is None:
            raise RuntimeError("clickhouse-server not found: run `make test` (installs Debian's clickhouse-server)")
        self.binary = binary
        self.root = Path(root or tempfile.mkdtemp(prefix="ispeed-ch-"))
        self.tcp_port = free_port()
        self.http_port = free_port()
        self.extra_config = extra_config
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"clickhouse://127.0.0.1:{self.tcp_port}"

    def start(self, timeout_s: float = 30.0) -> ClickHouseServer:
        for sub in ("log", "data", "tmp", "user_files", "format_schemas"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "config.xml").write_text(
            CONFIG.format(root=self.root, tcp_port=self.tcp_port, http_port=self.http_port, extra=self.extra_config)
        )
        (self.root / "users.xml").write_text(USERS)
        out = open(self.root / "log" / "stdout.log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, f"--config-file={self.root / 'config.xml'}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"clickhouse-server exited with {self.proc.returncode}; see {self.root}/log")
            try:
                with socket.create_connection(("127.0.0.1", self.tcp_port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"clickhouse-server did not listen on port {self.tcp_port} within {timeout_s} s")

    def kill(self) -> None:
        """SIGKILL (outage tests); start() again brings the same data back."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
