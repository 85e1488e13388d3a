"""A source's own identifiers (mã số BHXH, EVN customer codes, ...) and the code rules.

A ``code`` field carries its shape in the contract: ``"format"`` is a regular expression, or a
list of them, that the whole value must match (``re.fullmatch``; ``^`` and ``$`` are allowed and
change nothing). Examples: ``^[0-9]{10}$``, the 10-digit social-insurance number of Vietnam Social
Security; ``^P[A-Z][0-9A-Z]{11}$``, a 13-character EVN customer code such as ``PE04000123456``.

A value that matches as given passes. Otherwise spaces, dots and dashes are typing, not data:
they are removed and letters upper-cased (``code.normalize``), and a value that matches only then
is fixed. A value that matches in neither form, or only in the second where the contract
declares no ``code.normalize``, is ``code.invalid``; an invalid code is never rewritten.
"""

from __future__ import annotations

import re
from functools import cache

from streams.rules.base import Check, Context, FieldType, Rule

__all__ = ["CODE", "code_format_problem", "normalize_code"]

_TYPING = re.compile(r"[\s.\-]+")


def normalize_code(value: str) -> str:
    """`value` without spaces, dots and dashes, letters upper-cased: "pe-0400 0123456" -> "PE04000123456"."""
    return _TYPING.sub("", value).upper()


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def code_format_problem(pattern: str) -> str:
    """Why `pattern` cannot be a code's declared format ("" when it can)."""
    if not pattern:
        return "is empty"
    try:
        _compiled(pattern)
    except re.error as exc:
        return f"is not a regular expression ({exc})"
    return ""


def _matches(value: str, patterns: tuple[str, ...]) -> bool:
    return any(_compiled(p).fullmatch(value) for p in patterns)


def _check_code(check: Check, ctx: Context) -> None:
    value = check.value
    if value is None or (isinstance(value, str) and not value.strip()):
        if check.required:
            check.flag("code.invalid", f"{check.field} is missing")
        return
    if not isinstance(value, str):
        check.flag("code.invalid", f"{check.field} is not text (a number drops leading zeros)")
        return
    if _matches(value, check.formats):
        return
    normal = normalize_code(value)
    if check.wants("code.normalize") and _matches(normal, check.formats):
        check.fix("code.normalize", f"{check.field} without spaces, dots or dashes, in upper case", normal)
    else:
        check.flag("code.invalid", f"{check.field} ({len(normal)} characters) does not match its declared format")


_SOURCE = "the format the source system declares for its identifiers (the dataset's contract)"

CODE = FieldType("code", _check_code, (
    Rule("code.invalid", "does not match the declared format, even without spaces, dots and dashes", _SOURCE),
    Rule("code.normalize", "spaces, dots and dashes removed and letters upper-cased to match the declared format",
         _SOURCE, fixes=True),
), format_problem=code_format_problem, needs_format=True)
