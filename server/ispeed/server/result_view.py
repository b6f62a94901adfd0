"""A stored result as people read it: names instead of codes, local time, ratings and the comparison.

The test page (`/r/<test_id>.json`, fetched after a test) and the server-rendered `/r/<test_id>`
build the same view from the same stored row, so a shared link shows what the tester saw.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ispeed.admin_geo import commune, province
from ispeed.core import ratings, responsiveness
from ispeed.core.errors import ValidationError
from ispeed.core.store import Store
from ispeed.core.timeutil import VN_TZ
from ispeed.server import compare

# the stored columns a view (and an evidence digest) reads; started_at as UTC epoch seconds
COLUMNS: tuple[str, ...] = (
    "test_id",
    "started_at",
    "network_type",
    "provider",
    "province_code",
    "commune_code",
    "location_source",
    "download_mbps",
    "upload_mbps",
    "latency_ms",
    "jitter_ms",
    "loaded_latency_down_ms",
    "loaded_latency_up_ms",
    "loss_down_pct",
    "loss_up_pct",
    "rpm_down",
    "rpm_up",
    "streams",
    "duration_s",
    "client_kind",
    "server_id",
    "method_version",
    "valid",
    "flags",
    "device_hash",
    "device_source",
)
_SELECT = ", ".join("toUnixTimestamp(started_at)" if c == "started_at" else c for c in COLUMNS)
TYPE_NAMES_EN = {"phuong": "ward", "xa": "commune", "dac_khu": "special zone", "thanh_pho": "city", "tinh": "province"}


def load(store: Store, test_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The stored (non-simulated) results among `test_ids`, by id."""
    if not test_ids:
        return {}
    params = {f"id{i}": t for i, t in enumerate(test_ids)}
    wanted = ", ".join(f"{{id{i}}}" for i in range(len(test_ids)))
    rows = store.query(
        f"SELECT {_SELECT} FROM {{db}}.measurements WHERE test_id IN ({wanted}) AND simulated = 0", params
    )
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        result = dict(zip(COLUMNS, row, strict=True))
        out.setdefault(str(result["test_id"]), result)  # a replayed row is the same result
    return out


def place_names(province_code: str, commune_code: str, lang: str) -> tuple[str, str]:
    """(province, commune) names in the page's language; the code itself when admin_geo does not know it."""
    prov = comm = ""
    try:
        if province_code:
            p = province(province_code)
            prov = p.name if lang == "en" else p.full_name
    except ValidationError:
        prov = province_code
    try:
        if commune_code:
            c = commune(commune_code)
            comm = f"{c.name} {TYPE_NAMES_EN.get(c.type, '')}".strip() if lang == "en" else c.full_name
    except ValidationError:
        comm = commune_code
    return prov, comm


def short_province(province_code: str) -> str:
    """'Hà Nội' (no 'Thành phố'): how sentences name a province."""
    try:
        return province(province_code).name if province_code else ""
    except ValidationError:
        return province_code


def local_time(epoch_s: int | float) -> str:
    """`2025-07-14 20:05` in Vietnam local time."""
    return dt.datetime.fromtimestamp(int(epoch_s), dt.UTC).astimezone(VN_TZ).strftime("%Y-%m-%d %H:%M")


def view(result: dict[str, Any], lang: str, comparison: dict[str, Any] | None) -> dict[str, Any]:
    """The view of one stored result (JSON-ready)."""
    province_name, commune_name = place_names(result["province_code"], result["commune_code"], lang)
    started = int(result["started_at"])
    nt = result["network_type"]
    out = {k: result[k] for k in COLUMNS if k not in ("device_hash", "started_at", "flags", "valid")}
    out.update(
        started_at=dt.datetime.fromtimestamp(started, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        started_local=local_time(started),
        valid=bool(result["valid"]),
        flags=[f for f in str(result.get("flags") or "").split(",") if f],
        lang=lang,
        network_type_name=compare.NETWORK_NAMES.get(nt, (nt, nt))[1 if lang == "en" else 0],
        province_name=province_name,
        commune_name=commune_name,
        place_name=", ".join(n for n in (commune_name, province_name) if n),
        ratings=ratings.rate(result, lang),
        # the draft's class (Excellent, Good, Fair, Poor) of the worse direction's RPM, as `ispeed test --json`
        rpm_label=responsiveness.label(
            min((r for r in (result["rpm_down"], result["rpm_up"]) if r is not None), default=None)
        ),
        compare=comparison,
        result_url=f"/r/{result['test_id']}",
        image_url=f"/r/{result['test_id']}.png" + ("?lang=en" if lang == "en" else ""),
    )
    return out


def build(store: Store, test_id: str, lang: str, site_dir: str | None) -> dict[str, Any] | None:
    """Read one result and build its view (on the store thread), with the comparison unless
    `site_dir` is None."""
    result = load(store, [test_id]).get(test_id)
    if result is None:
        return None
    if site_dir is None:
        return view(result, lang, None)
    q = compare.Query(
        result["network_type"], result["province_code"], result["provider"], float(result["download_mbps"])
    )
    comparison = compare.compare(store, q, site_dir, short_province(result["province_code"]), lang)
    return view(result, lang, comparison)
