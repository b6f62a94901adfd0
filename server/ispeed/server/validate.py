"""Validation of JSON bodies against a field table: types, ranges, lengths, unknown fields."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ispeed.core.errors import ValidationError


@dataclass(frozen=True)
class Field:
    kind: type                      # str, int, float, bool
    required: bool = False
    low: float | None = None
    high: float | None = None
    max_len: int = 256
    choices: tuple[str, ...] = ()
    nullable: bool = True


def check(body: Any, fields: dict[str, Field]) -> dict[str, Any]:
    """The body's values, checked; ValidationError names the first bad field."""
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    for name in body:
        if name not in fields:
            raise ValidationError(str(name)[:64], "unknown field")
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


async def read_json(request: web.Request, max_bytes: int) -> Any:
    """The request's JSON body; 413/415/400 as JSON errors for oversized, non-JSON or malformed."""
    if request.content_type != "application/json":
        raise ValidationError("Content-Type", f"must be application/json, got {request.content_type!r}", 415)
    if request.content_length is not None and request.content_length > max_bytes:
        raise ValidationError("body", f"is larger than {max_bytes} bytes", 413)
    raw = await request.content.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise ValidationError("body", f"is larger than {max_bytes} bytes", 413)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("body", f"is not valid JSON ({exc})") from exc
