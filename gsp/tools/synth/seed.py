"""The seed: every declared source table of the demo, with realistic dirt and the exact truth.

`generate_seed(records)` draws `records` citizens (the population registry, as `generate` does)
and, about the same people, the tables of the other datasets:

    population.event         registry change events, records/10          plain
    telecom.subscriber       three carriers' tables, records in all      linked
    electricity.customer     EVN customers, records/4                    linked
    insurance.participant    social-insurance participants, records/4    linked

Each row carries at most one kind of dirt, and what a correct pipeline does with it (`Expected`)
is declared with the kind (`gsp.tools.synth.kinds`), never found by running the rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from random import Random
from typing import Any

from gsp.tools.synth.events import event_rows
from gsp.tools.synth.generate import _updated_at, citizen_table
from gsp.tools.synth.kinds import CLEAN, KINDS, QUARANTINED, Applied, Columns
from gsp.tools.synth.population import Person, Unique, World
from schemas.envelope import Verdict
from streams import reference

__all__ = ["Expected", "Seed", "SeedTruth", "SourceTable", "generate_seed"]

CITIZEN, EVENT, SUBSCRIBER = "population.citizen", "population.event", "telecom.subscriber"
CUSTOMER, PARTICIPANT = "electricity.customer", "insurance.participant"
DATASETS = (CITIZEN, EVENT, SUBSCRIBER, CUSTOMER, PARTICIPANT)
LINKED = (SUBSCRIBER, CUSTOMER, PARTICIPANT)

# Rules whose findings each dataset's dirt predicts exactly (zero included): the rest may also fire on clean rows.
_TRACKED: dict[str, tuple[str, ...]] = {
    CITIZEN: ("name.normalize", "phone.normalize"),
    EVENT: ("name.normalize", "birthdate.parse", "sex.normalize", "province.legacy", "ward.legacy"),
    SUBSCRIBER: ("name.normalize", "phone.normalize", "birthdate.parse", "id.birthyear", "id.legacy_cmnd"),
    CUSTOMER: ("name.normalize", "phone.normalize", "phone.invalid", "birthdate.parse", "id.birthyear",
               "id.legacy_cmnd", "code.normalize", "province.legacy"),
    PARTICIPANT: ("name.normalize", "birthdate.parse", "sex.normalize", "id.birthyear", "id.legacy_cmnd",
                  "code.normalize", "province.legacy"),
}
_CITIZEN_FINDINGS = {"name.normalize": ("nfd_name", "messy_name"), "phone.normalize": ("messy_phone",)}

# Percent of rows given each kind of dirt; each carrier has its own habits.
_SUBSCRIBER_MIX = {
    "copy": 54.0, "messy_name": 8.0, "messy_phone": 6.0, "old_msisdn": 3.0, "dmy_date": 4.0, "spaced_id": 2.0,
    "no_diacritics": 6.0, "wrong_year": 4.0, "unknown_id": 4.0, "cmnd": 4.0,
    "schema.required": 0.8, "id.shape": 0.9, "id.prefix": 0.8, "id.century": 0.8, "phone.invalid": 0.9,
    "birthdate.invalid": 0.8,
}
_CARRIERS: dict[str, tuple[str, str, float, dict[str, float]]] = {  # carrier: table, source system, share, habits
    "Viettel": ("subscriber_viettel", "telecom.viettel", 52.0, {"no_diacritics": 18.0, "messy_name": 3.0}),
    "VinaPhone": ("subscriber_vinaphone", "telecom.vinaphone", 22.0, {"old_msisdn": 14.0, "dmy_date": 16.0}),
    "MobiFone": ("subscriber_mobifone", "telecom.mobifone", 20.0, {"cmnd": 14.0, "spaced_id": 6.0}),
}
_CUSTOMER_MIX = {
    "copy": 55.0, "messy_name": 5.0, "messy_phone": 5.0, "old_msisdn": 2.0, "dmy_date": 5.0, "spaced_id": 3.0,
    "messy_code": 8.0, "legacy_province": 3.0, "bad_phone": 1.0, "no_diacritics": 6.0, "wrong_year": 2.0,
    "unknown_id": 2.0, "cmnd": 4.0, "schema.required": 0.5, "code.invalid": 1.5, "id.shape": 0.5, "id.prefix": 0.5,
    "birthdate.invalid": 0.5,
}
_PARTICIPANT_MIX = {
    "copy": 20.0, "yyyymmdd": 38.0, "sex_digit": 14.0, "sex_word": 6.0, "messy_name": 2.0, "spaced_id": 2.0,
    "messy_code": 3.0, "legacy_province": 2.0, "no_diacritics": 2.0, "wrong_year": 3.0, "unknown_id": 1.5,
    "cmnd": 3.0, "schema.required": 0.5, "id.shape": 0.5, "id.prefix": 0.5, "birthdate.invalid": 0.5,
    "sex.invalid": 1.0, "code.invalid": 1.0,
}
_SUBSCRIBER_COLUMNS = Columns(name="subscriber_name", id="id_number", birth="birth_date", phone="msisdn")
_CUSTOMER_COLUMNS = Columns(name="holder_name", id="id_number", birth="birth_date", phone="phone",
                            code="customer_code", province="province_code")
_PARTICIPANT_COLUMNS = Columns(name="full_name", id="id_number", birth="birth_date", sex="sex",
                               code="insurance_code", province="province_code")
# Chance that a person whose registry row is quarantined holds a subscription / an EVN contract / insurance.
_ORPHAN_SHARE = {SUBSCRIBER: 0.8, CUSTOMER: 0.3, PARTICIPANT: 0.3}
_EMPLOYERS = ("Công ty TNHH Thương mại Hưng Thịnh", "Công ty Cổ phần May Sông Hồng", "Tổng công ty Điện lực miền Bắc",
              "Công ty TNHH Điện tử Samsung Việt Nam", "Trường Tiểu học Lê Lợi", "Ủy ban nhân dân phường",
              "Bệnh viện Đa khoa tỉnh", "Công ty Cổ phần Xây dựng Số 1", "Hợp tác xã Nông nghiệp Thành Công")


@dataclass(frozen=True)
class SourceTable:
    name: str  # table / file stem: "citizen", "subscriber_viettel", "evn_customer", ...
    dataset: str  # "telecom.subscriber"
    source_system: str  # "telecom.viettel"
    rows: list[dict[str, Any]]  # flat rows as the source stores them, each with "updated_at" (ms)


@dataclass(frozen=True)
class Expected:
    """What a correct pipeline does with one row."""

    dataset: str
    source_key: str  # the key column's value as the source stores it
    outcome: str  # QUARANTINED; else the verdict of a linked dataset's row, CLEAN for a plain one's
    detail: str | None  # the quarantine rule, or the field a MISMATCH names
    values: dict[str, str | None]  # cleaned value of each shareable field of the dataset ({} when quarantined)


@dataclass(frozen=True)
class SeedTruth:
    """Counts a correct pipeline reports for a `Seed`; a zero count is absent except in `findings`."""

    published: dict[str, int]  # dataset -> rows the sources hold
    quarantined: dict[str, dict[str, int]]  # dataset -> rule -> rows (every dataset a key)
    match: dict[str, dict[str, int]]  # linked dataset -> verdict -> rows
    findings: dict[str, dict[str, int]]  # dataset -> rule -> rows, for the rules its dirt predicts exactly
    injected: dict[str, dict[str, int]]  # dataset -> kind of dirt -> rows
    links: dict[str, dict[str, str]]  # linked dataset -> source key -> personal id a POSSIBLE must name
    expected: dict[str, list[Expected]]  # dataset -> one per row (citizens: outcome and detail only)

    def review(self, dataset: str) -> int:
        """Results a steward is asked about: every POSSIBLE and every MISMATCH of the dataset."""
        verdicts = self.match.get(dataset, {})
        return verdicts.get(Verdict.POSSIBLE, 0) + verdicts.get(Verdict.MISMATCH, 0)

    def delivered(self, dataset: str, row_filter: dict[str, list[str]], verdicts: list[str] | None = None) -> int:
        """Rows a subscription with this filter receives (verdicts of a linked dataset: MATCHED by default)."""
        admitted = {CLEAN} if dataset not in LINKED else set(verdicts or [Verdict.MATCHED])
        return sum(1 for e in self.expected.get(dataset, []) if e.outcome in admitted
                   and all(str(e.values.get(name)) in allowed for name, allowed in row_filter.items()))

    def to_json(self) -> dict[str, Any]:
        def nested(d: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
            return {k: dict(sorted(v.items())) for k, v in sorted(d.items())}

        return {"published": dict(sorted(self.published.items())), "quarantined": nested(self.quarantined),
                "match": nested(self.match), "review": {d: self.review(d) for d in LINKED},
                "findings": nested(self.findings), "injected": nested(self.injected), "links": nested(self.links)}


@dataclass(frozen=True)
class Seed:
    tables: list[SourceTable]
    truth: SeedTruth


class _Tally:
    """The truth of one dataset, row by row."""

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset
        self.rules: Counter[str] = Counter()
        self.verdicts: Counter[str] = Counter()
        self.findings: Counter[str] = Counter({rule: 0 for rule in _TRACKED[dataset]})
        self.kinds: Counter[str] = Counter()
        self.links: dict[str, str] = {}
        self.expected: list[Expected] = []

    def add(self, key: str, kind: str, applied: Applied, values: dict[str, Any]) -> None:
        self.kinds[kind] += 1
        self.findings.update(f for f in applied.findings if f in self.findings)
        if applied.outcome == QUARANTINED:
            self.rules[applied.detail or ""] += 1
            values = {}
        elif applied.outcome != CLEAN:
            self.verdicts[applied.outcome] += 1
        self.expected.append(Expected(self.dataset, key, str(applied.outcome), applied.detail,
                                      {k: None if v is None else str(v) for k, v in values.items()}))


_RowMaker = Callable[[World, Person, str], dict[str, Any]]


def _linked(world: World, tally: _Tally, *, count: int, mix: dict[str, float], columns: Columns, key: str,
            people: Iterator[tuple[Person, str]], make_row: _RowMaker) -> list[dict[str, Any]]:
    """`count` rows of a linked dataset; `people` yields (person, "orphan" or "") for each."""
    rows: list[dict[str, Any]] = []
    for i in range(count):
        person, orphan = next(people)
        kind = orphan or world.rng.choices(list(mix), list(mix.values()))[0]
        row = make_row(world, person, kind)
        clean = dict(row)
        applied = KINDS[kind](world, person, row, columns)
        if applied is None:
            kind, applied = "copy", Applied(Verdict.MATCHED)
        if applied.outcome == Verdict.POSSIBLE:
            tally.links[str(row[key])] = person.personal_id
        row["updated_at"] = _updated_at(world, i, count)
        tally.add(str(row[key]), kind, applied, row if applied.kept else clean)
        rows.append(row)
    return rows


def _people(world: World, eligible: list[Person], orphans: list[Person]) -> Iterator[tuple[Person, str]]:
    """Registry people, the orphans spread among them (each once); strangers when nobody is eligible."""
    pending = list(orphans)
    while True:
        if pending and world.rng.random() < 0.05:
            yield pending.pop(), "orphan"
        elif eligible:
            yield world.rng.choice(eligible), ""
        else:
            yield world.person(), "orphan"


def _address(world: World, person: Person) -> str:
    ward, province = reference.ward_2025(person.ward_code), reference.province_2025(person.province_code)
    return f"{person.address_line}, {ward.name if ward else ''}, {province.name if province else ''}"


def _msisdn(world: World, person: Person, carrier: str, *, old_style: bool) -> str:
    """The person's own number if the carrier holds it and it is free, else a fresh number of the carrier."""
    own = world.mobile[person.phone[:3]]
    if own.carrier == carrier and person.phone not in world.used_msisdns and (own.legacy_prefix or not old_style):
        number = person.phone
    else:
        prefixes = world.old_style_prefixes[carrier] if old_style else world.prefixes[carrier]
        number = world.phones.draw(lambda: f"{world.rng.choice(prefixes)}{world.rng.randrange(10**7):07d}")
    world.used_msisdns.add(number)
    return number


def _subscriber_row(carrier: str) -> _RowMaker:
    def make(world: World, person: Person, kind: str) -> dict[str, Any]:
        msisdn = _msisdn(world, person, carrier, old_style=kind == "old_msisdn")
        address = _address(world, person) if world.rng.random() < 0.9 else None
        return {"msisdn": msisdn, "carrier": carrier, "subscriber_name": person.full_name,
                "id_number": person.personal_id, "birth_date": person.birth_date, "address": address}
    return make


def _region(province: str) -> str:
    """EVN's customer-code region letter: D Hà Nội, E Hồ Chí Minh City, A north, C centre, B south."""
    return {"01": "D", "79": "E"}.get(province) or ("A" if province <= "42" else "C" if province <= "68" else "B")


def _customer_row(serials: Unique) -> _RowMaker:
    def make(world: World, person: Person, kind: str) -> dict[str, Any]:
        rng = world.rng
        province = person.province_code
        code = serials.draw(lambda: f"P{_region(province)}{province}{rng.randrange(10**9):09d}")
        home = _address(world, person)
        meter = home
        if rng.random() < 0.2:  # a shop or a rented flat in the same province
            ward = rng.choice(reference.wards_2025(province))
            meter = f"Số {rng.randint(1, 300)} Đường {rng.randint(1, 40)}, {ward.name}, {home.rsplit(', ', 1)[-1]}"
        return {"customer_code": code, "holder_name": person.full_name, "id_number": person.personal_id,
                "birth_date": person.birth_date, "address": home, "meter_address": meter,
                "phone": person.phone if rng.random() < 0.9 else None, "province_code": province}
    return make


def _participant_row(serials: Unique) -> _RowMaker:
    def make(world: World, person: Person, kind: str) -> dict[str, Any]:
        code = serials.draw(lambda: f"{person.birth_province[1:]}{world.rng.randrange(10**8):08d}")
        return {"insurance_code": code, "full_name": person.full_name, "birth_date": person.birth_date,
                "sex": person.sex, "id_number": person.personal_id, "employer": world.rng.choice(_EMPLOYERS),
                "province_code": person.province_code}
    return make


_SHARED_VALUES = {
    SUBSCRIBER: ("msisdn", "carrier", "subscriber_name", "id_number", "birth_date", "address"),
    CUSTOMER: ("customer_code", "holder_name", "id_number", "birth_date", "address", "meter_address", "phone",
               "province_code"),
    PARTICIPANT: ("insurance_code", "full_name", "birth_date", "sex", "id_number", "employer", "province_code"),
}


def _subscribers(world: World, tally: _Tally, count: int, people: Iterator[tuple[Person, str]]) -> list[SourceTable]:
    rng = world.rng
    rows: dict[str, list[dict[str, Any]]] = {c: [] for c in _CARRIERS}
    shares = [share for _, _, share, _ in _CARRIERS.values()]
    mixes = {c: {**_SUBSCRIBER_MIX, **habits} for c, (_, _, _, habits) in _CARRIERS.items()}
    for _ in range(count):
        person, orphan = next(people)
        own = world.mobile[person.phone[:3]].carrier
        carrier = own if own in _CARRIERS and person.phone not in world.used_msisdns else rng.choices(
            list(_CARRIERS), shares)[0]
        rows[carrier] += _linked(world, tally, count=1, mix=mixes[carrier], columns=_SUBSCRIBER_COLUMNS, key="msisdn",
                                 people=iter([(person, orphan)]), make_row=_subscriber_row(carrier))
    for i, row in enumerate(r for c in _CARRIERS for r in rows[c]):  # spread over the history, table by table
        row["updated_at"] = _updated_at(world, i, count)
    return [SourceTable(table, SUBSCRIBER, system, rows[c]) for c, (table, system, _, _) in _CARRIERS.items()]


def generate_seed(records: int, *, seed: int = 7, today: date | None = None) -> Seed:
    """`records` citizens and the other datasets' tables about them, deterministic for a seed, with the truth."""
    world = World(Random(seed), today or date.today())
    people = [world.person() for _ in range(records)]
    citizens, held_back, citizen_rules, citizen_kinds = citizen_table(world, people)
    held = {p.personal_id for p in held_back}
    registered = [p for p in people if p.personal_id not in held]
    eligible = [p for p in registered if p.status == "ALIVE"]
    few = min(records, 5)

    tallies = {d: _Tally(d) for d in DATASETS}
    citizen = tallies[CITIZEN]
    citizen.kinds, citizen.rules = Counter(citizen_kinds), citizen_rules
    citizen.findings.update({rule: sum(citizen.kinds[k] for k in kinds) for rule, kinds in _CITIZEN_FINDINGS.items()})
    for row, person, kind in zip(citizens, people, citizen_kinds, strict=True):
        rejected = person.personal_id in held
        citizen.expected.append(Expected(CITIZEN, str(row["personal_id"]), QUARANTINED if rejected else CLEAN,
                                         kind if rejected else None, {}))

    events = tallies[EVENT]
    event_table: list[dict[str, Any]] = []
    count = max(records // 10, few)
    for i, ev in enumerate(event_rows(world, registered, count)):
        ev.row["updated_at"] = _updated_at(world, i, count)
        event_table.append(ev.row)
        applied = Applied(QUARANTINED if ev.rule else CLEAN, ev.rule, ev.findings)
        events.add(str(ev.row["event_code"]), ev.kind, applied, ev.clean)

    def orphans_of(dataset: str) -> list[Person]:
        return [p for p in held_back if world.rng.random() < _ORPHAN_SHARE[dataset]]

    tables = [SourceTable("citizen", CITIZEN, "population.csdlqg", citizens),
              SourceTable("population_event", EVENT, "population.csdlqg", event_table)]
    tables += _subscribers(world, tallies[SUBSCRIBER], records, _people(world, eligible, orphans_of(SUBSCRIBER)))
    quarter = max(records // 4, few)
    tables.append(SourceTable("evn_customer", CUSTOMER, "evn.cmis", _linked(
        world, tallies[CUSTOMER], count=quarter, mix=_CUSTOMER_MIX, columns=_CUSTOMER_COLUMNS, key="customer_code",
        people=_people(world, eligible, orphans_of(CUSTOMER)), make_row=_customer_row(Unique()))))
    tables.append(SourceTable("bhxh_participant", PARTICIPANT, "bhxh.csdl", _linked(
        world, tallies[PARTICIPANT], count=quarter, mix=_PARTICIPANT_MIX, columns=_PARTICIPANT_COLUMNS,
        key="insurance_code", people=_people(world, eligible, orphans_of(PARTICIPANT)),
        make_row=_participant_row(Unique()))))
    for d in LINKED:
        tallies[d].expected = [_shared(e, _SHARED_VALUES[d]) for e in tallies[d].expected]

    truth = SeedTruth(
        published={d: sum(len(t.rows) for t in tables if t.dataset == d) for d in DATASETS},
        quarantined={d: dict(t.rules) for d, t in tallies.items()},
        match={d: dict(tallies[d].verdicts) for d in LINKED},
        findings={d: dict(t.findings) for d, t in tallies.items()},
        injected={d: dict(t.kinds) for d, t in tallies.items()},
        links={d: tallies[d].links for d in LINKED},
        expected={d: t.expected for d, t in tallies.items()},
    )
    return Seed(tables, truth)


def _shared(expected: Expected, fields: tuple[str, ...]) -> Expected:
    if not expected.values:
        return expected
    return Expected(expected.dataset, expected.source_key, expected.outcome, expected.detail,
                    {f: expected.values.get(f) for f in fields})
