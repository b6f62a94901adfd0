"""One bad row never stops result storage, and the spool survives a crash at any step.

Rows the store refuses (a lone surrogate from an older spool, a line that cannot be read) go to
the quarantine file and the rest is stored, on both store backends. The spool is killed at each
of its file operations in turn; after a restart every acknowledged result is stored exactly once.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ispeed.core.schema import Measurement, to_record
from ispeed.core.store import open_store
from ispeed.server import spool as spool_module
from ispeed.server.ingest import Ingestor
from ispeed.server.metrics import Metrics
from ispeed.server.spool import Spool

STARTED = dt.datetime(2025, 7, 31, 18, 30, tzinfo=dt.UTC)


def _row(**kw: Any) -> Measurement:
    base: dict[str, Any] = dict(
        test_id=str(uuid.uuid4()),
        started_at=STARTED,
        local_date=(STARTED + dt.timedelta(hours=7)).date(),
        network_type="fixed",
        provider="VNPT",
        download_mbps=50.0,
        upload_mbps=20.0,
        client_version="1.0",
    )
    base.update(kw)
    return Measurement(**base)


def _counts(store_url: str, ids: set[str]) -> dict[str, int]:
    with open_store(store_url) as store:
        rows = store.query(
            "SELECT test_id, count() FROM {db}.measurements WHERE test_id IN {ids} GROUP BY test_id",
            {"ids": sorted(ids)},
        )
    return {tid: n for tid, n in rows}


def _quarantined(directory: Path) -> list[dict[str, Any]]:
    path = directory / "quarantine.jsonl"
    return [json.loads(line) for line in path.read_text("ascii").splitlines()] if path.exists() else []


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- item 1: a row the store refuses --------------------------------------------------------


def test_a_refused_row_in_a_live_batch_is_quarantined_and_the_rest_stored(store_url: str, tmp_path: Path) -> None:
    """Without a spool, the surrogate row's batch-mates answered 500; now they are stored, it gets 422."""
    from ispeed.core.errors import ValidationError
    from ispeed.server.quarantine import Quarantine

    good = [_row(), _row(), _row()]
    bad = _row(client_version="\ud800")  # json.loads accepts it; no store can encode it

    async def main() -> list[Any]:
        metrics = Metrics()
        ing = Ingestor(
            lambda: open_store(store_url), metrics, None, batch_wait_s=0.2, quarantine=Quarantine(tmp_path / "q")
        )
        await ing.start()
        try:  # submitted together: one batch
            outcomes = await asyncio.gather(
                *(ing.submit(r) for r in (good[0], bad, good[1], good[2])), return_exceptions=True
            )
        finally:
            await ing.close()
        text = metrics.render()
        assert "ispeed_results_quarantined_total 1" in text and "ispeed_results_quarantined_on_disk 1" in text
        return outcomes

    outcomes = asyncio.run(main())
    assert [outcomes[0], outcomes[2], outcomes[3]] == ["stored"] * 3
    assert isinstance(outcomes[1], ValidationError) and outcomes[1].status == 422
    assert _counts(store_url, {r.test_id for r in good + [bad]}) == {r.test_id: 1 for r in good}
    entries = _quarantined(tmp_path / "q")
    assert [e["test_id"] for e in entries] == [bad.test_id] and entries[0]["source"] == "ingest"
    assert entries[0]["record"]["client_version"] == "\ud800" and "UnicodeEncodeError" in entries[0]["reason"]
    assert _mode(tmp_path / "q" / "quarantine.jsonl") == 0o600


def test_spooled_lines_the_store_refuses_never_block_the_replay(
    store_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A surrogate row, a torn-JSON line and a record of an unknown shape sit between good rows."""
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    good = [_row() for _ in range(5)]
    bad = _row(device_hash="dev\udfff")
    lines = [
        json.dumps(to_record(good[0])),
        json.dumps(to_record(bad)),
        '{"test_id": "x", "trunc',
        json.dumps({**to_record(good[1]), "from_a_newer_version": 1}),
        json.dumps(to_record(good[2])),
    ]
    (spool_dir / "results.jsonl").write_text("".join(line + "\n" for line in lines), "ascii")

    async def main() -> tuple[int, str]:
        metrics = Metrics()
        spool = Spool(spool_dir)
        ing = Ingestor(lambda: open_store(store_url), metrics, spool, replay_rows=2)
        try:
            moved = await ing.replay_once()
            assert spool.pending_bytes() == 0
            spool.append(good[3:])  # the spool goes on working after them
            await ing.replay_once()
            assert spool.pending_bytes() == 0 and spool.size() == 0
            moved += await ing.replay_once()  # a second pass: nothing quarantined twice
        finally:
            await ing.close()
        return moved, metrics.render()

    with caplog.at_level(logging.WARNING, logger="ispeed.server"):
        moved, text = asyncio.run(main())
    stored = [good[0], *good[2:]]  # good[1] was written by a "newer version": quarantined too
    assert _counts(store_url, {r.test_id for r in good + [bad]}) == {r.test_id: 1 for r in stored}
    entries = _quarantined(spool_dir)
    assert len(entries) == 3 and "ispeed_results_quarantined_total 3" in text
    assert "ispeed_results_quarantined_on_disk 3" in text
    by_id = {e.get("test_id"): e for e in entries}
    assert by_id[bad.test_id]["record"]["device_hash"] == "dev\udfff"
    assert base64.b64decode(by_id[""]["raw_b64"]) == b'{"test_id": "x", "trunc\n'
    assert "from_a_newer_version" in by_id[good[1].test_id]["reason"]
    assert bad.test_id in caplog.text and all(
        r.levelno == logging.WARNING for r in caplog.records if "quarantine" in r.getMessage()
    )


def test_a_refused_row_with_the_spool_in_use_is_quarantined_not_spooled(store_url: str, tmp_path: Path) -> None:
    """Before, the failed batch went to the spool and every later result queued behind it, forever."""
    good = [_row() for _ in range(4)]
    bad = _row(client_version="\ud800")

    async def main() -> list[Any]:
        spool = Spool(tmp_path / "spool")
        ing = Ingestor(lambda: open_store(store_url), Metrics(), spool, batch_wait_s=0.2, retry_s=0.1)
        await ing.start()
        try:
            first = await asyncio.gather(*(ing.submit(r) for r in (good[0], bad, good[1])), return_exceptions=True)
            later = await asyncio.gather(*(ing.submit(r) for r in good[2:]))
            assert spool.pending_bytes() == 0
        finally:
            await ing.close()
        return [*first, *later]

    outcomes = asyncio.run(main())
    assert [o for i, o in enumerate(outcomes) if i != 1] == ["stored"] * 4
    assert _counts(store_url, {r.test_id for r in good + [bad]}) == {r.test_id: 1 for r in good}
    assert [e["test_id"] for e in _quarantined(tmp_path / "spool")] == [bad.test_id]


def test_a_failing_store_is_not_mistaken_for_bad_rows(store_url: str, tmp_path: Path) -> None:
    """The table is gone for a while: every row fails with a store error. They are spooled, not quarantined."""
    rows = [_row() for _ in range(3)]
    rename = "RENAME TABLE {db}.measurements TO {db}.measurements_away"

    async def main() -> list[str]:
        spool = Spool(tmp_path / "spool")
        ing = Ingestor(lambda: open_store(store_url), Metrics(), spool, batch_wait_s=0.2, retry_s=0.1)
        await ing.start()
        try:
            await ing.run_in_store(lambda st: st.execute(rename))
            outcomes = await asyncio.gather(*(ing.submit(r) for r in rows))
            await asyncio.sleep(0.5)  # the replay keeps failing meanwhile: nothing moves
            assert spool.pending_bytes() > 0
            await ing.run_in_store(lambda st: st.execute("RENAME TABLE {db}.measurements_away TO {db}.measurements"))
            for _ in range(100):
                if spool.pending_bytes() == 0:
                    break
                await asyncio.sleep(0.1)
        finally:
            await ing.close()
        return list(outcomes)

    assert asyncio.run(main()) == ["spooled"] * 3
    assert _counts(store_url, {r.test_id for r in rows}) == {r.test_id: 1 for r in rows}
    assert _quarantined(tmp_path / "spool") == []


def test_a_row_clickhouse_refuses_is_told_from_a_failing_store(store_url: str, tmp_path: Path) -> None:
    """ClickHouse refuses asn=-1 for UInt32 (a store error, unlike chDB, which wraps it around)."""
    if store_url.startswith("chdb:"):
        pytest.skip("chDB takes any value it can coerce; only ClickHouse refuses a row with a store error")
    good = [_row() for _ in range(4)]
    bad = _row(asn=-1)

    async def main() -> tuple[list[Any], list[Any]]:
        spool = Spool(tmp_path / "spool")
        ing = Ingestor(lambda: open_store(store_url), Metrics(), spool, batch_wait_s=0.2, retry_s=0.1)
        await ing.start()
        try:
            mixed = await asyncio.gather(*(ing.submit(r) for r in (good[0], bad, good[1])), return_exceptions=True)
            # alone in its batch it cannot be told from a failing store: spooled, then found once
            # a good row joins it in the replay
            alone = [await ing.submit(_row(test_id=bad.test_id + "-2", asn=-1))]
            alone += await asyncio.gather(*(ing.submit(r) for r in good[2:]))
            for _ in range(100):
                if spool.pending_bytes() == 0:
                    break
                await asyncio.sleep(0.1)
        finally:
            await ing.close()
        return mixed, alone

    mixed, alone = asyncio.run(main())
    assert mixed[0] == mixed[2] == "stored" and getattr(mixed[1], "status", None) == 422
    assert alone == ["spooled"] * 3
    assert _counts(store_url, {r.test_id for r in good}) == {r.test_id: 1 for r in good}
    entries = _quarantined(tmp_path / "spool")
    assert sorted(e["test_id"] for e in entries) == sorted([bad.test_id, bad.test_id + "-2"])
    assert all("Type mismatch" in e["reason"] for e in entries)


def test_a_failing_replay_is_logged_at_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The store stays away: the replay's failures were logged only at DEBUG."""
    from ispeed.core.errors import StoreUnavailable

    def unreachable() -> Any:
        raise StoreUnavailable("cannot reach ClickHouse at clickhouse://127.0.0.1:9/x (test)")

    async def main() -> None:
        spool = Spool(tmp_path / "spool")
        spool.append([_row()])
        ing = Ingestor(unreachable, Metrics(), spool, retry_s=0.05)
        await ing.start()
        await asyncio.sleep(0.5)
        await ing.close()

    with caplog.at_level(logging.DEBUG, logger="ispeed.server"):
        asyncio.run(main())
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    replay = [m for m in warnings if "replay" in m]
    assert replay and "cannot reach ClickHouse" in replay[0]
    assert len(warnings) <= 4, warnings  # about 10 failed attempts do not flood the log


# -- item 3: the spool on disk --------------------------------------------------------------


def test_spool_files_are_private(tmp_path: Path) -> None:
    """They hold hashes, networks and GPS: 0600, also when an older version left a 0644 file."""
    old = os.umask(0o022)
    try:
        spool = Spool(tmp_path / "fresh")
        spool.append([_row(), _row()])
        spool.commit(spool.read_batch(1)[1])
        assert _mode(spool.data_path) == 0o600 and _mode(spool.offset_path) == 0o600
        legacy = tmp_path / "legacy"
        legacy.mkdir()
        (legacy / "results.jsonl").write_text(json.dumps(to_record(_row())) + "\n")
        (legacy / "results.jsonl").chmod(0o644)
        Spool(legacy)
        assert _mode(legacy / "results.jsonl") == 0o600
    finally:
        os.umask(old)


class Crash(BaseException):
    """The process dies here (BaseException: no `except Exception` may survive it)."""


class CrashingOS(ModuleType):
    """`os` for the spool module that dies before its `crash_at`-th file operation."""

    STEPS = ("open", "write", "fsync", "ftruncate", "truncate", "replace", "rename", "unlink", "remove", "fchmod")

    def __init__(self, crash_at: int) -> None:
        super().__init__("os")
        self.crash_at = crash_at
        self.steps = 0
        self.armed = True

    def __getattr__(self, name: str) -> Any:
        real = getattr(os, name)
        if name not in self.STEPS:
            return real

        def step(*args: Any, **kwargs: Any) -> Any:
            if self.armed:
                if self.steps == self.crash_at:
                    raise Crash(name)
                self.steps += 1
            return real(*args, **kwargs)

        return step


def _crash_scenario(store_url: str, directory: Path, fake_os: CrashingOS) -> tuple[set[str], set[str]]:
    """Append, replay (partial commits, then the reset), append, replay; killed at fake_os.crash_at.

    Then a restart: a new Spool on the same files, one more append and a replay. Returns the ids
    acknowledged (their append returned) and all ids written."""
    batches = [[_row() for _ in range(3)], [_row() for _ in range(2)], [_row() for _ in range(2)]]
    acked: set[str] = set()

    async def phase(spool_batches: list[list[Measurement]]) -> None:
        spool = Spool(directory)
        ing = Ingestor(lambda: open_store(store_url), Metrics(), spool, replay_rows=2)
        try:
            for rows in spool_batches:
                spool.append(rows)
                acked.update(r.test_id for r in rows)
                await ing.replay_once()
        finally:
            fake_os.armed = False  # the "restart": nothing dies any more
            await ing.close()

    try:
        asyncio.run(phase(batches[:2]))
    except Crash:
        pass
    fake_os.armed = False
    asyncio.run(phase(batches[2:]))
    return acked, {r.test_id for rows in batches for r in rows}


def test_the_spool_replays_each_acknowledged_result_once_whatever_the_crash_point(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a crash between emptying the data file and removing the offset left a stale offset,
    so later results were skipped (or the replay started mid-line and stalled)."""
    dry = CrashingOS(crash_at=10**9)
    monkeypatch.setattr(spool_module, "os", dry)
    _crash_scenario(store_url, tmp_path / "dry", dry)
    total_steps = dry.steps
    assert total_steps >= 10
    for crash_at in range(total_steps + 1):
        fake_os = CrashingOS(crash_at)
        monkeypatch.setattr(spool_module, "os", fake_os)
        directory = tmp_path / f"crash-{crash_at}"
        acked, written = _crash_scenario(store_url, directory, fake_os)
        counts = _counts(store_url, written)
        assert acked <= set(counts), f"crash before step {crash_at}: {len(acked - set(counts))} acknowledged lost"
        assert set(counts.values()) <= {1}
        assert Spool(directory).pending_bytes() == 0 and not _quarantined(directory), crash_at


def test_stale_offsets_left_by_older_versions_are_not_trusted(tmp_path: Path) -> None:
    """An offset past the end of the data file, or inside a line, replays from the start (idempotent)."""
    rows = [_row(), _row()]
    for offset in ("999999", "7"):
        directory = tmp_path / offset
        spool = Spool(directory)
        spool.append(rows)
        (directory / "replayed.offset").write_text(offset)
        reopened = Spool(directory)
        lines, _ = reopened.read_batch(10)
        assert [line.row.test_id for line in lines if line.row] == [r.test_id for r in rows]


FULL_DISK = textwrap.dedent("""
    import datetime as dt, json, resource, signal, sys, uuid
    from ispeed.core.schema import Measurement
    from ispeed.server.spool import Spool, SpoolFull

    def row():
        t = dt.datetime(2025, 7, 31, 18, 30, tzinfo=dt.timezone.utc)
        return Measurement(test_id=str(uuid.uuid4()), started_at=t, local_date=t.date(), network_type="fixed")

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # past the limit: EFBIG, as on a full disk
    spool = Spool(sys.argv[1])
    spool.append([row() for _ in range(3)])
    before = spool.size()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (before + 1000, hard))   # the write stops part-way
    try:
        spool.append([row() for _ in range(20)])
        outcome = "no error"
    except SpoolFull as exc:
        outcome = "full: " + str(exc)
    after = spool.size()
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    spool.append([row()])
    print(json.dumps({"outcome": outcome, "before": before, "after": after}))
""")


def test_a_write_cut_short_by_a_full_disk_is_refused_and_leaves_no_torn_line(tmp_path: Path) -> None:
    """The kernel writes part of the batch, then refuses: before, the short write went unnoticed."""
    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(tmp_path / "spool")], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["outcome"].startswith("full: ") and "spool" in report["outcome"], report
    assert report["after"] == report["before"]
    lines, _ = Spool(tmp_path / "spool").read_batch(100)
    assert len(lines) == 4 and all(line.row is not None for line in lines)


def test_a_server_started_on_an_old_spool_with_a_bad_row_stores_the_rest_and_shows_it_on_metrics(
    store_url: str, tmp_path: Path
) -> None:
    """A poisoned spool across a restart: its bad line no longer stops all storage."""
    import aiohttp

    from ispeed.server.app import running
    from ispeed.server.config import ServerConfig

    good, bad = [_row(), _row()], _row(client_version="\ud800")
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    (spool_dir / "results.jsonl").write_text("".join(json.dumps(to_record(r)) + "\n" for r in (bad, *good)))

    async def main() -> str:
        config = ServerConfig(host="127.0.0.1", port=0, store_url=store_url, secret=b"s" * 32, spool_dir=str(spool_dir))
        async with running(config) as (url, _app), aiohttp.ClientSession() as http:
            for _ in range(100):  # the replay runs at start-up, then every 2 s
                async with http.get(url + "/metrics") as r:
                    text = await r.text()
                if "ispeed_spool_pending_bytes 0" in text:
                    return text
                await asyncio.sleep(0.1)
        raise AssertionError("the spool was not replayed:\n" + text)

    text = asyncio.run(main())
    assert "ispeed_results_quarantined_total 1\n" in text and "ispeed_results_quarantined_on_disk 1.0" in text
    assert _counts(store_url, {r.test_id for r in (bad, *good)}) == {r.test_id: 1 for r in good}
