"""The embedded engine's own output stays off a user's terminal: `ispeed serve` prints its lines only.

chDB is ClickHouse in-process; while it loads it writes what it finds wrong straight to the
process's stderr (file descriptor 2), e.g. a 30-line stack trace when a container has no cgroup
memory files. Those lines go to the `-v` log. The container case is reproduced in a private mount
namespace with an empty /sys/fs/cgroup (needs root and unshare; skipped otherwise).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.serve_process import ServeProcess

# `unshare -m` gives the command its own mount table: /sys/fs/cgroup is hidden for it alone
_NO_CGROUPS = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs none /sys/fs/cgroup && exec "$@"', "sh"]


def _without_cgroups(proc: ServeProcess) -> ServeProcess:
    if not shutil.which("unshare"):
        pytest.skip("needs unshare (util-linux) to hide /sys/fs/cgroup")
    probe = subprocess.run([*_NO_CGROUPS, "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"cannot hide /sys/fs/cgroup here (needs root): {probe.stderr.strip()}")
    proc.args = [*_NO_CGROUPS, *proc.args]
    return proc


def _serve_lines(proc: ServeProcess) -> list[str]:
    with proc:
        pass
    return "".join(proc.stderr_lines).splitlines()


def test_serve_on_a_fresh_chdb_store_prints_only_its_listening_line(tmp_path: Path) -> None:
    lines = _serve_lines(ServeProcess(f"chdb:{tmp_path / 'store'}"))
    assert len(lines) == 1 and lines[0].startswith("ispeed serve: listening on http://"), lines


def test_without_cgroup_files_the_engine_stack_trace_stays_off_stderr(tmp_path: Path) -> None:
    lines = _serve_lines(_without_cgroups(ServeProcess(f"chdb:{tmp_path / 'store'}")))
    assert len(lines) == 1 and lines[0].startswith("ispeed serve: listening on http://"), lines


def test_without_cgroup_files_the_engine_message_is_in_the_verbose_log(tmp_path: Path) -> None:
    lines = _serve_lines(_without_cgroups(ServeProcess(f"chdb:{tmp_path / 'store'}", global_args=["-v"])))
    said = [line for line in lines if "Cannot use cgroups reader" in line]
    assert len(said) == 1 and " INFO ispeed.store: chDB while loading: " in said[0], lines
