"""Birth dates as sources write them, and the date rules.

Accepted: ``yyyy-mm-dd`` (ISO 8601, what cleaning writes), ``dd/mm/yyyy`` and ``d/m/yyyy`` (the
Vietnamese order; also with ``-`` or ``.``), and ``yyyy`` alone (older registrations often hold
the year only). A date before 1900 or after today is not a birth date.

Day and month swapped: a date written day-first whose month is above 12 but which is a real date
with the two exchanged ("12/25/1990", month/day/year from a foreign form) is reported as
``date.swapped`` with the exchanged date as its fix. Only the day-first forms are read that way:
an ISO date with month 13 is corrupt, not swapped, and stays invalid.

A source's own form is declared in its contract: ``"format": "%Y%m%d"`` (a `strptime` format, or a
list of them) for social insurance's ``19900215``. A declared format is tried after the year alone
and before the forms above, so ``"%m/%d/%Y"`` reads ``05/03/1990`` as 3 May; a value read by it is
never ``date.swapped``. Its reading counts only when writing the date back in that format gives the
value again, up to leading zeros and case: ``"%Y%m%d"`` does not guess at ``1990215``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from streams.rules.base import Check, Context, FieldType, Rule

__all__ = ["DATE", "ParsedDate", "date_format_problem", "parse_date"]

_ISO = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DAY_FIRST = re.compile(r"([0-9]{1,2})([/.\-])([0-9]{1,2})\2([0-9]{4})")
_YEAR = re.compile(r"[0-9]{4}")
_FORMS = "yyyy-mm-dd, dd/mm/yyyy or yyyy"
_LEADING_ZEROS = re.compile(r"(?<![0-9])0+(?=[0-9])")
_SAMPLE = date(2001, 2, 3)  # day, month and year all differ, so a format must hold each to give it back


@dataclass(frozen=True, slots=True)
class ParsedDate:
    iso: str | None  # "1990-02-28" or "1955"; None when invalid
    year: int | None
    problem: str  # why it is invalid, "" when valid
    swapped: bool = False  # valid only with day and month exchanged; `iso` is the exchanged date


def _invalid(problem: str) -> ParsedDate:
    return ParsedDate(None, None, problem)


def _checked(day: date | None, year: int, today: date, *, swapped: bool = False) -> ParsedDate:
    if year < 1900:
        return _invalid("is before 1900")
    if year > today.year or (day is not None and day > today):
        return _invalid("is in the future")
    return ParsedDate(day.isoformat() if day else f"{year:04d}", year, "", swapped)


def date_format_problem(fmt: str) -> str:
    """Why `fmt` cannot be a date's declared format ("" when it can): it must read back a full date."""
    try:
        read = datetime.strptime(_SAMPLE.strftime(fmt), fmt).date()
    except ValueError as exc:
        return f"is not a strptime date format ({exc})"
    return "" if read == _SAMPLE else "does not hold a day, a month and a year"


def _unpadded(text: str) -> str:
    return _LEADING_ZEROS.sub("", text).casefold()


def _declared(text: str, formats: tuple[str, ...]) -> date | None:
    for fmt in formats:
        try:
            day = datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        if _unpadded(day.strftime(fmt)) == _unpadded(text):
            return day
    return None


def parse_date(value: object, *, today: date, formats: tuple[str, ...] = ()) -> ParsedDate:
    """The birth date in `value` as ISO text, or why it is not one; `formats` are the contract's own."""
    if not isinstance(value, str):
        return _invalid("is missing")
    return _parse(value, today, formats)


@lru_cache(maxsize=1 << 12)  # each record's date is parsed twice: for the id rules and for its own
def _parse(value: str, today: date, formats: tuple[str, ...]) -> ParsedDate:
    text = value.strip()
    if _YEAR.fullmatch(text):
        return _checked(None, int(text), today)
    if formats and (day := _declared(text, formats)) is not None:
        return _checked(day, day.year, today)
    if m := _ISO.fullmatch(text):
        year, month, dom = (int(p) for p in m.groups())
    elif m := _DAY_FIRST.fullmatch(text):
        dom, month, year = int(m[1]), int(m[3]), int(m[4])
        if month > 12 and 1 <= dom <= 12:
            try:
                exchanged = date(year, dom, month)
            except ValueError:
                return _invalid("is not a calendar date")
            return _checked(exchanged, year, today, swapped=True)
    else:
        return _invalid(f"is not {_FORMS}" + (" or its declared format" if formats else ""))
    try:
        day = date(year, month, dom)
    except ValueError:
        return _invalid("is not a calendar date")
    return _checked(day, year, today)


def _check_date(check: Check, ctx: Context) -> None:
    parsed = parse_date(check.value, today=ctx.today, formats=check.formats)
    if parsed.swapped and parsed.iso is not None:
        if check.fix("date.swapped", f"{check.field} is month/day/year: day and month exchanged", parsed.iso):
            return
        check.flag("birthdate.invalid", f"{check.field} is not a calendar date unless day and month are exchanged")
    elif parsed.iso is None:
        check.flag("birthdate.invalid", f"{check.field} {parsed.problem}")
    elif check.value != parsed.iso:
        check.fix("birthdate.parse", f"{check.field} rewritten as ISO 8601", parsed.iso)


_FORMAT = "ISO 8601 in the Avro contract; Vietnamese documents write day/month/year (Decree 30/2020/NĐ-CP)"

DATE = FieldType("date", _check_date, (
    Rule("birthdate.invalid", "not a date, not a calendar date, before 1900 or in the future",
         "Law on Identification 26/2023/QH15 Art. 9 (date of birth); " + _FORMAT),
    Rule("birthdate.parse", "a valid date in another accepted form or the declared format, rewritten as ISO 8601",
         _FORMAT, fixes=True),
    Rule("date.swapped", "month/day/year: valid only with day and month exchanged", _FORMAT, fixes=True),
), format_problem=date_format_problem)
