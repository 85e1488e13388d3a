"""Kinds of dirt for a linked dataset, over a column map, each with the outcome it must have.

A kind takes a row that holds the truth about a person (as the dataset's columns name it:
`Columns`) and spoils one field, returning what a correct pipeline then does with the row
(`Applied`): the verdict of the three-field check or of the search, or the quarantine rule, and
the findings of cleaning that fire exactly once because of it. A kind that cannot apply to the
row (a year-only birth date written day-first) returns None and the row stays a copy.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gsp.tools.synth import dirt
from gsp.tools.synth.names import fold_diacritics
from gsp.tools.synth.population import Person, World
from schemas.envelope import Verdict
from streams import reference
from streams.clean import name_key

__all__ = ["CLEAN", "KINDS", "QUARANTINED", "Applied", "Columns", "Kind", "legacy_province_code", "messy_code"]

MATCHED, MISMATCH, POSSIBLE, NO_MATCH = Verdict.MATCHED, Verdict.MISMATCH, Verdict.POSSIBLE, Verdict.NO_MATCH
QUARANTINED = "QUARANTINED"  # held back by the connector or by cleaning: never matched nor shared
CLEAN = "CLEAN"  # a plain dataset's row that is shared


@dataclass(frozen=True, slots=True)
class Columns:
    """Which source column holds which part of a person's identity (None: the dataset has none)."""

    name: str
    id: str
    birth: str
    phone: str | None = None
    sex: str | None = None
    code: str | None = None  # the source's own identifier, checked against a declared format
    province: str | None = None  # a 2025 province code


@dataclass(frozen=True, slots=True)
class Applied:
    outcome: str  # a verdict, QUARANTINED, or CLEAN
    detail: str | None = None  # the quarantine rule, or the field a MISMATCH names
    findings: tuple[str, ...] = ()  # rules cleaning reports exactly once because of this dirt
    kept: bool = False  # cleaning keeps the spoilt value (it is what the source truly holds), nothing restores it


Kind = Callable[[World, Person, dict[str, Any], Columns], Applied | None]

_MATCHED = Applied(MATCHED)


def legacy_province_code(code: str) -> str | None:
    """A pre-2025 two-digit code of a province merged into `code` that is not itself a 2025 code."""
    olds = [p.id_prefix[1:] for p in reference.predecessors(code)]
    return next((old for old in olds if reference.province_2025(old) is None), None)


def messy_code(code: str, world: World) -> str:
    """A code typed with spaces, dots or dashes, or in lower case where it has letters."""
    forms = ["spaces", "dots", "dashes"] + (["lower"] if any(c.isalpha() for c in code) else [])
    form = world.rng.choice(forms)
    if form == "lower":
        return code.lower()
    separator = {"spaces": " ", "dots": ".", "dashes": "-"}[form]
    return separator.join((code[:4], code[4:8], code[8:]))


def _malformed_code(code: str, world: World) -> str:
    """A code one character short, or with a character no format allows."""
    at = world.rng.randrange(1, len(code))
    if world.rng.random() < 0.5:
        return code[:at] + code[at + 1:]
    return code[:at] + world.rng.choice("#/*") + code[at + 1:]


def _put(row: dict[str, Any], column: str | None, value: Any, applied: Applied) -> Applied | None:
    if column is None or row.get(column) is None:
        return None
    row[column] = value
    return applied


def _messy_name(w: World, p: Person, r: dict[str, Any], c: Columns) -> Applied | None:
    messy = dirt.messy_name(p.full_name, w.rng)
    return None if messy == p.full_name else _put(r, c.name, messy, Applied(MATCHED, findings=("name.normalize",)))


def _old_msisdn(w: World, p: Person, r: dict[str, Any], c: Columns) -> Applied | None:
    phone = r.get(c.phone) if c.phone else None
    prefix = reference.mobile_prefix(phone[:3]) if isinstance(phone, str) else None
    if phone is None or prefix is None or prefix.legacy_prefix is None:
        return None
    return _put(r, c.phone, dirt.old_msisdn(phone), Applied(MATCHED, findings=("phone.normalize",)))


def _date_form(write: Callable[[str], str]) -> Kind:
    def apply(w: World, p: Person, r: dict[str, Any], c: Columns) -> Applied | None:
        if len(p.birth_date) != 10:
            return None
        return _put(r, c.birth, write(p.birth_date), Applied(MATCHED, findings=("birthdate.parse",)))
    return apply


def _no_diacritics(w: World, p: Person, r: dict[str, Any], c: Columns) -> Applied | None:
    folded = fold_diacritics(p.full_name)
    same = name_key(folded) == name_key(p.full_name)  # "Lan Anh" has nothing to strip
    return _put(r, c.name, folded, Applied(MATCHED, kept=True) if same else Applied(MISMATCH, "full_name", kept=True))


def _wrong_year(w: World, p: Person, r: dict[str, Any], c: Columns) -> Applied | None:
    shifted = dirt.shifted_birth_year(p.birth_date, w.rng, w.today)
    if shifted is None:
        return None
    return _put(r, c.birth, shifted, Applied(MISMATCH, "birth_date", ("id.birthyear",), kept=True))


def _unknown_id(w: World, p: Person, r: dict[str, Any], c: Columns) -> Applied | None:
    prefix = w.rng.choice(w.legacy).id_prefix
    return _put(r, c.id, w.personal_id(prefix, p.sex, int(p.birth_date[:4])), Applied(POSSIBLE, kept=True))


def _legacy_province(w: World, p: Person, r: dict[str, Any], c: Columns) -> Applied | None:
    current = r.get(c.province) if c.province else None
    old = legacy_province_code(current) if isinstance(current, str) else None
    return None if old is None else _put(r, c.province, old, Applied(MATCHED, findings=("province.legacy",)))


def _sex(spelling: dict[str, str]) -> Kind:
    return lambda w, p, r, c: _put(r, c.sex, spelling[p.sex], Applied(MATCHED, findings=("sex.normalize",)))


def _spoil(column: Callable[[Columns], str | None], value: Callable[[World, Person, Any], Any],
           applied: Applied) -> Kind:
    """A kind that spoils `column`, given its current value; not for a dataset without it or a row where it is NULL."""
    def apply(w: World, p: Person, r: dict[str, Any], c: Columns) -> Applied | None:
        name = column(c)
        return None if name is None or r.get(name) is None else _put(r, name, value(w, p, r[name]), applied)
    return apply


def _quarantine(column: Callable[[Columns], str | None], value: Callable[[World, Person, Any], Any],
                rule: str) -> Kind:
    return _spoil(column, value, Applied(QUARANTINED, rule))


KINDS: dict[str, Kind] = {
    "copy": lambda w, p, r, c: _MATCHED,
    "messy_name": _messy_name,
    "nfd_name": lambda w, p, r, c: (
        None if unicodedata.normalize("NFD", p.full_name) == p.full_name
        else _put(r, c.name, unicodedata.normalize("NFD", p.full_name), Applied(MATCHED, findings=("name.normalize",)))),
    "messy_phone": _spoil(lambda c: c.phone, lambda w, p, v: dirt.messy_phone(v, w.rng),
                          Applied(MATCHED, findings=("phone.normalize",))),
    "old_msisdn": _old_msisdn,
    "dmy_date": _date_form(lambda iso: f"{iso[8:10]}/{iso[5:7]}/{iso[:4]}"),
    "yyyymmdd": _date_form(lambda iso: iso.replace("-", "")),
    "spaced_id": lambda w, p, r, c: _put(r, c.id, dirt.spaced_id(p.personal_id), _MATCHED),
    "sex_digit": _sex({"MALE": "1", "FEMALE": "0"}),
    "sex_word": _sex({"MALE": "Nam", "FEMALE": "Nữ"}),
    "messy_code": _spoil(lambda c: c.code, lambda w, p, v: messy_code(v, w), Applied(MATCHED, findings=("code.normalize",))),
    "legacy_province": _legacy_province,
    "bad_phone": _spoil(lambda c: c.phone, lambda w, p, v: dirt.malformed_msisdn(v, w.rng),
                        Applied(MATCHED, findings=("phone.invalid",), kept=True)),  # where it only warns
    "no_diacritics": _no_diacritics,
    "wrong_year": _wrong_year,
    # An id the registry does not hold, or an old 9-digit CMND: the search proposes the person, for review.
    "unknown_id": _unknown_id,
    "cmnd": lambda w, p, r, c: _put(r, c.id, f"{w.rng.randrange(10**9):09d}",
                                    Applied(POSSIBLE, findings=("id.legacy_cmnd",), kept=True)),
    "orphan": lambda w, p, r, c: Applied(NO_MATCH),  # the person's own registry row is quarantined: nobody to find
    "schema.required": _quarantine(lambda c: c.name, lambda w, p, v: None, "schema.required"),
    "id.shape": _quarantine(lambda c: c.id, lambda w, p, v: dirt.malformed_id(p.personal_id, w.rng), "id.shape"),
    "id.prefix": _quarantine(lambda c: c.id, lambda w, p, v: w.rng.choice(dirt.BAD_ID_PREFIXES) + p.personal_id[3:],
                             "id.prefix"),
    "id.century": _quarantine(lambda c: c.id, lambda w, p, v: dirt.wrong_century(p.personal_id), "id.century"),
    "phone.invalid": _quarantine(lambda c: c.phone, lambda w, p, v: dirt.malformed_msisdn(v, w.rng),
                                 "phone.invalid"),
    "birthdate.invalid": _quarantine(lambda c: c.birth, lambda w, p, v: dirt.impossible_date(p.birth_date, w.rng),
                                     "birthdate.invalid"),
    "sex.invalid": _quarantine(lambda c: c.sex, lambda w, p, v: w.rng.choice(("X", "2", "?")), "sex.invalid"),
    "code.invalid": _quarantine(lambda c: c.code, lambda w, p, v: _malformed_code(v, w), "code.invalid"),
}
