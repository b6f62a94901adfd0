"""The CLI's side of the admin API: signed calls to the local `ispeed serve` that holds the store.

Standard library only (urllib), so `ispeed isp-key` stays light. Every refusal becomes one
IspeedError naming the flag to fix: `--server` (nobody answers, another store, not this machine),
`--secret` (the signature is refused), or the key or value at fault.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ispeed.core.errors import ConfigError, StoreError, UsageError
from ispeed.server.admin_auth import authorization, store_label

DEFAULT_SERVER = "http://127.0.0.1:8080"
TIMEOUT_S = 30.0


class AdminClient:
    """Signed calls to `server`'s /admin/v1/ for the store `store_url` (checked by the server: 409 if not its own)."""

    def __init__(self, server: str, secret: str, store_url: str, timeout_s: float = TIMEOUT_S) -> None:
        parts = urllib.parse.urlsplit(server.strip())
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
        ):
            raise ConfigError(
                "--server", server, f"use the base URL of the local `ispeed serve`, e.g. {DEFAULT_SERVER}"
            )
        self.server = f"{parts.scheme}://{parts.netloc}"
        self._secret = secret.encode()
        self.store = store_label(store_url)
        self.timeout_s = timeout_s

    def create(self, provider: str, expires: str | None, note: str) -> dict[str, Any]:
        """The new key's fields, with `key` (the secret, shown once)."""
        return self._call("POST", "/admin/v1/isp-keys", {"provider": provider, "expires": expires, "note": note})

    def list(self) -> list[dict[str, Any]]:
        keys = self._call("GET", "/admin/v1/isp-keys").get("keys")
        if not isinstance(keys, list):
            raise self._not_ispeed("its answer has no key list")
        return keys

    def revoke(self, key_id: str, reason: str) -> dict[str, Any]:
        return self._call(
            "POST", f"/admin/v1/isp-keys/{urllib.parse.quote(key_id, safe='')}/revoke", {"reason": reason}
        )

    def _not_ispeed(self, why: str) -> ConfigError:
        return ConfigError(
            "--server",
            self.server,
            f"{why}: is it an `ispeed serve` of this version? Give the URL of the server that holds the store",
        )

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        target = f"{path}?{urllib.parse.urlencode({'store': self.store})}"
        body = json.dumps(payload, ensure_ascii=False).encode() if payload is not None else b""
        headers = {"Authorization": authorization(self._secret, method, target, body), "Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(
            self.server + target, data=body if payload is not None else None, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                text = resp.read()
        except urllib.error.HTTPError as exc:
            raise self._refused(exc) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConfigError(
                "--server",
                self.server,
                f"no ispeed server answers there ({reason}): give the URL "
                "of the `ispeed serve` that holds the store, or stop it "
                "and run the command again",
            ) from exc
        try:
            answer = json.loads(text)
        except ValueError as exc:
            raise self._not_ispeed("its answer is not JSON") from exc
        if not isinstance(answer, dict):
            raise self._not_ispeed("its answer is not a JSON object")
        return answer

    def _refused(self, exc: urllib.error.HTTPError) -> Exception:
        try:
            answer = json.loads(exc.read(64 << 10))
            reason, field = str(answer.get("error", "")), str(answer.get("field", ""))
        except (ValueError, AttributeError, OSError):
            reason, field = "", ""
        if not reason:
            return self._not_ispeed(f"it answers {exc.code} without an ispeed error")
        if exc.code == 401:
            return ConfigError(
                "--secret",
                "***",
                f"the server at {self.server} refused the signature ({reason}); "
                "give the secret that `ispeed serve` runs with (--secret or "
                "ISPEED_SECRET; a server started without one made up its own: "
                "stop it to manage keys, and start it with a secret)",
            )
        if exc.code in (403, 409) or (exc.code == 404 and field != "key_id"):
            return ConfigError("--server", self.server, reason)
        if exc.code >= 500 or exc.code == 429:
            return StoreError(f"the server at {self.server} could not do it now ({exc.code}: {reason}); retry shortly")
        return UsageError(reason)
