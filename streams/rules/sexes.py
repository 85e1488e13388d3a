"""Sex as sources write it, and the sex rules.

Cleaning writes ``MALE`` or ``FEMALE``, the values of the Avro enum. Sources write:

- ``M`` / ``F``, ``male`` / ``female`` (forms in English, the canonical values themselves);
- ``Nam`` / ``Nữ``, also ``nam giới`` / ``nữ giới``, and ``trai`` / ``gái`` spelled out; in any case,
  NFC or NFD, with or without diacritics (``nu``, ``NỮ``, ``gai``);
- ``1`` / ``0`` (text or a JSON integer): 1 is male, 0 is female. This is the convention of the
  social-insurance extracts, not a national code list, and only that pair is read: ``2``, which
  other systems use for female, is never guessed and is ``sex.invalid``.

Anything else, and a missing sex where the contract requires one, is ``sex.invalid``: an
unreadable sex is never skipped, because the personal id rules compare it with digit 4.
"""

from __future__ import annotations

import unicodedata

from streams.rules.base import Check, Context, FieldType, Rule

__all__ = ["FEMALE", "MALE", "SEX", "normalize_sex"]

MALE, FEMALE = "MALE", "FEMALE"

_SPELLINGS = {
    "m": MALE, "male": MALE, "nam": MALE, "nam gioi": MALE, "trai": MALE, "1": MALE,
    "f": FEMALE, "female": FEMALE, "nu": FEMALE, "nu gioi": FEMALE, "gai": FEMALE, "0": FEMALE,
}


def _folded(text: str) -> str:
    """Lower case, no diacritics, single spaces: "  NỮ  Giới" -> "nu gioi"."""
    bare = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return " ".join(bare.replace("đ", "d").replace("Đ", "D").casefold().split())


def normalize_sex(value: object) -> str | None:
    """``MALE`` or ``FEMALE`` for any spelling a source uses, None when it is not one."""
    if isinstance(value, str):
        if value in (MALE, FEMALE):  # the common case, before any Unicode work
            return value
        return _SPELLINGS.get(_folded(value))
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return MALE if value else FEMALE
    return None


def _check_sex(check: Check, ctx: Context) -> None:
    value = check.value
    if value is None or (isinstance(value, str) and not value.strip()):
        if check.required:
            check.flag("sex.invalid", f"{check.field} is missing")
        return
    sex = normalize_sex(value)
    if sex is None:
        what = "is not text" if not isinstance(value, str) else "is not a recognised sex"
        check.flag("sex.invalid", f"{check.field} {what} (expected MALE/FEMALE, M/F, Nam/Nữ or 1/0)")
    elif value != sex:
        check.fix("sex.normalize", f"{check.field} rewritten as {sex}", sex)


_LAW = "Law on Identification 26/2023/QH15 Art. 9 (sex is part of the identity record); Avro enum MALE/FEMALE"
_SOCIAL_INSURANCE = "social-insurance extracts write 1 = male, 0 = female (their convention, no national code list)"

SEX = FieldType("sex", _check_sex, (
    Rule("sex.invalid", "not a recognised sex, or missing where required", _LAW),
    Rule("sex.normalize", "M/F, male/female, Nam/Nữ (any case or accents), trai/gái and 1/0 rewritten as MALE/FEMALE",
         _LAW + "; " + _SOCIAL_INSURANCE, fixes=True),
))
