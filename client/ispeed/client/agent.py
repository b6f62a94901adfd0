"""`ispeed agent`: scheduled tests with random jitter, a JSONL log, and an outbox for retries.

Every test's result is appended to the log. Its submission is written to the outbox (fsynced)
before the first attempt and removed once the server accepts it; what could not be submitted
(server or store away) is re-sent at the start of later rounds, across restarts too: the
server checks late results against the signed receipt of its own counters.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ispeed.client.config import TestConfig
from ispeed.client.engine import Engine
from ispeed.client.identity import DeviceIdentity
from ispeed.client.outbox import Outbox
from ispeed.client.selection import choose, server_list
from ispeed.core.errors import ConfigError, MeasurementError, ServerRefused, ServerUnreachable
from ispeed.core.timeutil import isoformat_utc

log = logging.getLogger("ispeed.client.agent")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_every(text: str) -> float:
    """'90', '45s', '30m', '1h', '1h30m', '1d' → seconds; ConfigError otherwise."""
    parts = _DURATION.findall(text or "")
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ConfigError("--every", text, "use a duration such as 30m, 1h, 6h or 1h30m")
    seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    if seconds < 1:
        raise ConfigError("--every", text, "use at least 1s between tests")
    return seconds


@dataclass(frozen=True)
class AgentConfig:
    test: TestConfig
    every_s: float
    log_path: Path
    outbox_dir: Path
    count: int | None = None  # None: run until stopped
    jitter_fraction: float = 0.1  # each wait is every × (1 ± jitter)
    candidates: tuple[str, ...] = ()  # several servers: pick the lowest latency each round
    server_list_url: str = ""
    state_dir: Path | None = None  # keeps the server-issued device id (None: test.device_id as given)


class Agent:
    def __init__(self, cfg: AgentConfig, rng: random.Random | None = None) -> None:
        self.cfg = cfg
        self.outbox = Outbox(cfg.outbox_dir)
        self.rng = rng or random.Random()
        self.identity = DeviceIdentity(cfg.state_dir) if cfg.state_dir is not None else None
        cfg.log_path.parent.mkdir(parents=True, exist_ok=True)

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.cfg.log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")

    async def flush_outbox(self) -> int:
        """Re-send pending submissions; returns how many were accepted now."""
        sent = 0
        for path, submission in list(self.outbox.pending()):
            server = submission.pop("_server", self.cfg.test.server_url)
            try:
                answer = await Engine(replace(self.cfg.test, server_url=server)).submit(submission)
            except ServerRefused as exc:
                if exc.retryable:
                    return sent
                self.outbox.reject(path, str(exc))
                self._log({"at": _now(), "event": "rejected", "test_id": path.stem, "error": str(exc)})
                continue
            except (ServerUnreachable, MeasurementError):
                return sent  # still away: try again next round
            self.outbox.done(path)
            sent += 1
            self._log({"at": _now(), "event": "resubmitted", "test_id": path.stem, "status": answer.get("status")})
        return sent

    async def _server(self) -> str:
        candidates = list(self.cfg.candidates)
        if self.cfg.server_list_url:
            candidates = await server_list(self.cfg.server_list_url)
        if len(candidates) <= 1:
            return candidates[0] if candidates else self.cfg.test.server_url
        best, _ = await choose(candidates)
        return best

    async def round(self) -> dict[str, Any]:
        """One test (and its submission); the log record."""
        await self.flush_outbox()
        record: dict[str, Any] = {"at": _now(), "event": "test"}
        try:
            server = await self._server()
            device_id = await self.identity.for_server(server) if self.identity else self.cfg.test.device_id
            test_cfg = replace(self.cfg.test, server_url=server, device_id=device_id)
            engine = Engine(test_cfg)
            result, submission = await engine.measure()
        except MeasurementError as exc:
            record.update(error=str(exc))
            self._log(record)
            return record
        record.update(result)
        path = self.outbox.put(result["test_id"], {**submission, "_server": test_cfg.server_url})
        try:
            answer = await engine.submit(submission)
            self.outbox.done(path)
            record.update(
                submitted=True,
                status=answer.get("status"),
                valid=answer.get("valid"),
                provider=answer.get("provider", ""),
                province_code=answer.get("province_code", ""),
            )
        except ServerRefused as exc:
            record.update(submitted=False, error=str(exc))
            if not exc.retryable:
                self.outbox.reject(path, str(exc))
            else:
                record["pending"] = True
        except MeasurementError as exc:
            record.update(submitted=False, pending=True, error=str(exc))
        self._log(record)
        return record

    async def run(self, stop: asyncio.Event | None = None) -> int:
        """Rounds until `count` is reached or `stop` is set; returns the number of rounds."""
        stop = stop or asyncio.Event()
        rounds = 0
        while not stop.is_set() and (self.cfg.count is None or rounds < self.cfg.count):
            record = await self.round()
            rounds += 1
            log.info(
                "round %d: %s",
                rounds,
                record.get("error") or f"{record.get('download_mbps')} / {record.get('upload_mbps')} Mbps",
            )
            if self.cfg.count is not None and rounds >= self.cfg.count:
                break
            wait = self.cfg.every_s * (1 + self.rng.uniform(-self.cfg.jitter_fraction, self.cfg.jitter_fraction))
            try:
                await asyncio.wait_for(stop.wait(), wait)
            except TimeoutError:
                pass
        return rounds


def _now() -> str:
    return isoformat_utc(dt.datetime.now(dt.UTC))
