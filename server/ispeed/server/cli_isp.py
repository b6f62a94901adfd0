"""`ispeed isp-key create|list|revoke`: the ISP portal's keys, managed in the store.

Light at import time (argparse and core); the store and the key code load inside the commands.
Each command opens the store itself; when it is an embedded (chDB) store held by a running
`ispeed serve`, it asks that server instead, through its local admin API (`--server`, requests
signed with `--secret`), so keys are created and revoked without stopping the server.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ispeed.core.errors import StoreLocked, UsageError
from ispeed.core.settings import add_setting

if TYPE_CHECKING:
    from ispeed.core.store import Store
    from ispeed.server.admin_client import AdminClient

T = TypeVar("T")
DEFAULT_SERVER = "http://127.0.0.1:8080"  # = admin_client.DEFAULT_SERVER (not imported: keeps this module light)


def _remote_flags(parser: argparse.ArgumentParser) -> None:
    add_setting(parser, "store")
    parser.add_argument(
        "--server",
        default=DEFAULT_SERVER,
        metavar="URL",
        help="the local `ispeed serve` holding an embedded store: used only when the store is in "
        f"use by it (default {DEFAULT_SERVER})",
    )
    add_setting(parser, "secret")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "isp-key",
        help="create, list and revoke ISP portal keys",
        description="Keys for the ISP portal (/isp/v1/): each key reads one provider's data.",
    )
    keys = p.add_subparsers(dest="isp_key_command", metavar="ACTION", parser_class=type(p))
    create = keys.add_parser("create", help="create a key and print it (once: only its hash is stored)")
    create.add_argument("--provider", required=True, help="the ISP, e.g. Viettel (see `ispeed geo providers`)")
    create.add_argument(
        "--expires",
        default=None,
        metavar="YYYY-MM-DD",
        help="last day the key works (Vietnam time); default: no expiry",
    )
    create.add_argument("--note", default="", help="free text kept with the key (who received it)")
    _remote_flags(create)
    create.set_defaults(func=run_create)
    listing = keys.add_parser("list", help="list keys: id, provider, created, expiry, last use, status")
    listing.add_argument("--json", action="store_true", help="one JSON object per key")
    _remote_flags(listing)
    listing.set_defaults(func=run_list)
    revoke = keys.add_parser("revoke", help="revoke a key by id (effective on the next request)")
    revoke.add_argument("key_id", metavar="ID", help="the key id shown by `list` (or the whole key)")
    revoke.add_argument("--reason", default="", help="why (kept with the revocation)")
    _remote_flags(revoke)
    revoke.set_defaults(func=run_revoke)

    def usage(args: argparse.Namespace) -> int:
        p.print_help(sys.stderr)
        return 2

    p.set_defaults(func=usage)


def _keys(args: argparse.Namespace, direct: Callable[[Store], T], remote: Callable[[AdminClient], T]) -> T:
    """`direct(store)` on the store; `remote(client)` through the server when an embedded store is held."""
    from ispeed.core.store import open_store

    try:
        store = open_store(args.store)
    except StoreLocked as exc:
        if not args.secret:
            raise UsageError(
                f"the embedded store {args.store} is in use by another process (a running `ispeed serve`?): to "
                "manage keys through that server, give its secret with --secret or ISPEED_SECRET (and --server "
                f"URL unless it listens on {DEFAULT_SERVER}), or stop it first"
            ) from exc
        from ispeed.server.admin_client import AdminClient

        return remote(AdminClient(args.server, args.secret, args.store))
    with store:
        return direct(store)


def run_create(args: argparse.Namespace) -> int:
    from ispeed.server.isp_keys import create_key, key_json, parse_expiry, provider_name

    provider = provider_name(args.provider)
    expires_at = parse_expiry(args.expires)

    def direct(store: Store) -> tuple[str, dict[str, Any]]:
        new = create_key(store, provider, expires_at, args.note)
        return new.key, key_json(new.record)

    def remote(client: AdminClient) -> tuple[str, dict[str, Any]]:
        shown = client.create(provider, args.expires, args.note)
        return str(shown.pop("key", "")), shown

    key, shown = _keys(args, direct, remote)
    sys.stdout.write(key + "\n")
    sys.stderr.write(
        f"ispeed isp-key: key {shown['key_id']} for {provider}, expires "
        f"{shown['expires_at'] or 'never'}. This is the only time the key is shown: hand it "
        "to the ISP over a secure channel now.\n"
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    from ispeed.core.timeutil import utcnow
    from ispeed.server.isp_keys import key_json, list_keys

    rows = _keys(args, lambda store: [key_json(r, utcnow()) for r in list_keys(store)], lambda client: client.list())
    if args.json:
        for r in rows:
            sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
        return 0
    table = [("ID", "PROVIDER", "CREATED", "EXPIRES", "LAST USED", "STATUS", "NOTE")]
    table += [
        (
            r["key_id"],
            r["provider"],
            r["created_at"],
            r["expires_at"] or "never",
            r["last_used_at"] or "-",
            r["status"],
            r["note"],
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    from ispeed.server.isp_keys import KEY_ID_RE, key_json, parse_key, revoke_key

    parsed = parse_key(args.key_id)
    key_id = parsed[0] if parsed else args.key_id
    if not KEY_ID_RE.fullmatch(key_id):
        raise UsageError(f"key id {args.key_id!r} is unknown: see `ispeed isp-key list` for the ids")
    shown = _keys(
        args,
        lambda store: key_json(revoke_key(store, key_id, args.reason)),
        lambda client: client.revoke(key_id, args.reason),
    )
    sys.stderr.write(
        f"ispeed isp-key: key {shown['key_id']} ({shown['provider']}) revoked at "
        f"{shown['revoked_at']}; servers refuse it from the next request on.\n"
    )
    return 0
