"""This device's server-issued id: kept in STATE_DIR/device-id, confirmed with each server on first contact.

On first contact with a server in a process the client POSTs /api/v1/devices with the id it
holds (if any). The server answers with the id to use: the same one (genuine), a renewed one
(the fleet rotated its secret), or a new one (none held, or one the server cannot vouch for: an
old random id, another fleet's id). A changed id replaces the stored one. When the server issues
no id — its allowance for this network is spent today (429), or it is an older server without
the endpoint (404) — the test goes on without one and counts under the client's IP address
(spec/identity.md); one warning says so.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from ispeed.core import files
from ispeed.core.errors import ServerUnreachable

log = logging.getLogger("ispeed.client.identity")

STATE_FILE = "device-id"
SIGNED_ID = re.compile(r"d1\.[A-Za-z0-9_-]{22}\.[0-9]{8}\.[A-Za-z0-9_-]{43}")
RECHECK_AFTER_S = 86400.0  # a long-running agent confirms its id with a server once a day


def looks_signed(text: str) -> bool:
    """True when `text` has the form of a server-issued id (only a server can tell it is genuine)."""
    return SIGNED_ID.fullmatch(text) is not None


class DeviceIdentity:
    """The signed id in `state_dir`, and what each server said about it during this process."""

    def __init__(self, state_dir: Path, timeout_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(state_dir) / STATE_FILE
        self.timeout_s = timeout_s
        self.clock = clock
        self._vouched: dict[str, tuple[str, float]] = {}  # server -> (id, when confirmed)
        self._not_before: dict[str, float] = {}  # server -> no new request before this time
        self._warned_storage = False

    def stored(self) -> str:
        """The stored id when it has the signed form, else '' (absent, unreadable, an old random id)."""
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return ""
        return text if looks_signed(text) else ""

    async def for_server(self, server_url: str) -> str:
        """The id to present to `server_url` with a result, or '' to be counted under the IP address.

        ServerUnreachable when the server does not answer (the test could not run either).
        """
        base = server_url.rstrip("/")
        now = self.clock()
        vouched = self._vouched.get(base)
        if vouched and now - vouched[1] < RECHECK_AFTER_S:
            return vouched[0]
        if now < self._not_before.get(base, 0.0):
            return ""
        held = self.stored()
        status, answer = await self._post(base, {"device_id": held} if held else {})
        device_id = answer.get("device_id") if isinstance(answer, dict) else None
        if status in (200, 201) and isinstance(device_id, str) and looks_signed(device_id):
            if device_id != held:
                self._store(device_id)
            self._vouched[base] = (device_id, now)
            return device_id
        if status == 429:
            retry_s = _retry_after_s(answer)
            self._not_before[base] = now + retry_s
            log.warning(
                "%s issues no more device ids to your network today (retry in %.0f h); this test "
                "counts under your IP address",
                base,
                retry_s / 3600,
            )
        elif status in (404, 405):
            self._not_before[base] = now + RECHECK_AFTER_S
            log.warning("%s does not issue device ids (an older server); tests count under your IP address", base)
        else:
            self._not_before[base] = now + 60.0
            reason = answer.get("error") if isinstance(answer, dict) else answer
            log.warning(
                "%s did not issue a device id (HTTP %s: %s); this test counts under your IP address",
                base,
                status,
                reason,
            )
        return ""

    async def _post(self, base: str, body: dict[str, str]) -> tuple[int, Any]:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(base + "/api/v1/devices", json=body) as resp:
                    try:
                        answer = await resp.json(content_type=None)
                    except ValueError:
                        answer = None
                    return resp.status, answer
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            raise ServerUnreachable(
                f"cannot reach the test server at {base} ({exc.__class__.__name__}: {exc}); "
                "check the --server URL and that `ispeed serve` is running"
            ) from exc

    def _store(self, device_id: str) -> None:
        """Replace the stored id atomically; an unwritable state dir costs a warning, not the test."""
        try:
            files.write_text(self.path, device_id + "\n", durable=True)
        except OSError as exc:
            if not self._warned_storage:
                self._warned_storage = True
                log.warning(
                    "cannot keep the device id in %s (%s); set --state-dir to a writable directory", self.path, exc
                )


def _retry_after_s(answer: Any) -> float:
    try:
        return max(60.0, float(answer["retry_after_s"]))
    except (TypeError, KeyError, ValueError):
        return 3600.0
