"""HTTP error answers: always JSON with a reason (and the field, when one is to blame)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ispeed.core.errors import StoreError, ValidationError

log = logging.getLogger("ispeed.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(status: int, reason: str, field: str | None = None, **extra: object) -> web.HTTPException:
    """An aiohttp HTTP exception carrying `{"error": reason, "field": field}`."""
    body: dict[str, object] = {"error": reason}
    if field:
        body["field"] = field
    body.update(extra)
    headers = {"Retry-After": str(max(1, round(float(extra["retry_after_s"]))))} if "retry_after_s" in extra else None  # type: ignore[arg-type]
    exc = web.HTTPException(text=json.dumps(body), content_type="application/json", headers=headers)
    exc.set_status(status)
    return exc


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type != "application/json" and exc.status >= 400:
            raise json_error(exc.status, exc.reason) from None
        raise
    except ValidationError as exc:
        raise json_error(exc.status, exc.reason, exc.field) from exc
    except StoreError as exc:
        log.warning("store error on %s: %s", request.path, exc)
        raise json_error(503, "the result store is unavailable; retry later") from exc
