"""Versioned Vietnamese reference tables: provinces, districts and wards before and after 2025,
mobile prefixes, common name syllables.

The tables are CSV package data (sources and versions in SOURCES.md and in each file's first
line). Loading is lazy and cached; every lookup is a dictionary access afterwards.

Two numbering systems share the same digits and must never be mixed: an id prefix ("015")
is decoded against the 63 pre-2025 provinces only, and a 2025 province code ("15") names one
of the 34 provinces formed on 1 July 2025. Seven codes name a different province in each
system (15, 24, 44, 52, 80, 82, 91); `legacy_province("015")` is Yên Bái, whose successor is
`province_2025("15")`, Lào Cai.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

__all__ = [
    "LegacyDistrict",
    "LegacyProvince",
    "LegacyWard",
    "MobilePrefix",
    "Province",
    "Ward",
    "legacy_district",
    "legacy_districts",
    "legacy_province",
    "legacy_provinces",
    "legacy_ward",
    "legacy_wards",
    "mobile_prefix",
    "mobile_prefixes",
    "name_syllables",
    "new_mobile_prefix",
    "predecessors",
    "province_2025",
    "provinces_2025",
    "ward_2025",
    "wards_2025",
]


@dataclass(frozen=True, slots=True)
class LegacyProvince:
    """One of the 63 provinces before 1 July 2025, as coded in personal id prefixes."""

    id_prefix: str  # "015": the first three digits of a personal id
    name: str  # "Yên Bái"
    official_name: str  # "Tỉnh Yên Bái"
    successor: str  # 2025 province code it merged into, "15"


@dataclass(frozen=True, slots=True)
class Province:
    """One of the 34 provinces from 1 July 2025."""

    code: str  # "15"
    name: str  # "Lào Cai"
    official_name: str  # "Tỉnh Lào Cai"


@dataclass(frozen=True, slots=True)
class Ward:
    """A 2025 commune-level unit (phường, xã or đặc khu)."""

    code: str  # five digits, "00004"
    name: str  # "Phường Ba Đình"
    province_code: str  # 2025 province code, "01"


@dataclass(frozen=True, slots=True)
class LegacyDistrict:
    """A district before 1 July 2025, when the district level ended."""

    code: str  # "001"
    name: str  # "Quận Ba Đình"
    id_prefix: str  # its legacy province, as an id prefix: "001"
    ward_2025: str | None  # for the five island districts that had no wards: the 2025 unit they became


@dataclass(frozen=True, slots=True)
class LegacyWard:
    """A commune-level unit before 1 July 2025 and the 2025 wards it went into."""

    code: str  # "00007": legacy and 2025 codes share digits, so never look one up as the other
    name: str  # "Phường Cống Vị"
    district_code: str  # "001"
    wards_2025: tuple[str, ...]  # one code, or several when the ward was split between new wards

    @property
    def split(self) -> bool:
        """True when the ward went into several 2025 wards: only the street can tell which."""
        return len(self.wards_2025) > 1


@dataclass(frozen=True, slots=True)
class MobilePrefix:
    """A current 3-digit mobile prefix and the 4-digit prefix it replaced in 2018, if any."""

    prefix: str  # "032"
    carrier: str  # carrier the range was allocated to; since 2018 numbers can be ported
    legacy_prefix: str | None  # "0162", or None for a prefix that never changed


def _rows(name: str) -> Iterator[dict[str, str]]:
    text = files(__name__).joinpath(name).read_text(encoding="utf-8")
    lines = (line for line in text.splitlines() if line and not line.startswith("#"))
    yield from csv.DictReader(lines)


@cache
def _legacy() -> dict[str, LegacyProvince]:
    return {
        r["id_prefix"]: LegacyProvince(r["id_prefix"], r["name"], r["official_name"], r["province_2025"])
        for r in _rows("legacy_provinces.csv")
    }


@cache
def _provinces() -> dict[str, Province]:
    return {r["code"]: Province(r["code"], r["name"], r["official_name"]) for r in _rows("provinces_2025.csv")}


@cache
def _wards() -> dict[str, Ward]:
    return {r["code"]: Ward(r["code"], r["name"], r["province_code"]) for r in _rows("wards_2025.csv")}


@cache
def _wards_by_province() -> dict[str, tuple[Ward, ...]]:
    grouped: dict[str, list[Ward]] = {}
    for ward in _wards().values():
        grouped.setdefault(ward.province_code, []).append(ward)
    return {code: tuple(wards) for code, wards in grouped.items()}


@cache
def _legacy_districts() -> dict[str, LegacyDistrict]:
    return {r["code"]: LegacyDistrict(r["code"], r["name"], r["id_prefix"], r["ward_2025"] or None)
            for r in _rows("legacy_districts.csv")}


@cache
def _legacy_wards() -> dict[str, LegacyWard]:
    return {r["code"]: LegacyWard(r["code"], r["name"], r["district_code"], tuple(r["wards_2025"].split()))
            for r in _rows("legacy_wards.csv")}


@cache
def _legacy_wards_by_district() -> dict[str, tuple[LegacyWard, ...]]:
    grouped: dict[str, list[LegacyWard]] = {}
    for ward in _legacy_wards().values():
        grouped.setdefault(ward.district_code, []).append(ward)
    return {code: tuple(wards) for code, wards in grouped.items()}


@cache
def _mobile() -> dict[str, MobilePrefix]:
    return {
        r["prefix"]: MobilePrefix(r["prefix"], r["carrier"], r["legacy_prefix"] or None)
        for r in _rows("mobile_prefixes.csv")
    }


@cache
def _legacy_mobile() -> dict[str, str]:
    return {m.legacy_prefix: m.prefix for m in _mobile().values() if m.legacy_prefix}


def legacy_province(id_prefix: str) -> LegacyProvince | None:
    """The pre-2025 province of a 3-digit id prefix ("001".."096"), or None for a gap such as "003"."""
    return _legacy().get(id_prefix)


def legacy_provinces() -> tuple[LegacyProvince, ...]:
    """All 63 pre-2025 provinces, in code order."""
    return tuple(_legacy().values())


def province_2025(code: str) -> Province | None:
    """The 2025 province with this 2-digit code, or None."""
    return _provinces().get(code)


def provinces_2025() -> tuple[Province, ...]:
    """All 34 provinces of 2025, in code order."""
    return tuple(_provinces().values())


def predecessors(code: str) -> tuple[LegacyProvince, ...]:
    """The pre-2025 provinces that merged into the 2025 province `code`."""
    return tuple(p for p in _legacy().values() if p.successor == code)


def ward_2025(code: str) -> Ward | None:
    """The 2025 ward with this 5-digit code, or None."""
    return _wards().get(code)


def wards_2025(province_code: str | None = None) -> tuple[Ward, ...]:
    """The 2025 wards of one province (in code order), or all 3,321 when no code is given."""
    if province_code is None:
        return tuple(_wards().values())
    return _wards_by_province().get(province_code, ())


def legacy_district(code: str) -> LegacyDistrict | None:
    """The pre-2025 district with this 3-digit code, or None."""
    return _legacy_districts().get(code)


def legacy_districts(id_prefix: str | None = None) -> tuple[LegacyDistrict, ...]:
    """The pre-2025 districts of one legacy province (by id prefix), or all 696."""
    every = tuple(_legacy_districts().values())
    return every if id_prefix is None else tuple(d for d in every if d.id_prefix == id_prefix)


def legacy_ward(code: str) -> LegacyWard | None:
    """The pre-2025 ward with this 5-digit code, or None."""
    return _legacy_wards().get(code)


def legacy_wards(district_code: str | None = None) -> tuple[LegacyWard, ...]:
    """The pre-2025 wards of one legacy district, or all 10,035 when no code is given."""
    if district_code is None:
        return tuple(_legacy_wards().values())
    return _legacy_wards_by_district().get(district_code, ())


@cache
def name_syllables() -> frozenset[str]:
    """Common syllables of Vietnamese personal names, with their diacritics ("Nguyễn", "Lan")."""
    return frozenset(r["syllable"] for r in _rows("name_syllables.csv"))


def mobile_prefix(prefix: str) -> MobilePrefix | None:
    """The current mobile prefix entry for a 3-digit prefix such as "032", or None."""
    return _mobile().get(prefix)


def mobile_prefixes() -> tuple[MobilePrefix, ...]:
    """Every current 3-digit mobile prefix."""
    return tuple(_mobile().values())


def new_mobile_prefix(old4: str) -> str | None:
    """The 3-digit prefix that replaced a 4-digit 2018 prefix ("0162" -> "032"), or None."""
    return _legacy_mobile().get(old4)
