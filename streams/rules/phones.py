"""Vietnamese mobile numbers and the phone rules.

Numbers arrive as 0xxxxxxxxx, +84xxxxxxxxx or 84xxxxxxxxx, with spaces, dots, dashes or brackets,
and sometimes still in the 11-digit form retired in 2018 (Decision 798/QĐ-BTTTT: the 4-digit prefix
became a 3-digit one, the last seven digits stayed). The national 10-digit form is what cleaning
writes. A prefix only hints at the carrier: numbers have been portable since 16 November 2018.
"""

from __future__ import annotations

import re

from streams import reference
from streams.rules.base import Check, Context, FieldType, Rule

__all__ = ["PHONE", "normalize_phone", "phone_problem"]

_SEPARATORS = re.compile(r"[\s.\-()]")


def _national(raw: object) -> tuple[str | None, str, bool]:
    """(national digits with a 2018 prefix replaced, or None; why not; whether it was renumbered)."""
    if not isinstance(raw, str) or not raw.strip():
        return None, "is missing", False
    digits = _SEPARATORS.sub("", raw)
    international = digits.startswith("+")
    digits = digits.removeprefix("+")
    if not (digits.isascii() and digits.isdigit()):
        return None, "has characters other than digits and separators", False
    if international or (digits.startswith("84") and len(digits) in (11, 12)):
        if not digits.startswith("84"):
            return None, "has a country code other than +84", False
        subscriber = digits[2:]
        subscriber = subscriber[1:] if subscriber.startswith("0") else subscriber  # "+84 (0) 9…"
        if len(subscriber) not in (9, 10):
            return None, f"has {len(subscriber)} digits after +84, expected 9", False
        digits = "0" + subscriber
    if len(digits) == 11 and (new := reference.new_mobile_prefix(digits[:4])) is not None:
        return new + digits[4:], "", True
    return digits, "", False


def normalize_phone(raw: str) -> str | None:
    """The 10-digit national form "0xxxxxxxxx" of a Vietnamese mobile number, or None.

    Accepts separators, +84/84 country codes and the 11-digit numbers retired in 2018 (old
    4-digit prefix replaced by its 3-digit successor, last seven digits unchanged).
    """
    digits, _, _ = _national(raw)
    if digits is not None and len(digits) == 10 and reference.mobile_prefix(digits[:3]) is not None:
        return digits
    return None


def phone_problem(raw: object) -> str:
    """Why `raw` is not a mobile number ("" when it is one); names the prefix, never the number."""
    digits, problem, _ = _national(raw)
    if digits is None:
        return problem
    if len(digits) == 11 and digits.startswith("02"):
        return f"is a fixed-line number (area code {digits[:3]}), not a mobile"
    if len(digits) != 10:
        return f"has {len(digits)} digits, expected 10 (or 11 before the 2018 switch)"
    if reference.mobile_prefix(digits[:3]) is None:
        return f"prefix {digits[:3]} is not a mobile prefix"
    return ""


def _check_phone(check: Check, ctx: Context) -> None:
    value = check.value
    if value is None and not check.required:
        return  # an absent optional number is no finding; completeness is measured elsewhere
    normal = normalize_phone(value) if isinstance(value, str) else None
    if normal is None:
        check.flag("phone.invalid", f"{check.field} {phone_problem(value)}")
    elif normal != value:
        renumbered = _national(value)[2]
        how = "old 11-digit number renumbered (2018 switch)" if renumbered else "rewritten in 10-digit national form"
        check.fix("phone.normalize", f"{check.field} {how}", normal)


_SWITCH = "Decision 798/QĐ-BTTTT (25 May 2018), 11 to 10 digits from 15 Sep 2018"
_PLAN = "national numbering plan (Circular 22/2014/TT-BTTTT) as allocated to carriers; " + _SWITCH

PHONE = FieldType("phone", _check_phone, (
    Rule("phone.invalid", "not a mobile number: wrong length, unknown prefix, fixed line, foreign", _PLAN),
    Rule("phone.normalize", "+84/84 forms, separators and 11-digit numbers rewritten as 0xxxxxxxxx", _SWITCH,
         fixes=True),
))
