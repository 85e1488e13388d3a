"""Personal identification numbers (số định danh cá nhân) and the id rules.

Twelve digits (Decree 137/2015/NĐ-CP Art. 13; codes in Circular 07/2016/TT-BCA, later Circular
59/2021/TT-BCA): digits 1-3 the province where the birth was registered, digit 4 century and sex
(1900s male 0 / female 1, 2000s 2 / 3, ... up to 2300s 8 / 9), digits 5-6 the last two digits of
the birth year, digits 7-12 random. There is no check digit.

The prefix is decoded against the 63 provinces before 2025 only: seven numbers (15, 24, 44, 52,
80, 82, 91) name another province as a 2025 code, and the 2025 merger renumbered no card. The old
identity card (CMND) number has 9 digits and no structure.

Digit 4 against the linked sex: the sex is read through `normalize_sex`, so ``M``, ``Nam``, ``nữ``
and the social-insurance ``1``/``0`` are compared like ``MALE``/``FEMALE``. A missing sex is a
question of presence and is not compared. A sex that is present but unreadable is never passed
over in silence: when the contract runs ``sex.invalid`` on the linked field (a field of type
``sex``), that finding speaks for the record and the comparison is skipped; otherwise (a sex field
with no type, or one without ``sex.invalid``) ``id.century`` itself is flagged, its reason saying
the sex could not be read, since digit 4 cannot then be checked. Reusing ``id.century`` rather than
a rule of its own means a contract that checks digit 4 never needs a second rule to be told.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams import reference
from streams.reference import LegacyProvince, Province
from streams.rules.base import Check, Context, FieldType, Rule
from streams.rules.sexes import FEMALE, MALE, normalize_sex

__all__ = ["ID_PREFIX", "PERSONAL_ID", "PersonalId", "birth_province", "decode_personal_id"]


@dataclass(frozen=True, slots=True)
class PersonalId:
    """What a well-formed personal id says about its holder."""

    number: str  # "015090123456"
    birth_province: LegacyProvince  # where the birth was registered: 015 -> Yên Bái
    birth_province_2025: Province | None  # the province it is part of since 1 July 2025: Lào Cai
    century: int  # 1900
    sex: str  # "MALE" | "FEMALE"
    year_digits: str  # "90"

    def born_in(self, year: int) -> bool:
        """True when digits 4-6 agree with a birth in `year`."""
        return year // 100 * 100 == self.century and f"{year % 100:02d}" == self.year_digits


def _compact(value: str) -> str:
    return "".join(value.split())  # spaces inside an id are typing, not data


def decode_personal_id(number: str) -> PersonalId | None:
    """The structure of a 12-digit personal id, or None when its shape or prefix is invalid."""
    if not isinstance(number, str):
        return None
    number = _compact(number)
    if not (len(number) == 12 and number.isascii() and number.isdigit()):
        return None
    province = reference.legacy_province(number[:3])
    if province is None:
        return None
    digit = int(number[3])
    return PersonalId(number, province, reference.province_2025(province.successor), 1900 + digit // 2 * 100,
                      FEMALE if digit % 2 else MALE, number[4:6])


def birth_province(number: str) -> tuple[LegacyProvince, Province | None] | None:
    """(province of birth registration, its 2025 province) for a personal id, or None."""
    decoded = decode_personal_id(number)
    return None if decoded is None else (decoded.birth_province, decoded.birth_province_2025)


def _check_personal_id(check: Check, ctx: Context) -> None:
    value = check.value
    if not isinstance(value, str):
        what = "is missing" if value is None else "is not text (a number drops leading zeros)"
        check.flag("id.shape", f"{check.field} {what}")
        return
    number = check.value = _compact(value)  # no finding: the digits are unchanged
    is_digits = number.isascii() and number.isdigit()
    if check.wants("id.legacy_cmnd") and is_digits and len(number) == 9:
        check.flag("id.legacy_cmnd", f"{check.field} is a 9-digit CMND, not a personal id")
        return
    if not (is_digits and len(number) == 12):
        expected = "12 or 9 digits" if check.wants("id.legacy_cmnd") else "12 digits"
        got = "non-digits" if not is_digits else f"{len(number)} digits"
        hint = " (a lost leading zero?)" if is_digits and len(number) == 11 else ""
        check.flag("id.shape", f"{check.field} has {got}, expected {expected}{hint}")
        return
    decoded = decode_personal_id(number)
    if decoded is None:
        check.flag("id.prefix", f"prefix {number[:3]} is not a pre-2025 province code")
    elif check.wants_enrichment("id.birth_province"):
        after = decoded.birth_province_2025
        check.enrich("id.birth_province", {
            "id_prefix": decoded.birth_province.id_prefix, "name": decoded.birth_province.name,
            "province_2025": after.code if after else None, "province_2025_name": after.name if after else None,
        })
    year = ctx.birth_year()
    if year is None:
        return  # birthdate.invalid speaks for the record
    digit = int(number[3])
    century, born = 1900 + digit // 2 * 100, year // 100 * 100
    if century != born:
        check.flag("id.century", f"digit 4 encodes births in the {century}s, birth date is in the {born}s")
        return
    _compare_sex(check, ctx, FEMALE if digit % 2 else MALE)
    if number[4:6] != f"{year % 100:02d}":
        check.flag("id.birthyear", f"digits 5-6 encode a birth in ..{number[4:6]}, birth date disagrees")


def _compare_sex(check: Check, ctx: Context, encoded: str) -> None:
    given = ctx.linked("sex")
    if given is None or (isinstance(given, str) and not given.strip()):
        return  # absence is the sex field's presence, not this id's problem
    sex = normalize_sex(given)
    if sex is None:
        if not ctx.reports("sex", "sex.invalid"):  # no other rule will say it: this one must
            check.flag("id.century", f"digit 4 encodes {encoded}, the linked sex could not be read to compare")
    elif sex != encoded:
        check.flag("id.century", f"digit 4 encodes {encoded}, sex disagrees")


def _check_birth_province(check: Check, ctx: Context) -> None:
    number = ctx.linked("personal_id")
    if not isinstance(number, str):
        return
    number = _compact(number)
    if not (len(number) == 12 and number.isascii() and number.isdigit()):
        return  # id.shape speaks for the record
    if check.value != number[:3]:
        check.flag("birthprovince.mismatch", f"{check.field} differs from id prefix {number[:3]}")


_DECREE = "Decree 137/2015/NĐ-CP Art. 13"
_CODES = "Circular 07/2016/TT-BCA, Circular 59/2021/TT-BCA (province codes before Resolution 202/2025/QH15)"

PERSONAL_ID = FieldType("personal_id", _check_personal_id, (
    Rule("id.shape", "not 12 digits (nor 9 where a CMND is accepted)", _DECREE),
    Rule("id.legacy_cmnd", "a 9-digit identity card (CMND) number, which has no structure to check",
         "Decree 05/1999/NĐ-CP (CMND), replaced by the personal id of " + _DECREE),
    Rule("id.prefix", "digits 1-3 are not one of the 63 pre-2025 province codes (never a 2025 code)",
         _DECREE + "; " + _CODES),
    Rule("id.century", "digit 4 disagrees with the century of birth or with the sex", _DECREE + "; " + _CODES),
    Rule("id.birthyear", "digits 5-6 disagree with the last two digits of the birth year", _DECREE),
), links=("birth_date", "sex"), enrichments=("id.birth_province",))

ID_PREFIX = FieldType("id_prefix", _check_birth_province, (
    Rule("birthprovince.mismatch", "the province of birth registration is not the personal id's prefix",
         _DECREE + " (digits 1-3: where the birth was registered)"),
), links=("personal_id",))
