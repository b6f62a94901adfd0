"""Diacritics- and case-insensitive search of unit names ("thai nguyen", "TP HCM" -> the right unit)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from ispeed.admin_geo.units import Commune, Province, commune_index, province_index

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
# Type words people put in front of a name; removed before matching (longest first).
_TYPE_WORDS = ("thanh pho", "dac khu", "thi tran", "thi xa", "phuong", "huyen", "quan", "tinh", "tp", "xa", "p")
# Common short forms and former names -> province code.
PROVINCE_ALIASES: dict[str, str] = {
    "hcm": "79",
    "tphcm": "79",
    "hcmc": "79",
    "sai gon": "79",
    "saigon": "79",
    "ho chi minh city": "79",
    "hn": "01",
    "hanoi": "01",
    "ha noi city": "01",
    "hp": "31",
    "dn": "48",
    "danang": "48",
    "ct": "92",
    "thua thien hue": "46",
}


def fold(text: str) -> str:
    """Lower-case ASCII words: 'Thành phố Hồ Chí Minh' -> 'thanh pho ho chi minh'."""
    text = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = text.replace("'", "").replace("’", "")
    return _NON_ALNUM.sub(" ", text).strip()


def strip_type_word(folded: str) -> str:
    for word in _TYPE_WORDS:
        if folded.startswith(word + " "):
            return folded[len(word) + 1 :]
    return folded


@dataclass(frozen=True, slots=True)
class Match:
    """One unit found by name; lower score is a better match (0 exact, 1 prefix, 2 substring)."""

    unit: Province | Commune
    score: int


@lru_cache(maxsize=1)
def _index() -> tuple[tuple[str, str, Province | Commune], ...]:
    entries: list[tuple[str, str, Province | Commune]] = []
    units: list[Province | Commune] = [*province_index().values(), *commune_index().values()]
    for unit in units:
        key = fold(unit.name)
        entries.append((key, key.replace(" ", ""), unit))
    return tuple(entries)


def find(name: str, limit: int = 20) -> list[Match]:
    """Units whose name matches, best first: exact, then prefix, then substring; provinces before communes."""
    query = fold(name)
    if not query:
        return []
    stripped = strip_type_word(query)
    matches: dict[tuple[str, str], Match] = {}

    def add(unit: Province | Commune, score: int) -> None:
        key = (unit.level, unit.code)
        if key not in matches or matches[key].score > score:
            matches[key] = Match(unit, score)

    for alias in {query, stripped, query.replace(" ", ""), stripped.replace(" ", "")}:
        if alias in PROVINCE_ALIASES:
            add(province_index()[PROVINCE_ALIASES[alias]], 0)
    compact = stripped.replace(" ", "")
    for key, key_compact, unit in _index():
        if key in (stripped, query) or compact == key_compact:
            add(unit, 0)
        elif key.startswith(stripped) or key_compact.startswith(compact):
            add(unit, 1)
        elif len(compact) >= 3 and compact in key_compact:
            add(unit, 2)
    ranked = sorted(matches.values(), key=lambda m: (m.score, m.unit.level != "province", m.unit.code))
    return ranked[:limit]
