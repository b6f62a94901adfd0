"""ISP access keys: created once, stored as salted hashes, verified per request, revoked by id.

A key reads `isp_<id>_<secret>`: `id` is 12 lowercase hex digits (the lookup key, safe to show
in lists and logs), `secret` 43 URL-safe base64 characters (256 random bits). The store keeps
only `HMAC-SHA256(salt, id ‖ provider ‖ secret)` with a per-key random salt: binding the id and
the provider into the hash means a row edited to name another provider no longer verifies. A
fast hash suffices because the secret is random, not a password. Tables: migration 0003.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from typing import Any, Literal, NamedTuple

from ispeed.core.errors import ConfigError, UsageError
from ispeed.core.store import Store
from ispeed.core.timeutil import VN_TZ, isoformat_utc, utcnow

KEY_RE = re.compile(r"isp_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
KEY_ID_RE = re.compile(r"[0-9a-f]{12}")
MAX_KEY_CHARS = 64  # longer Authorization values are refused before any parsing
NEVER = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # expires_at of a key without expiry

KEY_TYPES = {
    "key_id": "String",
    "provider": "String",
    "salt": "String",
    "key_hash": "String",
    "created_at": "DateTime('UTC')",
    "expires_at": "DateTime('UTC')",
    "note": "String",
}
EVENT_TYPES = {"key_id": "String", "event": "String", "at": "DateTime('UTC')", "detail": "String"}

Outcome = Literal["allowed", "malformed_key", "unknown_key", "bad_secret", "expired", "revoked"]

_SELECT_KEYS = (
    "SELECT key_id, provider, toUnixTimestamp(created_at), toUnixTimestamp(expires_at), note, salt,"
    " key_hash FROM {db}.isp_keys WHERE %s ORDER BY created_at, key_id"
)
_SELECT_REVOKED = (
    "SELECT key_id, min(toUnixTimestamp(at)) FROM {db}.isp_key_events WHERE event = 'revoked' AND %s GROUP BY key_id"
)


class _KeyRow(NamedTuple):
    """A row of _SELECT_KEYS, in its column order (times as Unix seconds)."""

    key_id: str
    provider: str
    created_at_s: int
    expires_at_s: int  # 0: never
    note: str
    salt: str
    key_hash: str


@dataclass(frozen=True)
class KeyRecord:
    """What the store knows about a key (never its secret)."""

    key_id: str
    provider: str
    created_at: dt.datetime
    expires_at: dt.datetime | None  # None = never
    revoked_at: dt.datetime | None
    note: str = ""
    last_used_at: dt.datetime | None = None

    def status(self, now: dt.datetime) -> Literal["active", "expired", "revoked"]:
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True)
class NewKey:
    """A freshly created key: `key` is the only copy of the secret; show it once."""

    record: KeyRecord
    key: str


@dataclass(frozen=True)
class Verdict:
    """The outcome of presenting a key; `record` is set whenever the key id exists."""

    outcome: Outcome
    key_id: str = ""
    record: KeyRecord | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome == "allowed"


def _ts(epoch: Any) -> dt.datetime | None:
    epoch = int(epoch or 0)
    return None if epoch == 0 else dt.datetime.fromtimestamp(epoch, dt.UTC)


def expiry_from_date(day: dt.date) -> dt.datetime:
    """A key created with `--expires DAY` works through DAY, Vietnam time (UTC+7)."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), VN_TZ).astimezone(dt.UTC)


def parse_key(text: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed key, else None. ASCII only: look-alike characters fail here."""
    if len(text) > MAX_KEY_CHARS or not text.isascii():
        return None
    m = KEY_RE.fullmatch(text)
    return (m.group(1), m.group(2)) if m else None


def key_hash(salt: str, key_id: str, provider: str, secret: str) -> str:
    return hmac.new(salt.encode(), f"{key_id}\n{provider}\n{secret}".encode(), hashlib.sha256).hexdigest()


class StoredKey(NamedTuple):
    """What the store holds for a key: its record, salt and hash."""

    record: KeyRecord
    salt: str
    key_hash: str


KeyRows = list[StoredKey]  # of one key id (one, unless a row was ever copied), or of every key


def key_rows(store: Store, key_id: str | None = None) -> KeyRows:
    """The stored rows of one key id (one, unless a row was ever copied), or of every key."""
    where = "key_id = {key_id}" if key_id else "1"
    params = {"key_id": key_id} if key_id else None
    rows = store.query(_SELECT_KEYS % where, params)
    revoked = {kid: at for kid, at in store.query(_SELECT_REVOKED % where, params)} if rows else {}
    out = []
    for row in map(_KeyRow._make, rows):
        record = KeyRecord(
            key_id=row.key_id,
            provider=row.provider,
            created_at=_ts(row.created_at_s) or NEVER,
            expires_at=_ts(row.expires_at_s),
            revoked_at=_ts(revoked.get(row.key_id)),
            note=row.note,
        )
        out.append(StoredKey(record, row.salt, row.key_hash))
    return out


def create_key(
    store: Store, provider: str, expires_at: dt.datetime | None = None, note: str = "", now: dt.datetime | None = None
) -> NewKey:
    """Store a new key for `provider` (already its canonical name) and return it, secret included."""
    if not provider:
        raise UsageError("--provider '' is empty: name the ISP the key is for, e.g. --provider Viettel")
    now = (now or utcnow()).replace(microsecond=0)
    while True:
        key_id = secrets.token_hex(6)
        if not key_rows(store, key_id):
            break
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    salt = secrets.token_hex(16)
    store.insert_columns(
        "isp_keys",
        {
            "key_id": [key_id],
            "provider": [provider],
            "salt": [salt],
            "key_hash": [key_hash(salt, key_id, provider, secret)],
            "created_at": [int(now.timestamp())],
            "expires_at": [int(expires_at.timestamp()) if expires_at else 0],
            "note": [note],
        },
        KEY_TYPES,
    )
    record = KeyRecord(key_id, provider, now, expires_at, None, note)
    return NewKey(record, f"isp_{key_id}_{secret}")


def list_keys(store: Store) -> list[KeyRecord]:
    """Every key, oldest first, with its last allowed use (from the audit log)."""
    from ispeed.server.audit import last_used

    used = last_used(store)
    return [replace(stored.record, last_used_at=used.get(stored.record.key_id)) for stored in key_rows(store)]


def find_key(store: Store, key_id: str) -> KeyRecord | None:
    found = key_rows(store, key_id) if KEY_ID_RE.fullmatch(key_id) else []
    return found[0].record if found else None


def revoke_key(store: Store, key_id_or_key: str, reason: str = "", now: dt.datetime | None = None) -> KeyRecord:
    """Revoke a key (by id, or by the whole key); revoking twice keeps the first revocation."""
    parsed = parse_key(key_id_or_key)
    key_id = parsed[0] if parsed else key_id_or_key
    record = find_key(store, key_id)
    if record is None:
        raise UsageError(f"key id {key_id_or_key!r} is unknown: see `ispeed isp-key list` for the ids")
    if record.revoked_at is not None:
        return record
    now = (now or utcnow()).replace(microsecond=0)
    store.insert_columns(
        "isp_key_events",
        {"key_id": [key_id], "event": ["revoked"], "at": [int(now.timestamp())], "detail": [reason]},
        EVENT_TYPES,
    )
    return KeyRecord(record.key_id, record.provider, record.created_at, record.expires_at, now, record.note)


def judge(rows: KeyRows, key_id: str, secret: str, now: dt.datetime) -> Verdict:
    """The verdict on `secret` for `key_id`, given that id's stored rows; constant-time compare."""
    if not rows:
        return Verdict("unknown_key", key_id)
    for record, salt, digest in rows:  # one row unless an id was ever stored twice
        if hmac.compare_digest(key_hash(salt, key_id, record.provider, secret), digest):
            status = record.status(now)
            return Verdict("allowed" if status == "active" else status, key_id, record)
    return Verdict("bad_secret", key_id, rows[0].record)


def verify(store: Store, presented: str, now: dt.datetime | None = None) -> Verdict:
    """Check a presented key against the store; one primary-key lookup, constant-time compare."""
    parsed = parse_key(presented)
    if parsed is None:
        return Verdict("malformed_key")
    key_id, secret = parsed
    return judge(key_rows(store, key_id), key_id, secret, now or utcnow())


def provider_name(text: str) -> str:
    """The canonical name of a provider given as `--provider TEXT` (any case or alias)."""
    from ispeed.admin_geo.providers import canonical_provider, providers

    found = canonical_provider(text.strip()) if text.isprintable() else None
    if found is None:
        known = ", ".join(p.name for p in providers())
        raise ConfigError(
            "--provider",
            text[:80],
            f"not a known provider; use one of: {known} (operators add providers in admin_geo's data/providers.csv)",
        )
    return found.name


def parse_expiry(text: str | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """The expiry of `--expires YYYY-MM-DD` (None: never); refuses other forms and past days."""
    if text is None:
        return None
    try:
        day = dt.date.fromisoformat(text) if len(text) == 10 and text.isascii() else None
    except ValueError:
        day = None
    if day is None:
        raise ConfigError("--expires", text[:80], "use a date YYYY-MM-DD, e.g. 2026-12-31")
    expires_at = expiry_from_date(day)
    if expires_at <= (now or utcnow()):
        raise ConfigError("--expires", text, "that day has already passed; give a future date")
    return expires_at


def when(ts: dt.datetime | None, never: str = "-") -> str:
    """A time as `ispeed isp-key` shows it (UTC, seconds)."""
    return isoformat_utc(ts) if ts else never


def key_json(record: KeyRecord, now: dt.datetime | None = None) -> dict[str, str | None]:
    """A key as `ispeed isp-key list --json` and the admin API show it (never its secret)."""
    return {
        "key_id": record.key_id,
        "provider": record.provider,
        "created_at": when(record.created_at),
        "expires_at": when(record.expires_at, "") or None,
        "last_used_at": when(record.last_used_at, "") or None,
        "revoked_at": when(record.revoked_at, "") or None,
        "status": record.status(now or utcnow()),
        "note": record.note,
    }
