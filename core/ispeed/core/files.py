"""Files replaced atomically: written beside their target under a temporary name, then renamed over it.

A reader (a web server, the next run) sees the old file or the new one, never half of either.
`durable` also fsyncs the file before the rename and the directory after it, for state that must
survive a crash (an agent's outbox, a device id). The result spool keeps its own sequence
(server/ispeed/server/spool.py): each of its crash points is tested step by step.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(path: str | Path, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write; when the block ends without an error it
    replaces `path`, otherwise it is removed and `path` is left as it was."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if durable:
            _fsync(tmp, os.O_RDONLY)
        os.replace(tmp, target)
        if durable:
            _fsync(target.parent, os.O_RDONLY)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str, durable: bool = False) -> None:
    """Replace `path` with `text` (UTF-8) atomically."""
    with replacing(path, durable) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
