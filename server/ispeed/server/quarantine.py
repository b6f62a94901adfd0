"""The quarantine: results the store refused, and spooled lines that cannot be read, kept on disk.

One row must never stop result storage: a row the store refuses (a lone surrogate
from an older spool, a value out of a column's range) is moved here, the rest goes on. One
JSON-lines file, `quarantine.jsonl`, private (0600) and fsynced, next to the spool or in
`--quarantine-dir`. Each entry is one JSON object:

    {"quarantined_at": <UTC epoch s>, "source": "ingest" | "spool", "reason": "...",
     "test_id": "...", "record": {<schema.to_record of the row>}}     # a refused row
    {..., "test_id": "..." or "", "offset": <byte in the spool>, "raw_b64": "..."}   # an unreadable line

Written as ASCII JSON, so a lone surrogate is kept as its escape. An entry is kept once (by
test_id, or by the line's bytes), so a replay that runs again after a crash adds nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from ispeed.core.schema import Measurement, to_record
from ispeed.server.spool import SpooledLine, append_durably

log = logging.getLogger("ispeed.server.quarantine")

FILE_NAME = "quarantine.jsonl"


class Quarantine:
    """The quarantine file in `directory` (created 0700 if missing)."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = self.dir / FILE_NAME
        self._lock = threading.Lock()
        self._keys: set[str] = set()
        self._entries = 0
        if self.path.exists():
            with open(self.path, "rb") as fh:
                for line in fh:
                    self._entries += 1
                    try:
                        self._keys.add(str(json.loads(line)["key"]))
                    except (ValueError, KeyError, TypeError):
                        pass  # an entry cut by a crash: counted, never matched

    def entries(self) -> int:
        """How many entries are on disk."""
        return self._entries

    def add_rows(self, refused: list[tuple[Measurement, str]], source: str) -> int:
        """Keep rows the store refused (with its reason); returns how many were new here."""
        entries = [
            (
                f"test:{row.test_id}",
                {"source": source, "reason": reason, "test_id": row.test_id, "record": to_record(row)},
            )
            for row, reason in refused
        ]
        return self._add(entries)

    def add_lines(self, lines: list[SpooledLine]) -> int:
        """Keep spooled lines that cannot be read back; returns how many were new here."""
        entries = []
        for line in lines:
            entries.append(
                (
                    f"line:{hashlib.sha256(line.raw).hexdigest()[:32]}",
                    {
                        "source": "spool",
                        "reason": line.problem,
                        "test_id": _test_id_of(line.raw),
                        "offset": line.offset,
                        "raw_b64": base64.b64encode(line.raw).decode("ascii"),
                    },
                )
            )
        return self._add(entries)

    def _add(self, entries: list[tuple[str, dict[str, Any]]]) -> int:
        with self._lock:
            fresh: dict[str, dict[str, Any]] = {}
            for key, entry in entries:
                if key not in self._keys and key not in fresh:
                    fresh[key] = {"key": key, "quarantined_at": round(time.time(), 3), **entry}
            if not fresh:
                return 0
            blob = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in fresh.values()).encode("ascii")
            append_durably(self.path, blob, "the result quarantine")
            self._keys.update(fresh)
            self._entries += len(fresh)
            return len(fresh)


def _test_id_of(raw: bytes) -> str:
    """The test_id of an unreadable line, when it is JSON enough to say."""
    try:
        record = json.loads(raw)
    except ValueError:
        return ""
    test_id = record.get("test_id") if isinstance(record, dict) else None
    return test_id if isinstance(test_id, str) else ""
