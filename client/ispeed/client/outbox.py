"""On-disk outbox of results not yet accepted by the server: nothing lost across outages or restarts.

One JSON file per pending submission, written atomically (temporary file, fsync, rename) before
the first attempt and removed only once the server has answered accepted or duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ispeed.core import files


class Outbox:
    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "rejected").mkdir(exist_ok=True)

    def put(self, test_id: str, submission: dict[str, Any]) -> Path:
        path = self.dir / f"{test_id}.json"
        files.write_text(path, json.dumps(submission), durable=True)
        return path

    def pending(self) -> Iterator[tuple[Path, dict[str, Any]]]:
        """Pending submissions, oldest first."""
        for path in sorted(self.dir.glob("*.json"), key=lambda p: p.stat().st_mtime):
            try:
                yield path, json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                path.rename(self.dir / "rejected" / path.name)  # unreadable: set aside, never retried

    def done(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def reject(self, path: Path, reason: str) -> None:
        """The server refused it for good (4xx): keep it aside with the reason, stop retrying."""
        target = self.dir / "rejected" / path.name
        path.rename(target)
        target.with_suffix(".reason").write_text(reason + "\n", encoding="utf-8")

    def __len__(self) -> int:
        return sum(1 for _ in self.dir.glob("*.json"))
