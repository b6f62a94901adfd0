"""Signed evidence ids (server/evidence.py): round trip, forgery, alteration, size."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ispeed.core.errors import ValidationError
from ispeed.server import evidence

SECRET = b"evidence-test-secret-0123"


def result(i: int, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "test_id": str(uuid.UUID(int=i + 1)),
        "started_at": 1_780_000_000 + 600 * i,
        "server_id": "hn-1",
        "network_type": "fixed",
        "provider": "Viettel",
        "province_code": "01",
        "commune_code": "00004",
        "download_mbps": 95.25 + i,
        "upload_mbps": 40.5,
        "latency_ms": 7.25,
        "jitter_ms": 0.5,
        "loaded_latency_down_ms": 30.0,
        "loaded_latency_up_ms": None,
        "loss_down_pct": None,
        "loss_up_pct": None,
        "rpm_down": None,
        "rpm_up": None,
        "valid": 1,
        "flags": "",
        "device_hash": "d" * 16,
        "device_source": "issued",
    }
    row.update(changes)
    return row


def test_an_id_round_trips_and_checks_every_result() -> None:
    rows = [result(i) for i in range(3)]
    eid = evidence.create(SECRET, rows, now=1_780_003_000)
    series = evidence.parse(SECRET, eid)
    assert series is not None
    assert series.test_ids == tuple(r["test_id"] for r in rows) and series.created_at == 1_780_003_000
    assert series.same_device
    stored = {r["test_id"]: r for r in rows}
    assert evidence.check(series, stored) == [(r["test_id"], "ok") for r in rows]
    assert eid.startswith("e1.") and eid.count(".") == 2 and len(eid) < 200


def test_altered_and_missing_results_are_named() -> None:
    rows = [result(i) for i in range(3)]
    series = evidence.parse(SECRET, evidence.create(SECRET, rows))
    assert series is not None
    stored = {r["test_id"]: r for r in rows[1:]}
    stored[rows[2]["test_id"]] = result(2, download_mbps=rows[2]["download_mbps"] + 0.001)
    assert [s for _, s in evidence.check(series, stored)] == ["missing", "ok", "altered"]
    # every digested field counts, a float's last digit and NULL vs 0 too
    for change in ({"server_id": "hn-2"}, {"valid": 0}, {"loaded_latency_up_ms": 0.0}, {"started_at": 1_780_001_201}):
        assert evidence.digest(result(1, **change)) != evidence.digest(result(1))
    # what is not digested (how the device was identified) does not alter the figures
    assert evidence.digest(result(1, device_source="none")) == evidence.digest(result(1))


def test_forged_or_damaged_ids_do_not_verify() -> None:
    eid = evidence.create(SECRET, [result(0), result(1)])
    version, payload, mac = eid.split(".")
    assert evidence.parse(b"another-secret-000000000", eid) is None
    flipped = payload[:10] + ("A" if payload[10] != "A" else "B") + payload[11:]
    assert evidence.parse(SECRET, f"{version}.{flipped}.{mac}") is None
    assert evidence.parse(SECRET, f"e2.{payload}.{mac}") is None
    assert evidence.parse(SECRET, f"{version}.{payload}.{mac[:-1]}") is None
    assert evidence.parse(SECRET, eid + ".x") is None
    assert evidence.parse(SECRET, "é" * 20) is None and evidence.parse(SECRET, "x" * 5000) is None
    # a series signed over a bad payload (wrong count) is refused even with a valid MAC
    short = evidence._b64(evidence._HEAD.pack(1, 0, 3) + b"\0" * 24)
    assert evidence.parse(SECRET, f"e1.{short}.{evidence._mac(SECRET, short)}") is None


def test_a_series_holds_one_to_twenty_tests_and_twenty_fit_a_qr_code() -> None:
    rows = [result(i) for i in range(evidence.MAX_TESTS)]
    eid = evidence.create(SECRET, rows)
    assert len(eid) <= evidence.MAX_ID_CHARS and evidence.parse(SECRET, eid) is not None
    with pytest.raises(ValueError, match="1 to 20"):
        evidence.create(SECRET, rows + [result(99)])
    with pytest.raises(ValueError):
        evidence.create(SECRET, [])
    assert not evidence.parse(SECRET, evidence.create(SECRET, [result(0, device_source="none")])).same_device  # type: ignore[union-attr]
    assert not evidence.same_device([result(0), result(1, device_hash="e" * 16)])


def test_test_ids_must_be_uuids() -> None:
    assert evidence.canonical_test_id("6B05A757-4BB1-4447-A475-BEA4BB174BA5") == "6b05a757-4bb1-4447-a475-bea4bb174ba5"
    for bad in ("not-a-uuid", 42, "1" * 65):
        with pytest.raises(ValidationError) as exc:
            evidence.canonical_test_id(bad)
        assert exc.value.field == "test_ids"
