"""Start a throw-away ZooKeeper (Debian's `zookeeper` package) on a free loopback port."""

from __future__ import annotations

import glob
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.clickhouse_server import free_port, terminate

JAR_CANDIDATES = ("/usr/share/java/zookeeper.jar", "/usr/share/zookeeper/zookeeper.jar")
MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"


def find_zookeeper() -> tuple[str, str] | None:
    """(java, classpath) when Java and Debian's ZooKeeper jar are installed, else None."""
    java = shutil.which("java")
    jars = [j for j in JAR_CANDIDATES if Path(j).exists()] or glob.glob("/usr/share/java/zookeeper-3*.jar")
    if not java or not jars:
        return None
    return java, jars[0]


def missing_reason() -> str:
    if shutil.which("java") is None:
        return "java is not installed (Debian: apt-get install -y default-jre-headless zookeeper)"
    return "ZooKeeper is not installed (Debian: apt-get install -y zookeeper)"


class ZooKeeperServer:
    """A standalone ZooKeeper with its own data directory; stop() ends it by PID."""

    def __init__(self, root: str | None = None) -> None:
        found = find_zookeeper()
        if found is None:
            raise RuntimeError(missing_reason())
        self.java, self.classpath = found
        self.root = Path(root or tempfile.mkdtemp(prefix="ispeed-zk-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def config_xml(self) -> str:
        """The `<zookeeper>` section for a clickhouse-server config."""
        return (
            f"<zookeeper><node><host>127.0.0.1</host><port>{self.port}</port></node>"
            "<session_timeout_ms>10000</session_timeout_ms></zookeeper>"
        )

    def start(self, timeout_s: float = 30.0) -> ZooKeeperServer:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        cfg = self.root / "zoo.cfg"
        cfg.write_text(
            f"tickTime=2000\ndataDir={self.root / 'data'}\nclientPort={self.port}\n"
            "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
            "4lw.commands.whitelist=ruok\nmaxClientCnxns=100\n"
        )
        log = open(self.root / "zookeeper.log", "ab")
        self.proc = subprocess.Popen(
            [self.java, "-Xmx256m", "-cp", self.classpath, MAIN, str(cfg)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ZooKeeper exited with {self.proc.returncode}; see {self.root}/zookeeper.log")
            if self._ruok():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"ZooKeeper did not answer on port {self.port} within {timeout_s} s")

    def _ruok(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"ruok")
                return s.recv(4) == b"imok"
        except OSError:
            return False

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
