"""Administrative units by name or code: provinces before and after 2025, districts, wards. Offline.

Names are compared by a unit key: diacritics folded, the unit type ("Phường", "P.", "Quận",
"TP", "Tỉnh" ...) separated from the name, numbers without leading zeros ("Phường 01" and "P.1"
are ward "1"). A name that matches several units is returned as several candidates: callers
report an ambiguity, they never pick one.

Province codes: a 2025 code names a 2025 province; a legacy two-digit code that is not a 2025
code is read as the legacy province and mapped to its successor. That is safe because each 2025
province kept the code of one of the provinces it was formed from: a legacy code that is also a
2025 code always maps onto that very province (legacy 15, Yên Bái, went into 2025's 15, Lào Cai).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import NamedTuple, TypeVar

from streams import reference
from streams.reference import LegacyDistrict, LegacyProvince, LegacyWard, Province, Ward
from streams.rules.names import folded_key, name_key

__all__ = ["ProvinceMatch", "UnitName", "legacy_districts_named", "legacy_wards_named", "resolve_province",
           "resolve_province_code", "unit_name", "wards_named"]

_KINDS = {
    "thanh pho": "thanhpho", "tp": "thanhpho", "thi xa": "thixa", "tx": "thixa", "thi tran": "thitran",
    "tt": "thitran", "dac khu": "dackhu", "phuong": "phuong", "p": "phuong", "xa": "xa", "quan": "quan",
    "q": "quan", "huyen": "huyen", "h": "huyen", "tinh": "tinh",
}
_PROVINCE_KINDS = frozenset({"", "tinh", "thanhpho"})
_ALIASES = {"hn": "01", "hcm": "79", "tphcm": "79", "saigon": "79"}
_LEGACY_ALIASES = {"thuathienhue": "046", "bariavungtau": "077", "baria": "077", "vungtau": "077"}
_GLUED = re.compile(r"(tp|p|q|tx|tt|h)([0-9]+)")
_PUNCTUATION = re.compile(r"[.\-–—_/()']")


class UnitName(NamedTuple):
    kind: str  # "phuong", "xa", "quan", "tinh", ...; "" when the text names no type
    exact: str  # the name with its diacritics, tone marks placed by one convention: "phúcxá"
    folded: str  # without diacritics: "phucxa"


def _key(words: list[str]) -> str:
    return "".join((w.lstrip("0") or "0") if w.isdigit() else w for w in words)


@lru_cache(maxsize=1 << 16)
def unit_name(text: str) -> UnitName:
    """Type and keys of a unit's name: "P. Phúc Xá" -> ("phuong", "phúcxá", "phucxa"), "Quận 01" -> ("quan", "1", "1")."""
    exact = _PUNCTUATION.sub(" ", name_key(text)).split()
    folded = [folded_key(w) for w in exact]
    if folded and (glued := _GLUED.fullmatch(folded[0])):
        exact, folded = [glued[1], glued[2], *exact[1:]], [glued[1], glued[2], *folded[1:]]
    kind = ""
    for n in (2, 1):
        head = " ".join(folded[:n])
        if len(folded) > n and head in _KINDS:
            kind, exact, folded = _KINDS[head], exact[n:], folded[n:]
            break
    return UnitName(kind, _key(exact), _key(folded))


@dataclass(frozen=True, slots=True)
class ProvinceMatch:
    province: Province  # the 2025 province
    current: bool  # the text named it as it is since 2025 (False: a pre-2025 name or code)
    legacy: tuple[LegacyProvince, ...]  # every pre-2025 province it was formed from: where old names live


@cache
def _match(code: str, *, current: bool) -> ProvinceMatch | None:
    province = reference.province_2025(code)
    return None if province is None else ProvinceMatch(province, current, reference.predecessors(code))


@cache
def _province_keys() -> dict[str, tuple[str, bool]]:
    keys: dict[str, tuple[str, bool]] = {}
    for old in reference.legacy_provinces():
        for name in (old.name, old.official_name):
            keys[unit_name(name).folded] = (old.successor, False)
    for alias, prefix in _LEGACY_ALIASES.items():
        old_province = reference.legacy_province(prefix)
        if old_province is not None:
            keys[alias] = (old_province.successor, False)
    for new in reference.provinces_2025():
        for name in (new.name, new.official_name):
            keys[unit_name(name).folded] = (new.code, True)
    keys.update({alias: (code, True) for alias, code in _ALIASES.items()})
    return keys


def resolve_province(text: str) -> ProvinceMatch | None:
    """The 2025 province a province name (2025 or older, with or without its type) designates."""
    kind, _, key = unit_name(text)
    hit = _province_keys().get(key) if kind in _PROVINCE_KINDS else None
    return None if hit is None else _match(hit[0], current=hit[1])


def resolve_province_code(code: str) -> ProvinceMatch | None:
    """The 2025 province of a 2025 code ("15"), or of a legacy two-digit code ("13" -> "15")."""
    if not isinstance(code, str):
        return None
    if reference.province_2025(code) is not None:
        return _match(code, current=True)
    old = reference.legacy_province("0" + code) if len(code) == 2 else None
    return None if old is None else _match(old.successor, current=False)


_Unit = TypeVar("_Unit", Ward, LegacyDistrict, LegacyWard)
_Keyed = dict[tuple[str, str], tuple[_Unit, ...]]  # (type or "", key) -> units
_Index = tuple[_Keyed[_Unit], _Keyed[_Unit]]  # by exact name, by folded name


def _keyed(pairs: Iterable[tuple[tuple[str, str], _Unit]]) -> _Keyed[_Unit]:
    grouped: dict[tuple[str, str], list[_Unit]] = {}
    for key, unit in pairs:
        grouped.setdefault(key, []).append(unit)
    return {k: tuple(v) for k, v in grouped.items()}


def _index(units: Iterable[_Unit]) -> _Index[_Unit]:
    named = [(unit_name(u.name), u) for u in units]
    return (_keyed(((k, n.exact), u) for n, u in named for k in (n.kind, "")),
            _keyed(((k, n.folded), u) for n, u in named for k in (n.kind, "")))


def _named(index: _Index[_Unit], text: str) -> tuple[_Unit, ...]:
    """Units named `text`: by the exact name first, by the folded one when the exact finds none."""
    kind, exact, folded = unit_name(text)
    by_exact, by_folded = index
    return by_exact.get((kind, exact)) or by_folded.get((kind, folded), ())


@cache
def _wards(province_code: str) -> _Index[Ward]:
    return _index(reference.wards_2025(province_code))


@cache
def _districts(id_prefix: str) -> _Index[LegacyDistrict]:
    return _index(reference.legacy_districts(id_prefix))


@cache
def _legacy_wards(district_code: str) -> _Index[LegacyWard]:
    return _index(reference.legacy_wards(district_code))


@cache
def _legacy_wards_of(id_prefix: str) -> _Index[LegacyWard]:
    return _index(w for d in reference.legacy_districts(id_prefix) for w in reference.legacy_wards(d.code))


def wards_named(province_code: str, text: str) -> tuple[Ward, ...]:
    """The 2025 wards of a province whose name matches `text` (several: ambiguous)."""
    return _named(_wards(province_code), text)


def legacy_districts_named(provinces: Iterable[LegacyProvince], text: str) -> tuple[LegacyDistrict, ...]:
    """Pre-2025 districts of these provinces whose name matches `text`."""
    return tuple(d for p in provinces for d in _named(_districts(p.id_prefix), text))


def legacy_wards_named(text: str, *, district: LegacyDistrict | None = None,
                       provinces: Iterable[LegacyProvince] = ()) -> tuple[LegacyWard, ...]:
    """Pre-2025 wards named `text`, in one district, or anywhere in the given provinces."""
    if district is not None:
        return _named(_legacy_wards(district.code), text)
    return tuple(w for p in provinces for w in _named(_legacy_wards_of(p.id_prefix), text))
