"""Validation of JSON bodies against a field table (core.fields): types, ranges, lengths, unknown names, text."""

from __future__ import annotations

import asyncio
import json
import math
import re
from typing import Any

from aiohttp import web
from aiohttp.http import HttpProcessingError

from ispeed.core.errors import ValidationError
from ispeed.core.fields import Field
from ispeed.server.keys import CONFIG

# C0 and C1 control characters and DEL: never part of an honest version string, id or token
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check(body: Any, fields: dict[str, Field]) -> dict[str, Any]:
    """The body's values, checked; ValidationError names the first bad field."""
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    for name in body:
        if name not in fields:
            raise ValidationError(_printable(str(name)[:64]), "unknown field")
    out: dict[str, Any] = {}
    for name, spec in fields.items():
        value = body.get(name)
        if value is None:
            if spec.required:
                raise ValidationError(name, "is required")
            out[name] = None
            continue
        out[name] = _check_value(name, value, spec)
    return out


def _check_value(name: str, value: Any, spec: Field) -> Any:
    if spec.kind is str:
        if not isinstance(value, str):
            raise ValidationError(name, f"must be a string, got {type(value).__name__}")
        storable_text(name, value)
        if len(value) > spec.max_len:
            raise ValidationError(name, f"is longer than {spec.max_len} characters")
        if spec.choices and value not in spec.choices:
            raise ValidationError(name, f"must be one of {', '.join(spec.choices)}, got {value[:40]!r}")
        return value
    if spec.kind is bool:
        if not isinstance(value, bool):
            raise ValidationError(name, "must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(name, f"must be a number, got {type(value).__name__}")
    if spec.kind is int and not (isinstance(value, int) or float(value).is_integer()):
        raise ValidationError(name, "must be a whole number")
    if not math.isfinite(value):
        raise ValidationError(name, "must be a finite number")
    if (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high):
        raise ValidationError(name, f"must be between {spec.low:g} and {spec.high:g}, got {value:g}")
    return int(value) if spec.kind is int else float(value)


def storable_text(name: str, value: str) -> None:
    """ValidationError unless `value` encodes as UTF-8 and holds no control character.

    `json.loads` accepts a lone surrogate ("\\ud800") that no store or file can encode (docs/architecture.md, traps).
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(name, f"is not valid UTF-8 text (a lone surrogate at position {exc.start})") from None
    bad = _CONTROL.search(value)
    if bad:
        raise ValidationError(name, f"holds a control character (U+{ord(bad.group()):04X}) at position {bad.start()}")


def _printable(text: str) -> str:
    """`text` safe to echo back in an error (control characters and lone surrogates escaped)."""
    return text if text.isprintable() else repr(text)


async def read_json(request: web.Request, max_bytes: int, timeout_s: float | None = None) -> Any:
    """The request's whole JSON body; 413/415/408/400 as JSON errors for oversized, non-JSON, late or malformed.

    The body is read to its end (Content-Length bytes, or the last chunk), not just what has
    arrived: `StreamReader.read(n)` returns what is buffered, and bodies arrive in pieces. It must
    arrive within `timeout_s` (default: the server's `body_timeout_s`).
    """
    if request.content_type != "application/json":
        raise ValidationError("Content-Type", f"must be application/json, got {request.content_type!r}", 415)
    if request.content_length is not None and request.content_length > max_bytes:
        raise ValidationError("body", f"is larger than {max_bytes} bytes", 413)
    if timeout_s is None:
        timeout_s = request.config_dict[CONFIG].body_timeout_s
    try:
        raw = await asyncio.wait_for(_read_whole(request, max_bytes), timeout_s)
    except TimeoutError:
        raise ValidationError(
            "body",
            f"did not arrive within {timeout_s:g} s (Content-Length larger than the body sent, or a stalled client)",
            408,
        ) from None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("body", f"is not valid JSON ({exc})") from exc


async def _read_whole(request: web.Request, max_bytes: int) -> bytes:
    """The body up to its end; 413 past `max_bytes`, 400 when the client hangs up mid-body."""
    parts: list[bytes] = []
    size = 0
    try:
        while True:
            chunk = await request.content.read(max_bytes + 1 - size)
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise ValidationError("body", f"is larger than {max_bytes} bytes", 413)
    except (ConnectionError, web.RequestPayloadError, HttpProcessingError) as exc:
        raise ValidationError("body", f"ended before it was complete ({exc.__class__.__name__})") from exc
    return b"".join(parts)
