"""The population registry's change events: births, deaths, moves, id reissues and name corrections.

Events are about people of the generated registry (a birth is a new person). Each row carries at
most one kind of dirt; `event_rows` returns, per row, the clean row (what cleaning must produce),
the kind applied, whether cleaning quarantines it and by which rule, and the findings it causes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any

from gsp.tools.synth import dirt, names
from gsp.tools.synth.population import Person, World
from streams import reference

__all__ = ["EVENT_TYPES", "EventRow", "event_rows"]

EVENT_TYPES = {"BIRTH": 30.0, "DEATH": 12.0, "MOVE": 40.0, "ID_REISSUE": 12.0, "NAME_CORRECTION": 6.0}
# Percent of rows given each kind; a kind that does not fit the event (legacy units of a birth) leaves a copy.
_MIX = {
    "copy": 77.0, "legacy_units": 8.0, "legacy_previous": 5.0, "nfd_name": 2.0, "dmy_date": 2.0,
    "dmy_event_date": 1.5, "sex_word": 1.5, "spaced_id": 1.0, "id.prefix": 1.0, "birthdate.invalid": 0.5,
    "schema.required": 0.5,
}
_WINDOW_DAYS = 500


@dataclass(frozen=True, slots=True)
class EventRow:
    row: dict[str, Any]  # as the source stores it
    clean: dict[str, Any]  # what cleaning makes of it (meaningless when quarantined)
    kind: str
    rule: str | None  # the quarantine rule, None when the row is shared
    findings: tuple[str, ...]  # rules cleaning reports exactly once because of the dirt


@cache
def _legacy_wards_into() -> dict[str, tuple[str, ...]]:
    """2025 ward -> pre-2025 ward codes that went wholly into it and are not 2025 codes themselves."""
    current = {w.code for w in reference.wards_2025()}
    out: dict[str, list[str]] = {}
    for old in reference.legacy_wards():
        if len(old.wards_2025) == 1 and old.code not in current:
            out.setdefault(old.wards_2025[0], []).append(old.code)
    return {k: tuple(v) for k, v in out.items()}


def _legacy_units(world: World, province: str, ward: str) -> tuple[str, str, tuple[str, ...]] | None:
    """(province code, ward code, findings) of a 2025 ward written in pre-2025 codes, if it has any."""
    olds = _legacy_wards_into().get(ward)
    if not olds:
        return None
    old_ward = reference.legacy_ward(world.rng.choice(olds))
    district = reference.legacy_district(old_ward.district_code) if old_ward else None
    legacy = reference.legacy_province(district.id_prefix) if district else None
    if old_ward is None or legacy is None or legacy.successor != province:
        return None
    code = legacy.id_prefix[1:]
    renamed = reference.province_2025(code) is None  # else it is read as the 2025 code it is
    return code, old_ward.code, ("province.legacy", "ward.legacy") if renamed else ("ward.legacy",)


def _day(world: World) -> date:
    """A day of the window of events before `today`."""
    return world.today - timedelta(days=world.rng.randrange(_WINDOW_DAYS))


def _newborn(world: World) -> tuple[Person, date]:
    rng = world.rng
    born = _day(world)
    sex = rng.choice(("MALE", "FEMALE"))
    born_in = rng.choices(world.legacy, world.legacy_weights)[0]
    ward = rng.choice(reference.wards_2025(born_in.successor))
    person = Person(world.personal_id(born_in.id_prefix, sex, born.year),
                    names.full_name(rng, sex, born=born.year, south=born_in.id_prefix >= "049"),
                    born.isoformat(), sex, born_in.id_prefix, born_in.successor, ward.code, "", world.phone(), "ALIVE")
    return person, min(born + timedelta(days=rng.randrange(60)), world.today)


def _base(code: str, kind: str, when: date, person: Person) -> dict[str, Any]:
    return {"event_code": code, "event_type": kind, "event_date": when.isoformat(),
            "personal_id": person.personal_id, "full_name": person.full_name, "birth_date": person.birth_date,
            "sex": person.sex, "province_code": person.province_code, "ward_code": person.ward_code,
            "previous_province_code": None, "previous_ward_code": None, "previous_id": None, "previous_name": None}


def _event(world: World, event_type: str, people: list[Person], code: str) -> dict[str, Any]:
    rng = world.rng
    if event_type == "BIRTH" or not people:
        person, when = _newborn(world)
        return _base(code, "BIRTH", when, person)
    if event_type == "DEATH":
        deceased = [p for p in people if p.status == "DECEASED"]
        return _base(code, event_type, _day(world), rng.choice(deceased or people))
    person = rng.choice(people)
    row = _base(code, event_type, _day(world), person)
    if event_type == "MOVE":
        province = person.province_code if rng.random() < 0.7 else rng.choice(world.provinces).code
        ward = rng.choice([w for w in reference.wards_2025(province) if w.code != person.ward_code])
        row.update(previous_province_code=province, previous_ward_code=ward.code)
    elif event_type == "ID_REISSUE":
        row["previous_id"] = f"{rng.randrange(10**8, 10**9):09d}"
    elif event_type == "NAME_CORRECTION":
        row["previous_name"] = names.fold_diacritics(person.full_name) if rng.random() < 0.5 else (
            person.full_name.rsplit(" ", 1)[0] + " " + names.full_name(rng, person.sex, born=1990, south=False).split()[-1])
    return row


_Spoil = Callable[[World, dict[str, Any]], tuple[str | None, tuple[str, ...]] | None]


def _moved(prefix: str) -> _Spoil:
    def spoil(world: World, row: dict[str, Any]) -> tuple[str | None, tuple[str, ...]] | None:
        province, ward = row[f"{prefix}province_code"], row[f"{prefix}ward_code"]
        units = _legacy_units(world, province, ward) if ward is not None else None
        if units is None:
            return None
        row[f"{prefix}province_code"], row[f"{prefix}ward_code"] = units[0], units[1]
        return None, units[2]
    return spoil


def _iso_date(column: str) -> _Spoil:
    def spoil(world: World, row: dict[str, Any]) -> tuple[str | None, tuple[str, ...]] | None:
        if row[column] is None or len(row[column]) != 10:
            return None
        row[column] = dirt.day_month_year(row[column], world.rng)
        return None, ("birthdate.parse",)
    return spoil


def _set(column: str, make: Callable[[World, Any], Any], rule: str | None,
         findings: tuple[str, ...] = ()) -> _Spoil:
    def spoil(world: World, row: dict[str, Any]) -> tuple[str | None, tuple[str, ...]] | None:
        spoilt = make(world, row[column])
        if spoilt == row[column]:
            return None
        row[column] = spoilt
        return rule, findings
    return spoil


_SPOIL: dict[str, _Spoil] = {
    "legacy_units": lambda w, r: _moved("")(w, r) if r["event_type"] == "MOVE" else None,
    "legacy_previous": _moved("previous_"),
    "nfd_name": _set("full_name", lambda w, v: unicodedata.normalize("NFD", v), None, ("name.normalize",)),
    "dmy_date": _iso_date("birth_date"),
    "dmy_event_date": _iso_date("event_date"),
    "sex_word": _set("sex", lambda w, v: {"MALE": "Nam", "FEMALE": "Nữ"}[v], None, ("sex.normalize",)),
    "spaced_id": _set("personal_id", lambda w, v: dirt.spaced_id(v), None),
    "id.prefix": _set("personal_id", lambda w, v: w.rng.choice(dirt.BAD_ID_PREFIXES) + v[3:], "id.prefix"),
    "birthdate.invalid": _set("birth_date", lambda w, v: dirt.impossible_date(v, w.rng), "birthdate.invalid"),
    "schema.required": _set("event_type", lambda w, v: None, "schema.required"),
}


def event_rows(world: World, people: list[Person], count: int) -> list[EventRow]:
    """`count` change events about `people` (and newborns), each with its truth."""
    rng = world.rng
    out: list[EventRow] = []
    for i in range(count):
        event_type = rng.choices(list(EVENT_TYPES), list(EVENT_TYPES.values()))[0]
        kind = rng.choices(list(_MIX), list(_MIX.values()))[0]
        row = _event(world, event_type, people, f"HT{world.today:%Y}{i + 1:07d}")
        clean = dict(row)
        spoilt = _SPOIL[kind](world, row) if kind != "copy" else None
        if spoilt is None:
            kind, spoilt = "copy", (None, ())
        out.append(EventRow(row, clean, kind, *spoilt))
    return out
