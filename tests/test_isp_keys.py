"""ISP keys: format, salted hashes bound to id and provider, expiry, revocation, and `ispeed isp-key`."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ispeed.cli.main import main
from ispeed.core.store import Store, open_store
from ispeed.server.audit import AuditEntry, last_used, write_entries
from ispeed.server.isp_keys import (
    KEY_RE,
    create_key,
    expiry_from_date,
    find_key,
    key_hash,
    list_keys,
    parse_key,
    revoke_key,
    verify,
)
from tests.serve_process import ServeProcess

UTC = dt.UTC
SERVE_SECRET = "functional-test-secret-000"  # the secret tests/serve_process.py starts `serve` with


def test_key_format_rejects_lookalikes_and_garbage() -> None:
    good = "isp_0123456789ab_" + "A" * 43
    assert parse_key(good) == ("0123456789ab", "A" * 43)
    for bad in (
        "",
        good[:-1],
        good + "A",
        good.upper(),
        good.replace("isp_", "ISP_"),
        " " + good,
        good + "\n",
        good.replace("0", "\uff10"),
        good[:-1] + "\u0410",
        good.replace("_", "-", 1),
        "isp_0123456789ab_" + "A" * 42 + "=",
        "A" * 10_000,
    ):
        assert parse_key(bad) is None, bad
    assert expiry_from_date(dt.date(2026, 1, 31)) == dt.datetime(2026, 1, 31, 17, 0, tzinfo=UTC)  # 24:00 UTC+7


def test_hash_binds_the_provider_and_id() -> None:
    h = key_hash("salt", "0123456789ab", "VNPT", "s" * 43)
    assert h != key_hash("salt", "0123456789ab", "Viettel", "s" * 43)
    assert h != key_hash("salt", "0123456789ac", "VNPT", "s" * 43)
    assert h != key_hash("tlas", "0123456789ab", "VNPT", "s" * 43)


def test_create_verify_expire_revoke(store: Store) -> None:
    now = dt.datetime(2026, 3, 1, tzinfo=UTC)
    new = create_key(store, "VNPT", expires_at=now + dt.timedelta(days=1), note="noc@vnpt", now=now)
    assert KEY_RE.fullmatch(new.key) and new.record.provider == "VNPT"
    kid, secret = parse_key(new.key)  # type: ignore[misc]
    stored = store.query("SELECT * FROM {db}.isp_keys")
    assert len(stored) == 1 and secret not in json.dumps([list(map(str, r)) for r in stored])  # only a hash
    assert verify(store, new.key, now).outcome == "allowed"
    assert verify(store, new.key, now).record.provider == "VNPT"  # type: ignore[union-attr]
    assert verify(store, new.key, now + dt.timedelta(days=1)).outcome == "expired"
    assert verify(store, new.key[:-1] + ("B" if new.key[-1] != "B" else "C"), now).outcome == "bad_secret"
    assert verify(store, f"isp_{'f' * 12}_{secret}", now).outcome == "unknown_key"
    # a row edited to name another provider no longer verifies
    store.execute(
        "INSERT INTO {db}.isp_keys SELECT key_id, 'Viettel', salt, key_hash, created_at, expires_at, note"
        " FROM {db}.isp_keys WHERE key_id = {kid}",
        {"kid": kid},
    )
    verdict = verify(store, new.key, now)
    assert verdict.outcome == "allowed" and verdict.record.provider == "VNPT"  # type: ignore[union-attr]
    revoked = revoke_key(store, kid, "leaked", now=now + dt.timedelta(hours=1))
    assert revoked.revoked_at == now + dt.timedelta(hours=1)
    assert revoke_key(store, new.key, now=now + dt.timedelta(hours=2)).revoked_at == revoked.revoked_at  # first wins
    assert verify(store, new.key, now + dt.timedelta(hours=1)).outcome == "revoked"
    assert find_key(store, kid).status(now + dt.timedelta(hours=1)) == "revoked"  # type: ignore[union-attr]
    assert find_key(store, "x' OR 1 --") is None
    write_entries(
        store,
        [
            AuditEntry(now, kid, "VNPT", "GET", "/isp/v1/months", "127.0.0.0/24", "allowed", 200),
            AuditEntry(now + dt.timedelta(minutes=5), kid, "VNPT", "GET", "/x", "127.0.0.0/24", "bad_secret", 401),
        ],
    )
    assert last_used(store) == {kid: now}
    # the edited copy stays visible to operators (tamper evidence), yet the key only ever serves VNPT
    assert sorted((k.provider, k.last_used_at) for k in list_keys(store)) == [("VNPT", now), ("Viettel", now)]


def test_cli_create_list_revoke(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            ["isp-key", "create", "--provider", "fpt", "--expires", "2099-12-31", "--note", "noc", "--store", store_url]
        )
        == 0
    )
    out, err = capsys.readouterr()
    key = out.strip()
    assert KEY_RE.fullmatch(key) and "only time" in err and "FPT Telecom" in err
    kid = key.split("_")[1]
    assert main(["isp-key", "list", "--json", "--store", store_url]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed == [
        {
            "key_id": kid,
            "provider": "FPT Telecom",
            "created_at": listed[0]["created_at"],
            "expires_at": "2099-12-31T17:00:00Z",
            "last_used_at": None,
            "revoked_at": None,
            "status": "active",
            "note": "noc",
        }
    ]
    assert key not in json.dumps(listed) and key.split("_", 2)[2] not in json.dumps(listed)
    assert main(["isp-key", "revoke", kid, "--store", store_url]) == 0
    assert main(["isp-key", "list", "--store", store_url]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["ID", "PROVIDER", "CREATED"] and kid in table[1] and "revoked" in table[1]
    for argv, needle in (
        (["create", "--provider", "NoSuchISP"], "--provider"),
        (["create", "--provider", "VNPT", "--expires", "2020-01-01"], "--expires"),
        (["create", "--provider", "VNPT", "--expires", "31/12/2099"], "--expires"),
        (["revoke", "feedfacecafe"], "unknown"),
    ):
        assert main(["isp-key", *argv, "--store", store_url]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and needle in err


def test_serve_process_with_cli_managed_key(clickhouse_server: object, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{clickhouse_server.url}/isp_serve"  # type: ignore[attr-defined]
    with open_store(url):
        pass
    assert main(["isp-key", "create", "--provider", "Viettel", "--store", url]) == 0
    key = capsys.readouterr().out.strip()

    def get(path: str, key: str | None) -> int:
        req = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {key}"} if key else {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                assert json.loads(r.read())["provider"] == "Viettel"
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    with ServeProcess(url) as server:
        assert get("/isp/v1/months", key) == 200
        assert get("/isp/v1/months", None) == 401
        assert main(["isp-key", "revoke", key.split("_")[1], "--store", url]) == 0
        assert get("/isp/v1/months", key) == 401
    assert main(["isp-key", "list", "--json", "--store", url]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["status"] == "revoked" and row["last_used_at"] is not None


def isp_key(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`ispeed isp-key ARGV` as a real process (no ISPEED_* settings inherited)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("ISPEED_")}
    return subprocess.run(
        [sys.executable, "-m", "ispeed.cli.main", "isp-key", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**base, **(env or {})},
    )


def portal_status(base_url: str, key: str) -> int:
    req = urllib.request.Request(base_url + "/isp/v1/months", headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_cli_manages_keys_through_the_server_holding_an_embedded_store(tmp_path: Path) -> None:
    """`ispeed isp-key` works while `ispeed serve` holds a chDB store: it signs its calls to the server."""
    url = f"chdb:{tmp_path / 'store'}"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{s.getsockname()[1]}"  # closed below: nothing listens there
    with ServeProcess(url) as server:
        remote = ["--store", url, "--server", server.url]
        # what goes wrong is one line naming the flag to fix
        for argv, env, needle in (
            (["create", "--provider", "Viettel", "--store", url], {}, "--secret"),
            (["create", "--provider", "Viettel", *remote, "--secret", "not-the-server-secret"], {}, "--secret"),
            (["list", "--store", url, "--server", nobody, "--secret", SERVE_SECRET], {}, "--server"),
            (["create", "--provider", "NoSuchISP", *remote], {"ISPEED_SECRET": SERVE_SECRET}, "--provider"),
            (["revoke", "feedfacecafe", *remote], {"ISPEED_SECRET": SERVE_SECRET}, "unknown"),
        ):
            done = isp_key(*argv, env=env)
            assert done.returncode == 2 and done.stdout == "", (argv, done)
            assert len(done.stderr.strip().splitlines()) == 1 and needle in done.stderr, (argv, done.stderr)
        assert "in use" in isp_key("list", "--store", url).stderr  # no secret: says why the store is out of reach

        created = isp_key(
            "create", "--provider", "viettel", "--note", "noc", *remote, env={"ISPEED_SECRET": SERVE_SECRET}
        )
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip()
        assert KEY_RE.fullmatch(key) and "only time" in created.stderr and "Viettel" in created.stderr
        kid = key.split("_")[1]
        assert portal_status(server.url, key) == 200

        listed = isp_key("list", "--json", *remote, "--secret", SERVE_SECRET)
        (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
        assert (row["key_id"], row["provider"], row["status"], row["note"]) == (kid, "Viettel", "active", "noc")
        assert row["last_used_at"] is not None and key.split("_", 2)[2] not in listed.stdout

        revoked = isp_key("revoke", kid, "--reason", "leaked", *remote, "--secret", SERVE_SECRET)
        assert revoked.returncode == 0 and "revoked" in revoked.stderr, revoked.stderr
        assert portal_status(server.url, key) == 401  # at once (the promise is within a minute)
        table = isp_key("list", *remote, "--secret", SERVE_SECRET).stdout.splitlines()
        assert table[0].split()[:2] == ["ID", "PROVIDER"] and kid in table[1] and "revoked" in table[1]
    # the server has stopped: the same keys, read directly from the store
    listed = isp_key("list", "--json", "--store", url)
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["key_id"], row["status"]) == (kid, "revoked")
