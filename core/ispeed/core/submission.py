"""The result submission (POST /api/v1/results): its fields, in one table, and the body builder of clients.

The server checks bodies against `FIELDS` (`ispeed.server.results`), the Python client builds
them with `body()`, and a browser test checks that every key the page's engine
(`site/testpage/engine.js`) sends is one of them. Fields are a contract: added, never renamed
(docs/architecture.md). The stored figures are the server's own (method v1 §4); what a client
sends beside the token is its own view, checked and kept for audit.
"""

from __future__ import annotations

from typing import Any

from ispeed.core.fields import Field
from ispeed.core.quality import UDP_STATUSES
from ispeed.core.schema import NETWORK_TYPES

CLIENT_KINDS: tuple[str, ...] = ("cli", "agent", "browser")

FIELDS: dict[str, Field] = {
    "token": Field(str, required=True, max_len=1024, doc="the signed test token from POST /api/v1/tests"),
    "test_id": Field(str, max_len=64, doc="the test id of the token (refused when it differs)"),
    "download_mbps": Field(
        float, required=True, low=0, high=100_000, doc="the client's own download figure, Mbit/s (for audit)"
    ),
    "upload_mbps": Field(
        float, required=True, low=0, high=100_000, doc="the client's own upload figure, Mbit/s (for audit)"
    ),
    "latency_ms": Field(float, low=0, high=60_000, doc="idle latency: median WebSocket round trip, ms"),
    "jitter_ms": Field(float, low=0, high=60_000, doc="idle jitter: mean absolute difference of round trips, ms"),
    "loaded_latency_down_ms": Field(float, low=0, high=60_000, doc="median round trip during the download, ms"),
    "loaded_latency_up_ms": Field(float, low=0, high=60_000, doc="median round trip during the upload, ms"),
    "bytes_down": Field(int, low=0, high=1e15, doc="bytes the client received in the download phase"),
    "bytes_up": Field(int, low=0, high=1e15, doc="bytes the server counted in the upload phase"),
    "streams": Field(int, low=1, high=64, doc="parallel streams per direction (the token's count is stored)"),
    "duration_s": Field(float, low=0, high=600, doc="length of each transfer phase, s (the token's is stored)"),
    "network_type": Field(str, choices=NETWORK_TYPES, doc="the network type the user declared"),
    "network_type_device": Field(str, choices=NETWORK_TYPES, doc="the network type the client's OS or modem reports"),
    "lat": Field(float, low=-90, high=90, doc="GPS latitude, degrees (with lon, or neither)"),
    "lon": Field(float, low=-180, high=180, doc="GPS longitude, degrees (with lat, or neither)"),
    "accuracy_m": Field(float, low=0, high=1e7, doc="the GPS fix's accuracy radius, m"),
    "device_id": Field(str, max_len=128, doc="the server-issued device id (spec/identity.md)"),
    "client_kind": Field(str, choices=CLIENT_KINDS, doc="which client ran the test (default cli)"),
    "client_version": Field(str, max_len=64, doc="the client's name and version, e.g. ispeed-web/0.1.0"),
    "method_version": Field(str, max_len=16, doc="the measurement method the client followed (core.method)"),
    "receipt": Field(str, max_len=4096, doc="the server's signed counters at the end of the test, for late results"),
    # method v2 (spec/method-v2.md, UDP loss and delay): the client's side of the UDP probes
    "udp_status": Field(str, choices=UDP_STATUSES, doc="ok, or blocked: no echo of the UDP probes came back"),
    "quality_phases": Field(
        str,
        max_len=2048,
        doc="JSON {phase: counts}: the client's UDP probes and echoes per phase (core.quality.PHASE_FIELDS)",
    ),
    "rpm_down": Field(
        float, low=0, high=1e7, doc="responsiveness while downloading, round trips per minute (method v2)"
    ),
    "rpm_up": Field(float, low=0, high=1e7, doc="responsiveness while uploading, round trips per minute (method v2)"),
}


def body(**values: Any) -> dict[str, Any]:
    """A submission body of `values`, as given; ValueError naming a key that is not a field, or a
    required field left out (a misspelt name fails here, in the client's tests, not at the server)."""
    for name in values:
        if name not in FIELDS:
            raise ValueError(f"{name!r} is not a field of the result submission (ispeed.core.submission.FIELDS)")
    for name, field in FIELDS.items():
        if field.required and values.get(name) is None:
            raise ValueError(f"the result submission needs {name!r} ({field.doc})")
    return dict(values)
