"""`ispeed isp-key create|list|revoke`: the ISP portal's keys, managed in the store.

Light at import time (argparse and core); the store and the key code load inside the commands.
An embedded (chDB) store held by a running `ispeed serve` answers one "in use" line: manage
keys on a ClickHouse server store, or with the server stopped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from ispeed.core.errors import ConfigError
from ispeed.core.settings import add_setting


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("isp-key", help="create, list and revoke ISP portal keys",
                       description="Keys for the ISP portal (/isp/v1/): each key reads one provider's data.")
    keys = p.add_subparsers(dest="isp_key_command", metavar="ACTION", parser_class=type(p))
    create = keys.add_parser("create", help="create a key and print it (once: only its hash is stored)")
    create.add_argument("--provider", required=True, help="the ISP, e.g. Viettel (see `ispeed geo providers`)")
    create.add_argument("--expires", default=None, metavar="YYYY-MM-DD",
                        help="last day the key works (Vietnam time); default: no expiry")
    create.add_argument("--note", default="", help="free text kept with the key (who received it)")
    add_setting(create, "store")
    create.set_defaults(func=run_create)
    listing = keys.add_parser("list", help="list keys: id, provider, created, expiry, last use, status")
    listing.add_argument("--json", action="store_true", help="one JSON object per key")
    add_setting(listing, "store")
    listing.set_defaults(func=run_list)
    revoke = keys.add_parser("revoke", help="revoke a key by id (effective on the next request)")
    revoke.add_argument("key_id", metavar="ID", help="the key id shown by `list` (or the whole key)")
    revoke.add_argument("--reason", default="", help="why (kept with the revocation)")
    add_setting(revoke, "store")
    revoke.set_defaults(func=run_revoke)

    def usage(args: argparse.Namespace) -> int:
        p.print_help(sys.stderr)
        return 2
    p.set_defaults(func=usage)


def _provider(name: str) -> str:
    from ispeed.admin_geo.providers import canonical_provider, providers

    found = canonical_provider(name.strip())
    if found is None:
        known = ", ".join(p.name for p in providers())
        raise ConfigError("--provider", name, f"not a known provider; use one of: {known} "
                          "(operators add providers in admin_geo's data/providers.csv)")
    return found.name


def _expires(text: str | None) -> dt.datetime | None:
    from ispeed.server.isp_keys import expiry_from_date

    if text is None:
        return None
    try:
        day = dt.date.fromisoformat(text) if len(text) == 10 and text.isascii() else None
    except ValueError:
        day = None
    if day is None:
        raise ConfigError("--expires", text, "use a date YYYY-MM-DD, e.g. 2026-12-31")
    expires_at = expiry_from_date(day)
    if expires_at <= dt.datetime.now(dt.timezone.utc):
        raise ConfigError("--expires", text, "that day has already passed; give a future date")
    return expires_at


def _when(ts: dt.datetime | None, never: str = "-") -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ") if ts else never


def run_create(args: argparse.Namespace) -> int:
    from ispeed.core.store import open_store
    from ispeed.server.isp_keys import create_key

    provider = _provider(args.provider)
    expires_at = _expires(args.expires)
    with open_store(args.store) as store:
        new = create_key(store, provider, expires_at, args.note)
    sys.stdout.write(new.key + "\n")
    sys.stderr.write(f"ispeed isp-key: key {new.record.key_id} for {provider}, expires "
                     f"{_when(expires_at, 'never')}. This is the only time the key is shown: hand it "
                     "to the ISP over a secure channel now.\n")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from ispeed.core.store import open_store
    from ispeed.server.isp_keys import list_keys

    with open_store(args.store) as store:
        records = list_keys(store)
    now = dt.datetime.now(dt.timezone.utc)
    if args.json:
        for r in records:
            sys.stdout.write(json.dumps({
                "key_id": r.key_id, "provider": r.provider, "created_at": _when(r.created_at),
                "expires_at": _when(r.expires_at, "") or None, "last_used_at": _when(r.last_used_at, "") or None,
                "revoked_at": _when(r.revoked_at, "") or None, "status": r.status(now), "note": r.note,
            }, ensure_ascii=False) + "\n")
        return 0
    rows = [("ID", "PROVIDER", "CREATED", "EXPIRES", "LAST USED", "STATUS", "NOTE")]
    rows += [(r.key_id, r.provider, _when(r.created_at), _when(r.expires_at, "never"), _when(r.last_used_at),
              r.status(now), r.note) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + "\n")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    from ispeed.core.store import open_store
    from ispeed.server.isp_keys import revoke_key

    with open_store(args.store) as store:
        record = revoke_key(store, args.key_id, args.reason)
    sys.stderr.write(f"ispeed isp-key: key {record.key_id} ({record.provider}) revoked at "
                     f"{_when(record.revoked_at)}; servers refuse it from the next request on.\n")
    return 0
