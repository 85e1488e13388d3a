"""The kinds of dirt the generator injects, one function per kind, each value-to-value.

Every function is given the clean value and returns what a careless source system would have
stored instead. The expected outcome of each kind is declared next to it in `generate`; nothing
here runs a cleaning rule.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from random import Random

from streams import reference

__all__ = [
    "BAD_ID_PREFIXES",
    "BAD_MOBILE_PREFIXES",
    "century_digit",
    "day_month_year",
    "impossible_date",
    "malformed_id",
    "malformed_msisdn",
    "messy_name",
    "messy_phone",
    "old_msisdn",
    "shifted_birth_year",
    "spaced_id",
    "wrong_century",
    "wrong_sex_or_century",
]

# Three-digit strings that are not pre-2025 province codes: gaps such as 003, and 097-099.
BAD_ID_PREFIXES: tuple[str, ...] = tuple(
    f"{n:03d}" for n in range(100) if reference.legacy_province(f"{n:03d}") is None
)
BAD_MOBILE_PREFIXES: tuple[str, ...] = tuple(
    f"0{n:02d}" for n in range(100) if reference.mobile_prefix(f"0{n:02d}") is None
)


def century_digit(sex: str, year: int) -> int:
    """Digit 4 of a personal id: 0/1 for the 1900s (male/female), 2/3 for the 2000s, and so on."""
    return (year // 100 - 19) * 2 + (1 if sex == "FEMALE" else 0)


def messy_name(name: str, rng: Random) -> str:
    """The same name in NFD, in capitals, or with doubled and stray spaces."""
    form = rng.choice(("nfd", "upper", "spaces"))
    if form == "nfd":
        return unicodedata.normalize("NFD", name)
    if form == "upper":
        return name.upper()
    return " " + "  ".join(name.split()) + rng.choice(("", " ", "\t"))


def messy_phone(msisdn: str, rng: Random) -> str:
    """A 10-digit number written with a country code or separators."""
    form = rng.choice(("+84", "84", "+84 ", "spaces", "dots", "dashes", "brackets"))
    national = msisdn[1:]
    if form in ("+84", "84"):
        return form + national
    if form == "+84 ":
        return f"+84 {national[:2]} {national[2:5]} {national[5:]}"
    if form == "spaces":
        return f"{msisdn[:4]} {msisdn[4:7]} {msisdn[7:]}"
    if form == "dots":
        return f"{msisdn[:4]}.{msisdn[4:7]}.{msisdn[7:]}"
    if form == "dashes":
        return f"{msisdn[:3]}-{msisdn[3:6]}-{msisdn[6:]}"
    return f"({msisdn[:3]}) {msisdn[3:6]} {msisdn[6:]}"


def old_msisdn(msisdn: str) -> str:
    """The 11-digit number a 10-digit one replaced in 2018 (its prefix must have a legacy form)."""
    prefix = reference.mobile_prefix(msisdn[:3])
    if prefix is None or prefix.legacy_prefix is None:
        raise ValueError("prefix has no 11-digit predecessor")
    return prefix.legacy_prefix + msisdn[3:]


def day_month_year(iso: str, rng: Random) -> str:
    """An ISO date as dd/mm/yyyy or d/m/yyyy."""
    year, month, day = iso.split("-")
    if rng.random() < 0.5:
        return f"{day}/{month}/{year}"
    return f"{int(day)}/{int(month)}/{year}"


def spaced_id(personal_id: str) -> str:
    return f"{personal_id[:3]} {personal_id[3:6]} {personal_id[6:]}"


def shifted_birth_year(birth: str, rng: Random, today: date) -> str | None:
    """The birth date 1 to 3 years off, same century, otherwise unchanged; None if impossible."""
    year = int(birth[:4])
    deltas = [-3, -2, -1, 1, 2, 3]
    rng.shuffle(deltas)
    for delta in deltas:
        other = year + delta
        if other // 100 != year // 100 or other > today.year:
            continue
        if len(birth) == 4:
            return f"{other:04d}"
        try:
            shifted = date(other, int(birth[5:7]), int(birth[8:10]))
        except ValueError:  # 29 February
            continue
        if shifted <= today:
            return shifted.isoformat()
    return None


def impossible_date(birth: str, rng: Random) -> str:
    """A date that does not exist in the birth year, as ISO or dd/mm/yyyy."""
    year = birth[:4]
    return rng.choice((f"{year}-02-30", f"31/04/{year}", f"{year}-13-05", f"31/06/{year}",
                       f"{year}-11-31", f"00/05/{year}", f"30/02/{year}", f"{year}-09-31"))


def wrong_century(personal_id: str) -> str:
    """The id with digit 4 moved one century, keeping the sex it encodes."""
    digit = int(personal_id[3])
    moved = digit + 2 if digit < 2 else digit - 2
    return personal_id[:3] + str(moved) + personal_id[4:]


def wrong_sex_or_century(personal_id: str, rng: Random) -> str:
    """The id with digit 4 encoding the other sex, or another century."""
    if rng.random() < 0.5:
        return wrong_century(personal_id)
    return personal_id[:3] + str(int(personal_id[3]) ^ 1) + personal_id[4:]


def malformed_id(personal_id: str, rng: Random) -> str:
    """An id of 10, 11 or 13 digits, or with a letter typed for a digit (never 9 digits)."""
    form = rng.choice(("short", "shorter", "long", "letter"))
    at = rng.randrange(12)
    if form == "short":
        return personal_id[:at] + personal_id[at + 1:]
    if form == "shorter":
        return personal_id[:at] + personal_id[at + 2:]
    if form == "long":
        return personal_id[:at] + str(rng.randrange(10)) + personal_id[at:]
    return personal_id[:at] + rng.choice("OIlSBZ") + personal_id[at + 1:]


def malformed_msisdn(msisdn: str, rng: Random) -> str:
    """A number too short, or 10 digits with a prefix no mobile carrier holds."""
    if rng.random() < 0.5:
        return msisdn[: -rng.randint(1, 3)]
    return rng.choice(BAD_MOBILE_PREFIXES) + msisdn[3:]
