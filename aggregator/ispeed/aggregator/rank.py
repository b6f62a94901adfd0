"""Methodology v1 ranks: 1 + the number of cells in the group whose CI low is above this CI high.

Groups (published cells only): providers with the other providers of the same network type
and place (level, province, commune); places (provider empty) with the other places of the same
level and network type — provinces with all provinces, communes with the communes of the same
province. The national all-provider cell has rank 1. A cell without an interval (fewer than
6 samples at 95%) counts as (−∞, +∞): it is never above another cell, nor below one.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Hashable, Sequence

from ispeed.core.stats import Cell


def rank_group(cell: Cell) -> Hashable:
    """The comparison group of a cell, as a hashable key."""
    if cell["provider"]:
        return ("provider", cell["network_type"], cell["level"], cell["province_code"], cell["commune_code"])
    if cell["level"] == "commune":
        return ("place", cell["network_type"], "commune", cell["province_code"])
    return ("place", cell["network_type"], cell["level"])


def assign_ranks(cells: Sequence[Cell]) -> None:
    """Set `rank` on every cell: an int for published cells, None otherwise."""
    groups: dict[Hashable, list[Cell]] = defaultdict(list)
    for cell in cells:
        cell["rank"] = None
        if cell["published"]:
            groups[rank_group(cell)].append(cell)
    for members in groups.values():
        lows = sorted(_low(c) for c in members)
        for cell in members:
            high = _high(cell)
            above = len(lows) - bisect.bisect_right(lows, high)
            cell["rank"] = 1 + above


def _low(cell: Cell) -> float:
    v = cell["download_ci_low_mbps"]
    return -math.inf if v is None else float(v)


def _high(cell: Cell) -> float:
    v = cell["download_ci_high_mbps"]
    return math.inf if v is None else float(v)
