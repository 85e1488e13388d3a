"""Addresses in the 2025 units (34 provinces, 3,321 wards, no districts) and the address rules.

Three kinds of field: a 2025 province code, a 2025 ward code, and a free-text address written
"street, ward, province" (since 2025) or "street, ward, district, province" (before). Pre-2025
provinces, districts and wards are mapped to their 2025 successors from the tables in
`streams.reference`, never over the network. A pre-2025 ward that was split between several
2025 wards cannot be converted without the street or coordinates: it is flagged `ward.ambiguous`
with its candidates, and never guessed.

Ward codes share digits across the reform (2025's 00004 Ba Đình kept the code of the old Trúc
Bạch): a code that is a 2025 code is read as one; only other codes are looked up as pre-2025.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams import reference
from streams.reference import LegacyWard, Ward
from streams.rules.base import Check, Context, FieldType, Rule
from streams.rules.units import (
    ProvinceMatch,
    legacy_districts_named,
    legacy_wards_named,
    resolve_province,
    resolve_province_code,
    unit_name,
    wards_named,
)

__all__ = ["ADDRESS", "PROVINCE_CODE", "WARD_CODE", "AddressMatch", "parse_address"]

_COUNTRY = frozenset({"vietnam", "vn"})


@dataclass(frozen=True, slots=True)
class AddressMatch:
    """What a free-text address resolves to in the 2025 units."""

    street: tuple[str, ...]  # the segments before the ward, as written
    province: ProvinceMatch | None
    ward: Ward | None  # the 2025 ward, when it is certain
    legacy_ward: LegacyWard | None  # the pre-2025 ward the text named, if it named one
    candidates: tuple[Ward, ...]  # the 2025 wards it may be, when several
    problem: str  # why no single 2025 ward was found; "" when `ward` is set

    def standard(self) -> str | None:
        """"street, ward, province" in 2025 names, when the ward is certain."""
        if self.ward is None or self.province is None:
            return None
        return ", ".join((*self.street, self.ward.name, self.province.province.name))


def _successor(old: LegacyWard) -> tuple[Ward | None, tuple[Ward, ...], str]:
    """(the 2025 ward a pre-2025 ward became, or None; the candidates when it was split; why not)."""
    news = tuple(w for c in old.wards_2025 if (w := reference.ward_2025(c)) is not None)
    if len(news) == 1:
        return news[0], (), ""
    names = ", ".join(f"{w.code} {w.name}" for w in news)
    return None, news, f"pre-2025 {old.name} was split between {names}: the street decides"


def _from_legacy(street: tuple[str, ...], province: ProvinceMatch, old: LegacyWard) -> AddressMatch:
    ward, candidates, problem = _successor(old)
    return AddressMatch(street, province, ward, old, candidates, problem)


def _ward_problem(street: tuple[str, ...], province: ProvinceMatch, problem: str) -> AddressMatch:
    return AddressMatch(street, province, None, None, (), problem)


def parse_address(text: str) -> AddressMatch:
    """Resolve the ward and province of "street, ward[, district], province" offline."""
    segments = [s.strip() for s in text.split(",") if s.strip()]
    if segments and unit_name(segments[-1]).folded in _COUNTRY:
        segments.pop()
    province = resolve_province(segments[-1]) if segments else None
    if province is None:
        return AddressMatch(tuple(segments), None, None, None, (), "no province recognised in the last part")
    rest = tuple(segments[:-1])
    if not rest:
        return _ward_problem(rest, province, "names no ward")
    found = wards_named(province.province.code, rest[-1])
    if len(found) == 1:
        return AddressMatch(rest[:-1], province, found[0], None, (), "")
    if found:
        return AddressMatch(rest[:-1], province, None, None, found, f"{rest[-1]!s} names several 2025 wards")
    districts = legacy_districts_named(province.legacy, rest[-1])
    if len(districts) == 1:
        district = districts[0]
        if district.ward_2025 is not None:  # an island district without wards became one unit
            return AddressMatch(rest[:-1], province, reference.ward_2025(district.ward_2025), None, (), "")
        olds = legacy_wards_named(rest[-2], district=district) if len(rest) > 1 else ()
        street = rest[:-2]
    else:
        olds = legacy_wards_named(rest[-1], provinces=province.legacy)
        street = rest[:-1]
    if len(olds) == 1:
        return _from_legacy(street, province, olds[0])
    if olds:
        return _ward_problem(rest, province, "the ward name fits several pre-2025 wards: the district decides")
    return _ward_problem(rest, province, "no 2025 or pre-2025 ward of the province has this name")


def _check_address(check: Check, ctx: Context) -> None:
    value = check.value
    if not isinstance(value, str) or not value.strip():
        if check.required:
            check.flag("province.unknown", f"{check.field} is missing")
        return
    match = parse_address(value)
    if match.province is None:
        check.flag("province.unknown", f"{check.field}: {match.problem}")
        return
    if check.wants_enrichment("address.units"):
        check.enrich("address.units", {"province_2025": match.province.province.code,
                                       "ward_2025": match.ward.code if match.ward else None})
    standard = match.standard()
    if match.ward is not None and standard is not None:
        if standard != value and match.legacy_ward is not None:
            check.fix("ward.legacy", f"{check.field}: pre-2025 {match.legacy_ward.name} is {match.ward.name} "
                                     "since 2025 (district dropped)", standard)
        elif standard != value and not match.province.current:
            check.fix("province.legacy", f"{check.field}: rewritten with the 2025 province", standard)
    elif not match.province.current:
        segments = [s.strip() for s in value.split(",") if s.strip()]
        last = next(i for i in range(len(segments) - 1, -1, -1) if resolve_province(segments[i]) is not None)
        renamed = ", ".join((*segments[:last], match.province.province.name))
        check.fix("province.legacy", f"{check.field}: pre-2025 province renamed to its 2025 successor", renamed)
    if match.candidates:
        check.flag("ward.ambiguous", f"{check.field}: {match.problem}")
    elif match.ward is None:
        check.flag("ward.unknown", f"{check.field}: {match.problem}")


def _check_province_code(check: Check, ctx: Context) -> None:
    match = resolve_province_code(check.value) if isinstance(check.value, str) else None
    if match is None:
        check.flag("province.unknown", f"{check.field} is not one of the 34 province codes of 2025")
    elif not match.current:
        check.fix("province.legacy", f"{check.field}: pre-2025 code {check.value} is {match.province.code} "
                                     f"({match.province.name}) since 2025", match.province.code)


def _check_ward_code(check: Check, ctx: Context) -> None:
    code = check.value
    if not isinstance(code, str) or not code.strip():
        if check.required:
            check.flag("ward.unknown", f"{check.field} is missing")
        return
    linked = ctx.linked("province")
    province = resolve_province_code(linked) if isinstance(linked, str) else None
    ward = reference.ward_2025(code)
    if ward is None:
        old = reference.legacy_ward(code)
        if old is None:
            check.flag("ward.unknown", f"{check.field} is neither a 2025 nor a pre-2025 ward code")
            return
        ward, _, problem = _successor(old)
        if ward is None:
            check.flag("ward.ambiguous", f"{check.field}: {problem}")
            return
        if not check.fix("ward.legacy", f"{check.field}: pre-2025 ward {code} ({old.name}) is {ward.code} "
                                        f"({ward.name}) since 2025", ward.code):
            return
    if province is not None and ward.province_code != province.province.code:
        check.flag("ward.mismatch", f"{check.field} {ward.code} lies in province {ward.province_code}, "
                                    f"not {province.province.code}")


_RESOLUTION = "Resolution 202/2025/QH15 (34 provinces from 1 July 2025)"
_WARDS = "Government Resolutions 125 and 126/NQ-CP (3,321 communes); tables from vietnamadminunits 1.0.4 (MIT)"

PROVINCE_CODE = FieldType("province_code", _check_province_code, (
    Rule("province.unknown", "not one of the 34 province codes of 2025 (nor a pre-2025 code)", _RESOLUTION),
    Rule("province.legacy", "a pre-2025 province code, rewritten as its 2025 successor", _RESOLUTION, fixes=True),
))

WARD_CODE = FieldType("ward_code", _check_ward_code, (
    Rule("ward.unknown", "neither a 2025 nor a pre-2025 ward code", _WARDS),
    Rule("ward.legacy", "a pre-2025 ward code that went into exactly one 2025 ward, rewritten", _WARDS, fixes=True),
    Rule("ward.ambiguous", "a pre-2025 ward split between several 2025 wards: kept, never guessed", _WARDS),
    Rule("ward.mismatch", "the ward lies in another province than the record's", _WARDS),
), links=("province",))

ADDRESS = FieldType("address", _check_address, (
    Rule("province.unknown", "no 2025 or pre-2025 province recognised", _RESOLUTION),
    Rule("province.legacy", "a pre-2025 province name, rewritten as its 2025 successor", _RESOLUTION, fixes=True),
    Rule("ward.unknown", "no ward of the province recognised", _WARDS),
    Rule("ward.legacy", "a pre-2025 ward (and district) rewritten as the one 2025 ward it went into", _WARDS,
         fixes=True),
    Rule("ward.ambiguous", "a pre-2025 ward split between several 2025 wards, or a name that fits several: "
         "kept, never guessed", _WARDS),
), enrichments=("address.units",))
