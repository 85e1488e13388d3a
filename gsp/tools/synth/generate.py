"""Synthetic population and telecom sources with known dirt, and the counts they must produce.

`generate(n)` draws n citizens and n subscriptions. Each row carries at most one kind of dirt,
and the `Truth` is tallied from what was injected, never by running the cleaning rules: a
pipeline that cleans, quarantines and verifies these rows must report exactly these counts.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from random import Random
from typing import Any

from gsp.tools.synth import dirt
from gsp.tools.synth.names import fold_diacritics
from gsp.tools.synth.population import Person, World
from schemas.envelope import Verdict
from streams import reference
from streams.clean import name_key

__all__ = ["CITIZEN_DATASET", "SUBSCRIBER_DATASET", "Synthetic", "Truth", "generate"]

CITIZEN_DATASET = "population.citizen"
SUBSCRIBER_DATASET = "telecom.subscriber"
MATCHED, MISMATCH, POSSIBLE, NO_MATCH = Verdict.MATCHED, Verdict.MISMATCH, Verdict.POSSIBLE, Verdict.NO_MATCH
QUARANTINED = "QUARANTINED"  # not a verdict: the subscriber never reaches matching

_HISTORY_MS = 500 * 86_400_000  # source rows were last updated over the 500 days before `today`


def _updated_at(world: World, i: int, records: int) -> int:
    """Increasing timestamps spread over the history window, so freshness ("sống") has something to measure."""
    end_ms = int(datetime.combine(world.today, datetime.min.time(), tzinfo=UTC).timestamp() * 1000)
    return end_ms - _HISTORY_MS + (i * _HISTORY_MS) // max(records, 1) + world.rng.randrange(1000)

# Citizen rows: share of each kind of dirt; the rest are clean.
_CITIZEN_DEFECTS = ("id.prefix", "id.century", "birthdate.invalid")  # rejected by cleaning, about 1%
_CITIZEN_HARMLESS = ("nfd_name", "messy_name", "dmy_date", "messy_phone", "spaced_id")  # fixed, about 6%

# Subscriber rows, percent. The outcome of each kind is declared in _SUBSCRIBER_KINDS below.
_SUBSCRIBER_MIX = {
    "copy": 54.0, "messy_name": 8.0, "messy_phone": 6.0, "old_msisdn": 3.0, "dmy_date": 4.0, "spaced_id": 2.0,
    "no_diacritics": 6.0, "wrong_year": 4.0, "unknown_id": 4.0, "cmnd": 4.0,
    "schema.required": 0.8, "id.shape": 0.9, "id.prefix": 0.8, "id.century": 0.8, "phone.invalid": 0.9,
    "birthdate.invalid": 0.8,
}
# Dirt whose finding fires exactly once per row given it. Others do not map one to one: a day-first
# date whose day is 12 or less is read as is; a folded name can still hold only valid syllables.
_FINDING_OF_DIRT = {
    "population.citizen": {"name.normalize": ("nfd_name", "messy_name"), "phone.normalize": ("messy_phone",)},
    "telecom.subscriber": {"id.birthyear": ("wrong_year",), "id.legacy_cmnd": ("cmnd",),
                           "phone.normalize": ("messy_phone", "old_msisdn")},
}
# Chance that a citizen whose own row is quarantined holds a subscription (searched for, NO_MATCH).
_ORPHAN_SHARE = 0.8


@dataclass(frozen=True)
class Truth:
    """Counts a correct pipeline reports for a `Synthetic` data set.

    Both datasets are always keys of `quarantined`; a rule, verdict, carrier or field whose
    count is zero is absent, so the dictionaries compare equal to counters of observed events.
    """

    citizens: int  # rows published by the population source
    subscribers: int  # rows published by the telecom source
    quarantined: dict[str, dict[str, int]]  # dataset -> rule -> rows quarantined by it
    match: dict[str, int]  # verdict -> subscribers that passed cleaning (POSSIBLE: the search finds the person)
    matched_by_carrier: dict[str, int]  # carrier -> MATCHED subscribers
    mismatch_fields: dict[str, int]  # "full_name" / "birth_date" -> MISMATCH results disagreeing on it
    injected: dict[str, dict[str, int]] = field(default_factory=dict)  # dataset -> kind of dirt -> rows given it

    @property
    def review(self) -> int:
        """Results a steward is asked about: every POSSIBLE, and every MISMATCH (here always the same person)."""
        return self.match.get(POSSIBLE, 0) + self.match.get(MISMATCH, 0)

    def findings(self) -> dict[str, dict[str, int]]:
        """Findings the clean stage must report for the dirt injected, for the rules that fire exactly once per such row."""
        return {dataset: {rule: sum(self.injected.get(dataset, {}).get(kind, 0) for kind in kinds)
                          for rule, kinds in rules.items()}
                for dataset, rules in _FINDING_OF_DIRT.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "citizens": self.citizens,
            "subscribers": self.subscribers,
            "quarantined": {d: dict(sorted(r.items())) for d, r in sorted(self.quarantined.items())},
            "match": dict(sorted(self.match.items())),
            "matched_by_carrier": dict(sorted(self.matched_by_carrier.items())),
            "mismatch_fields": dict(sorted(self.mismatch_fields.items())),
            "review": self.review,
            "injected": {d: dict(sorted(k.items())) for d, k in sorted(self.injected.items())},
            "findings": self.findings(),
        }


@dataclass(frozen=True)
class Synthetic:
    citizens: list[dict[str, Any]]  # flat rows of the population source table
    subscribers: list[dict[str, Any]]  # flat rows of the telecom source table
    truth: Truth
    links: dict[str, str] = field(default_factory=dict)  # msisdn -> personal id the search must propose (POSSIBLE rows)


def _citizen_row(world: World, person: Person, kind: str | None) -> tuple[dict[str, Any], str | None]:
    """The person as the population source stores it, with `kind` of dirt; returns the kind applied."""
    rng = world.rng
    row: dict[str, Any] = {
        "personal_id": person.personal_id, "full_name": person.full_name, "birth_date": person.birth_date,
        "sex": person.sex, "birth_registration_province": person.birth_province,
        "province_code": person.province_code, "ward_code": person.ward_code,
        "address_line": person.address_line, "phone": person.phone, "status": person.status,
    }
    if kind == "id.prefix" or kind == "id.century":
        wrong = (rng.choice(dirt.BAD_ID_PREFIXES) + person.personal_id[3:] if kind == "id.prefix"
                 else dirt.wrong_sex_or_century(person.personal_id, rng))
        if not world.ids.claim(wrong):  # another person's id: a different defect keeps ids unique
            kind = "birthdate.invalid"
        else:
            row["personal_id"] = wrong
    if kind == "birthdate.invalid":
        row["birth_date"] = dirt.impossible_date(person.birth_date, rng)
    elif kind == "nfd_name":
        row["full_name"] = unicodedata.normalize("NFD", person.full_name)
    elif kind == "messy_name":
        row["full_name"] = dirt.messy_name(person.full_name, rng)
    elif kind == "dmy_date" and len(person.birth_date) == 10:
        row["birth_date"] = dirt.day_month_year(person.birth_date, rng)
    elif kind == "messy_phone":
        row["phone"] = dirt.messy_phone(person.phone, rng)
    elif kind == "spaced_id":
        row["personal_id"] = dirt.spaced_id(person.personal_id)
    if kind in ("nfd_name", "messy_name") and row["full_name"] == person.full_name:
        kind = None  # NFD of a name without diacritics is the name itself: no dirt after all
    return row, kind


def citizen_table(world: World, people: list[Person]) -> tuple[
        list[dict[str, Any]], list[Person], Counter[str], list[str]]:
    """The population source table of `people`, row i about people[i]:
    (rows, people whose row is quarantined, rule -> rows, the kind of dirt of each row)."""
    rng = world.rng
    citizens: list[dict[str, Any]] = []
    held_back: list[Person] = []
    citizen_rules: Counter[str] = Counter()
    citizen_kinds: list[str] = []
    for i, person in enumerate(people):
        roll = rng.random()
        kind = (rng.choice(_CITIZEN_DEFECTS) if roll < 0.01
                else rng.choice(_CITIZEN_HARMLESS) if roll < 0.07 else None)
        row, kind = _citizen_row(world, person, kind)
        citizen_kinds.append(kind or "copy")
        row["updated_at"] = _updated_at(world, i, len(people))
        citizens.append(row)
        if kind in _CITIZEN_DEFECTS:
            citizen_rules[kind] += 1
            held_back.append(person)
    return citizens, held_back, citizen_rules, citizen_kinds


_Outcome = tuple[str, str | None]  # (verdict or QUARANTINED, disagreeing field or quarantine rule)
_Dirt = Callable[[World, Person, dict[str, Any]], _Outcome]


def _put(row: dict[str, Any], column: str, value: Any, outcome: _Outcome) -> _Outcome:
    row[column] = value
    return outcome


def _no_diacritics(world: World, person: Person, row: dict[str, Any]) -> _Outcome:
    folded = row["subscriber_name"] = fold_diacritics(person.full_name)
    same = name_key(folded) == name_key(person.full_name)  # "Lan Anh" has nothing to strip
    return (MATCHED, None) if same else (MISMATCH, "full_name")


def _wrong_year(world: World, person: Person, row: dict[str, Any]) -> _Outcome:
    shifted = dirt.shifted_birth_year(person.birth_date, world.rng, world.today)
    return (MATCHED, None) if shifted is None else _put(row, "birth_date", shifted, (MISMATCH, "birth_date"))


def _unknown_id(world: World, person: Person, row: dict[str, Any]) -> _Outcome:
    prefix = world.rng.choice(world.legacy).id_prefix
    return _put(row, "id_number", world.personal_id(prefix, person.sex, int(person.birth_date[:4])),
                (POSSIBLE, None))


def _day_month_year(world: World, person: Person, row: dict[str, Any]) -> _Outcome:
    if len(person.birth_date) == 10:
        row["birth_date"] = dirt.day_month_year(person.birth_date, world.rng)
    return MATCHED, None


_SUBSCRIBER_KINDS: dict[str, _Dirt] = {
    "copy": lambda w, p, r: (MATCHED, None),
    "messy_name": lambda w, p, r: _put(r, "subscriber_name", dirt.messy_name(p.full_name, w.rng), (MATCHED, None)),
    "messy_phone": lambda w, p, r: _put(r, "msisdn", dirt.messy_phone(r["msisdn"], w.rng), (MATCHED, None)),
    "old_msisdn": lambda w, p, r: _put(r, "msisdn", dirt.old_msisdn(r["msisdn"]), (MATCHED, None)),
    "dmy_date": _day_month_year,
    "spaced_id": lambda w, p, r: _put(r, "id_number", dirt.spaced_id(p.personal_id), (MATCHED, None)),
    "no_diacritics": _no_diacritics,
    "wrong_year": _wrong_year,
    "unknown_id": _unknown_id,
    # An old 9-digit CMND or an id the registry does not hold: the search proposes the person, for review.
    "cmnd": lambda w, p, r: _put(r, "id_number", f"{w.rng.randrange(10**9):09d}", (POSSIBLE, None)),
    "orphan": lambda w, p, r: (NO_MATCH, None),  # the person's own population row is quarantined: nobody to find
    "schema.required": lambda w, p, r: _put(r, "subscriber_name", None, (QUARANTINED, "schema.required")),
    "id.shape": lambda w, p, r: _put(r, "id_number", dirt.malformed_id(p.personal_id, w.rng),
                                     (QUARANTINED, "id.shape")),
    "id.prefix": lambda w, p, r: _put(r, "id_number", w.rng.choice(dirt.BAD_ID_PREFIXES) + p.personal_id[3:],
                                      (QUARANTINED, "id.prefix")),
    "id.century": lambda w, p, r: _put(r, "id_number", dirt.wrong_century(p.personal_id),
                                       (QUARANTINED, "id.century")),
    "phone.invalid": lambda w, p, r: _put(r, "msisdn", dirt.malformed_msisdn(r["msisdn"], w.rng),
                                          (QUARANTINED, "phone.invalid")),
    "birthdate.invalid": lambda w, p, r: _put(r, "birth_date", dirt.impossible_date(p.birth_date, w.rng),
                                              (QUARANTINED, "birthdate.invalid")),
}


def _subscriber_row(world: World, person: Person, *, old_style: bool) -> dict[str, Any]:
    msisdn = world.msisdn(person, old_style=old_style)
    address = None
    if world.rng.random() < 0.9:
        ward = reference.ward_2025(person.ward_code)
        province = reference.province_2025(person.province_code)
        address = f"{person.address_line}, {ward.name if ward else ''}, {province.name if province else ''}"
    return {
        "msisdn": msisdn, "carrier": world.carrier(msisdn), "subscriber_name": person.full_name,
        "id_number": person.personal_id, "birth_date": person.birth_date, "address": address,
    }


def generate(records: int, *, seed: int = 7, today: date | None = None) -> Synthetic:
    """`records` citizens and `records` subscribers, deterministic for a seed, with their `Truth`."""
    world = World(Random(seed), today or date.today())
    rng = world.rng
    people = [world.person() for _ in range(records)]
    citizens, held_back, citizen_rules, citizen_kinds = citizen_table(world, people)

    held_ids = {p.personal_id for p in held_back}
    eligible = [p for p in people if p.status == "ALIVE" and p.personal_id not in held_ids]
    orphans = [p for p in held_back if rng.random() < _ORPHAN_SHARE][:records]
    kinds = ["orphan"] * len(orphans) + rng.choices(
        list(_SUBSCRIBER_MIX), list(_SUBSCRIBER_MIX.values()), k=records - len(orphans))
    rng.shuffle(kinds)
    next_orphan = iter(orphans)

    subscribers: list[dict[str, Any]] = []
    subscriber_rules: Counter[str] = Counter()
    verdicts: Counter[str] = Counter()
    by_carrier: Counter[str] = Counter()
    fields: Counter[str] = Counter()
    injected: Counter[str] = Counter()
    links: dict[str, str] = {}
    for i, kind in enumerate(kinds):
        if kind == "orphan":
            person = next(next_orphan)
        elif eligible:
            person = rng.choice(eligible)
        else:  # a tiny population with nobody to subscribe: someone the registry does not know
            kind, person = "orphan", world.person()  # not in the registry: nobody to find
        row = _subscriber_row(world, person, old_style=kind == "old_msisdn")
        outcome, detail = _SUBSCRIBER_KINDS[kind](world, person, row)
        injected[kind] += 1
        row["updated_at"] = _updated_at(world, i, records)
        subscribers.append(row)
        if outcome == QUARANTINED:
            subscriber_rules[detail or ""] += 1
            continue
        verdicts[outcome] += 1
        if outcome == MATCHED:
            by_carrier[row["carrier"]] += 1
        elif outcome == POSSIBLE:
            links[row["msisdn"]] = person.personal_id
        elif outcome == MISMATCH:
            fields[detail or ""] += 1

    truth = Truth(
        citizens=len(citizens),
        subscribers=len(subscribers),
        quarantined={CITIZEN_DATASET: dict(citizen_rules), SUBSCRIBER_DATASET: dict(subscriber_rules)},
        match=dict(verdicts),
        matched_by_carrier=dict(by_carrier),
        mismatch_fields=dict(fields),
        injected={CITIZEN_DATASET: dict(Counter(citizen_kinds)), SUBSCRIBER_DATASET: dict(injected)},
    )
    return Synthetic(citizens, subscribers, truth, links)
