"""Run `ispeed serve` as a real process on a free port (functional tests, perf, demos)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

_URL = re.compile(r"ispeed serve: listening on (http://\S+)")  # the ready line, not the -v log line
SECRET = "functional-test-secret-000"


class ServeProcess:
    """`ispeed serve --port 0 ...`; `url` once it listens; stop() sends SIGTERM to its PID."""

    def __init__(
        self, store: str, extra: Sequence[str] = (), env: dict[str, str] | None = None, global_args: Sequence[str] = ()
    ) -> None:
        self.args = [
            sys.executable,
            "-m",
            "ispeed.cli.main",
            *global_args,
            "serve",
            "--port",
            "0",
            "--store",
            store,
            "--secret",
            SECRET,
            *extra,
        ]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.stderr_lines: list[str] = []

    def start(self, timeout_s: float = 60.0) -> ServeProcess:
        self.proc = subprocess.Popen(
            self.args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=self.env
        )
        assert self.proc.stderr is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.stderr_lines.append(line)
            m = _URL.search(line)
            if m:
                self.url = m.group(1)
                return self
        self.stop()
        raise RuntimeError("ispeed serve did not start: " + "".join(self.stderr_lines))

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
        self.stderr_lines.append(err or "")
        code = self.proc.returncode
        self.proc = None
        return code

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
