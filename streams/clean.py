"""Cleaning rules for population citizens and telecom subscribers.

Pure: plain dicts in (Avro field names), a `Cleaned` value out; no Faust, no Kafka. Every rule
runs on every record and reports `Finding`s in a fixed order; a record is rejected by its first
finding of severity "reject". A "fix" finding means the value was rewritten, a "warn" finding
leaves it as given. Cleaning is idempotent and never raises, whatever the strings hold.

Rule ids: name.normalize, name.missing, id.shape, id.legacy_cmnd, id.prefix, id.century,
birthdate.parse, birthdate.invalid, phone.normalize, phone.invalid, province.unknown,
birthprovince.mismatch. Reasons name the field and the problem, never a person's full value.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from streams import reference

__all__ = ["Cleaned", "Finding", "clean_citizen", "clean_subscriber", "name_key", "normalize_phone"]

REJECT = "reject"
FIX = "fix"
WARN = "warn"


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str  # "id.prefix"
    field: str  # "personal_id"
    severity: str  # "reject" | "fix" | "warn"
    reason: str  # one line for a data steward


@dataclass(frozen=True, slots=True)
class Cleaned:
    record: dict[str, Any]
    findings: tuple[Finding, ...]

    @property
    def rejection(self) -> Finding | None:
        """The first finding that rejects the record, or None when it passes."""
        return next((f for f in self.findings if f.severity == REJECT), None)


# --- values -------------------------------------------------------------------------------

def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _one_char(mapped: str, original: str) -> str:
    # "ß".upper() is "SS" and "İ".lower() is two code points: keeping such letters as they are
    # keeps the rule idempotent; no Vietnamese letter is affected.
    return mapped if len(mapped) == 1 else original


def _capitalise(word: str) -> str:
    head = _one_char(word[0].upper(), word[0])
    return head + "".join(_one_char(c.lower(), c) for c in word[1:])


def _normal_name(text: str) -> str:
    for _ in range(4):  # case mapping can create a new NFC composition; settle on a fixed point
        step = _nfc(" ".join(_capitalise(w) for w in _nfc(text).split()))
        if step == text:
            break
        text = step
    return text


def name_key(name: str) -> str:
    """Comparison key for names: NFC, whitespace collapsed, case folded."""
    return _nfc(" ".join(_nfc(name).split()).casefold())


_PHONE_SEPARATORS = re.compile(r"[\s.\-()]")


def normalize_phone(raw: str) -> str | None:
    """The 10-digit national form "0xxxxxxxxx" of a Vietnamese mobile number, or None.

    Accepts separators, +84/84 country codes and the 11-digit numbers retired in 2018 (old
    4-digit prefix replaced by its 3-digit successor, last seven digits unchanged).
    """
    if not isinstance(raw, str):
        return None
    digits = _PHONE_SEPARATORS.sub("", raw)
    international = digits.startswith("+")
    digits = digits.removeprefix("+")
    if not (digits.isascii() and digits.isdigit()):
        return None
    if international or (digits.startswith("84") and len(digits) in (11, 12)):
        if not digits.startswith("84"):
            return None
        subscriber = digits[2:]
        subscriber = subscriber[1:] if subscriber.startswith("0") else subscriber  # "+84 (0) 9…"
        if len(subscriber) not in (9, 10):
            return None
        digits = "0" + subscriber
    if len(digits) == 11 and (new := reference.new_mobile_prefix(digits[:4])) is not None:
        digits = new + digits[4:]
    if len(digits) == 10 and reference.mobile_prefix(digits[:3]) is not None:
        return digits
    return None


_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DMY_DATE = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})")
_YEAR = re.compile(r"[0-9]{4}")


@dataclass(frozen=True, slots=True)
class _Birth:
    iso: str | None  # "1990-02-28" or "1955"; None when invalid
    year: int | None
    problem: str  # why it is invalid, "" when valid


def _parse_birth_date(value: object, today: date) -> _Birth:
    if not isinstance(value, str):
        return _Birth(None, None, "birth_date is missing")
    text = value.strip()
    if _YEAR.fullmatch(text):
        year, day = int(text), None
    elif m := _ISO_DATE.fullmatch(text) or _DMY_DATE.fullmatch(text):
        parts = [int(p) for p in m.groups()]
        year, month, dom = parts if m.re is _ISO_DATE else parts[::-1]
        try:
            day = date(year, month, dom)
        except ValueError:
            return _Birth(None, None, "birth_date is not a calendar date")
    else:
        return _Birth(None, None, "birth_date is not yyyy-mm-dd, dd/mm/yyyy or yyyy")
    if year < 1900:
        return _Birth(None, None, "birth_date is before 1900")
    if year > today.year or (day is not None and day > today):
        return _Birth(None, None, "birth_date is in the future")
    return _Birth(day.isoformat() if day else f"{year:04d}", year, "")


# --- rules --------------------------------------------------------------------------------

@dataclass(slots=True)
class _Draft:
    record: dict[str, Any]
    birth: _Birth
    findings: list[Finding] = field(default_factory=list)

    def add(self, rule: str, field_name: str, severity: str, reason: str) -> None:
        self.findings.append(Finding(rule, field_name, severity, reason))


_Rule = Callable[[_Draft], None]


def _name_rule(name_field: str) -> _Rule:
    def rule(draft: _Draft) -> None:
        value = draft.record.get(name_field)
        if not isinstance(value, str):
            draft.add("name.missing", name_field, REJECT, f"{name_field} is missing")
            return
        normal = _normal_name(value)
        if normal != value:
            draft.record[name_field] = normal
            draft.add("name.normalize", name_field, FIX, f"{name_field} normalised (NFC, spacing, capitals)")
        if not normal:
            draft.add("name.missing", name_field, REJECT, f"{name_field} is empty")

    return rule


def _id_rule(id_field: str, *, legacy_cmnd: bool, sex_field: str | None) -> _Rule:
    def rule(draft: _Draft) -> None:
        value = draft.record.get(id_field)
        if not isinstance(value, str):
            draft.add("id.shape", id_field, REJECT, f"{id_field} is missing")
            return
        number = "".join(value.split())  # spaces inside an id are typing, not data: fix silently
        draft.record[id_field] = number
        is_digits = number.isascii() and number.isdigit()
        if legacy_cmnd and is_digits and len(number) == 9:
            draft.add("id.legacy_cmnd", id_field, WARN, f"{id_field} is a 9-digit CMND, not a personal id")
            return
        if not (is_digits and len(number) == 12):
            expected = "12 or 9 digits" if legacy_cmnd else "12 digits"
            got = "non-digits" if not is_digits else f"{len(number)} digits"
            draft.add("id.shape", id_field, REJECT, f"{id_field} has {got}, expected {expected}")
            return
        if reference.legacy_province(number[:3]) is None:
            draft.add("id.prefix", id_field, REJECT, f"prefix {number[:3]} is not a pre-2025 province code")
        if draft.birth.year is None:
            return  # birthdate.invalid already rejects the record
        digit = int(number[3])
        century = 1900 + digit // 2 * 100
        born = draft.birth.year // 100 * 100
        if century != born:
            draft.add("id.century", id_field, REJECT,
                      f"digit 4 encodes births in the {century}s, birth_date is in the {born}s")
        elif sex_field is not None and draft.record.get(sex_field) in ("MALE", "FEMALE"):
            encoded = "MALE" if digit % 2 == 0 else "FEMALE"
            if draft.record[sex_field] != encoded:
                draft.add("id.century", id_field, REJECT, f"digit 4 encodes {encoded}, {sex_field} disagrees")

    return rule


def _birth_date_rule(draft: _Draft) -> None:
    if draft.birth.iso is None:
        draft.add("birthdate.invalid", "birth_date", REJECT, draft.birth.problem)
    elif draft.record.get("birth_date") != draft.birth.iso:
        draft.record["birth_date"] = draft.birth.iso
        draft.add("birthdate.parse", "birth_date", FIX, "birth_date rewritten as ISO 8601")


def _phone_rule(phone_field: str, *, severity: str, optional: bool) -> _Rule:
    def rule(draft: _Draft) -> None:
        value = draft.record.get(phone_field)
        if value is None and optional:
            return
        normal = normalize_phone(value) if isinstance(value, str) else None
        if normal is None:
            draft.add("phone.invalid", phone_field, severity,
                      f"{phone_field} is not a 10-digit mobile number with a known prefix")
        elif normal != value:
            draft.record[phone_field] = normal
            draft.add("phone.normalize", phone_field, FIX, f"{phone_field} rewritten in 10-digit national form")

    return rule


def _residence_rule(draft: _Draft) -> None:
    residence = draft.record.get("residence")
    code = residence.get("province_code") if isinstance(residence, dict) else None
    if not isinstance(code, str) or reference.province_2025(code) is None:
        draft.add("province.unknown", "residence.province_code", REJECT,
                  "residence.province_code is not one of the 34 province codes of 2025")


def _birth_province_rule(draft: _Draft) -> None:
    number = draft.record.get("personal_id")
    if not (isinstance(number, str) and len(number) == 12 and number.isascii() and number.isdigit()):
        return  # id.shape already rejects the record
    if draft.record.get("birth_registration_province") != number[:3]:
        draft.add("birthprovince.mismatch", "birth_registration_province", WARN,
                  f"birth_registration_province differs from id prefix {number[:3]}")


_CITIZEN_RULES: tuple[_Rule, ...] = (
    _name_rule("full_name"),
    _id_rule("personal_id", legacy_cmnd=False, sex_field="sex"),
    _birth_date_rule,
    _phone_rule("phone", severity=WARN, optional=True),
    _residence_rule,
    _birth_province_rule,
)

_SUBSCRIBER_RULES: tuple[_Rule, ...] = (
    _name_rule("subscriber_name"),
    _id_rule("id_number", legacy_cmnd=True, sex_field=None),
    _birth_date_rule,
    _phone_rule("msisdn", severity=REJECT, optional=False),
)


def _clean(record: dict[str, Any], rules: tuple[_Rule, ...], today: date | None) -> Cleaned:
    copy = dict(record)
    if isinstance(copy.get("residence"), dict):
        copy["residence"] = dict(copy["residence"])
    draft = _Draft(copy, _parse_birth_date(copy.get("birth_date"), today or date.today()))
    for rule in rules:
        rule(draft)
    return Cleaned(draft.record, tuple(draft.findings))


def clean_citizen(record: dict[str, Any], *, today: date | None = None) -> Cleaned:
    """Clean one population record (vn.gsp.population.Citizen fields); `record` is not changed."""
    return _clean(record, _CITIZEN_RULES, today)


def clean_subscriber(record: dict[str, Any], *, today: date | None = None) -> Cleaned:
    """Clean one telecom record (vn.gsp.telecom.Subscriber fields); `record` is not changed."""
    return _clean(record, _SUBSCRIBER_RULES, today)
