"""The result submission's one table (core.submission): the server checks it, the client builds with it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ispeed.client.config import TestConfig
from ispeed.client.engine import Engine
from ispeed.core import submission
from ispeed.core.errors import ValidationError
from ispeed.core.fields import Field
from ispeed.server import results, validate
from ispeed.server.app import running
from ispeed.server.config import ServerConfig

SECRET = b"submission-secret-0123456789"
# the contract (docs/architecture.md): names are added to, never renamed or removed
CONTRACT_FIELDS = (
    "token",
    "test_id",
    "download_mbps",
    "upload_mbps",
    "latency_ms",
    "jitter_ms",
    "loaded_latency_down_ms",
    "loaded_latency_up_ms",
    "bytes_down",
    "bytes_up",
    "streams",
    "duration_s",
    "network_type",
    "network_type_device",
    "lat",
    "lon",
    "accuracy_m",
    "device_id",
    "client_kind",
    "client_version",
    "method_version",
    "receipt",
)


def test_the_table_keeps_every_contract_field_and_says_what_each_is() -> None:
    assert tuple(submission.FIELDS)[: len(CONTRACT_FIELDS)] == CONTRACT_FIELDS
    assert [n for n, f in submission.FIELDS.items() if f.required] == ["token", "download_mbps", "upload_mbps"]
    for name, field in submission.FIELDS.items():
        assert isinstance(field, Field) and field.kind in (str, int, float, bool), name
        assert field.doc and "\n" not in field.doc, f"{name} needs a one-line doc"


def test_the_server_validates_with_the_core_table() -> None:
    assert results.RESULT_FIELDS is submission.FIELDS
    token = {"token": "a.b", "download_mbps": 1, "upload_mbps": 2}
    # bounds, choices and lengths are the table's own
    for name, bad, reason in (
        ("latency_ms", 60_001, "between 0 and 60000"),
        ("streams", 65, "between 1 and 64"),
        ("network_type", "wifi", "must be one of fixed, mobile, 5g"),
        ("client_kind", "robot", "must be one of cli, agent, browser"),
        ("device_id", "x" * 129, "longer than 128"),
    ):
        with pytest.raises(ValidationError) as caught:
            validate.check({**token, name: bad}, results.RESULT_FIELDS)
        assert caught.value.field == name and reason in caught.value.reason
    values = validate.check({**token, "streams": 4.0, "lat": 21, "lon": 105}, results.RESULT_FIELDS)
    assert set(values) == set(submission.FIELDS) and values["streams"] == 4 and values["lat"] == 21.0


def test_body_refuses_a_misspelt_or_missing_field_by_name() -> None:
    good = {"token": "t.s", "download_mbps": 1.5, "upload_mbps": 0.5, "receipt": None}
    assert submission.body(**good) == good
    with pytest.raises(ValueError, match="'upload_mpbs' is not a field of the result submission"):
        submission.body(token="t.s", download_mbps=1.5, upload_mpbs=0.5)
    with pytest.raises(ValueError, match="needs 'token'"):
        submission.body(download_mbps=1.5, upload_mbps=0.5)
    with pytest.raises(ValueError, match="needs 'upload_mbps'"):
        submission.body(token="t.s", download_mbps=1.5, upload_mbps=None)


def test_the_client_sends_only_table_fields_and_the_server_takes_them(tmp_path: Path) -> None:
    cfg = TestConfig(
        server_url="http://127.0.0.1:1",  # replaced below, once the server listens
        streams=1,
        duration_s=1.0,
        network_type="fixed",
        lat=21.03,
        lon=105.85,
        accuracy_m=12.0,
        device_id="self-chosen",
        client_kind="agent",
    )

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        config = ServerConfig(host="127.0.0.1", port=0, store_url=f"chdb:{tmp_path / 'store'}", secret=SECRET)
        async with running(config) as (url, _app):
            engine = Engine(TestConfig(**{**cfg.__dict__, "server_url": url}))
            _, sent = await engine.measure()
            async with aiohttp.ClientSession() as http:
                async with http.post(url + "/api/v1/results", json=sent) as answer:
                    assert answer.status == 201, await answer.text()
                    return sent, await answer.json()

    sent, answer = asyncio.run(main())
    assert set(sent) <= set(submission.FIELDS)
    json.dumps(sent)  # the agent's outbox writes it as JSON
    for name in ("token", "download_mbps", "upload_mbps", "lat", "lon", "accuracy_m", "device_id", "network_type"):
        assert name in sent, name
    assert (sent["client_kind"], sent["lat"], sent["accuracy_m"]) == ("agent", 21.03, 12.0)
    assert answer["status"] == "accepted" and answer["location_source"] == "gps"
