"""Labelled record-linkage data: a registry, noisy records about part of it, and the true links.

The registry is `gsp.tools.synth.population.World` people as the population registry holds them.
Records are what another system (a telecom operator, a ministry) holds: most describe a
registry person with realistic noise, the rest describe people the registry does not hold
(strangers drawn from the same name frequencies, so they share common family names, and a few
relatives of registry people: a sibling or a twin with another given name). Noise, each kind
drawn independently per record:

    name      typo, diacritics dropped, NFD, old/new tone placement (Hoà/Hòa, Thuỷ/Thủy),
              capitals or stray spaces, middle name left out
    date      day and month swapped, month/day order, year alone, year off by one, missing
    id        9-digit CMND, one-digit typo, two digits transposed, someone else's id, missing
    phone     11-digit number from before 2018, another number, missing, +84 and separators
    province  name from before the 2025 merger, another province (moved), missing

`write_linkage` writes left.csv (registry), right.csv (records) and links.csv (true pairs).
"""

from __future__ import annotations

import csv
import unicodedata
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from random import Random

from gsp.tools.synth import dirt
from gsp.tools.synth.names import fold_diacritics, full_name
from gsp.tools.synth.population import Person, World
from streams import reference

__all__ = ["LEFT_COLUMNS", "LINK_COLUMNS", "RIGHT_COLUMNS", "LinkageData", "generate_linkage", "write_linkage"]

LEFT_COLUMNS = ("personal_id", "full_name", "birth_date", "sex", "phone", "province_code", "status")
RIGHT_COLUMNS = ("record_id", "id_number", "subscriber_name", "birth_date", "msisdn", "province")
LINK_COLUMNS = ("record_id", "personal_id")
TODAY = date(2025, 9, 1)

# chance of each kind of noise in a record, drawn independently
_NAME = {"typo": 0.05, "no_diacritics": 0.10, "nfd": 0.05, "tone": 0.30, "messy": 0.05, "no_middle": 0.02}
_DATE = {"swap": 0.04, "year_only": 0.03, "wrong_year": 0.02, "missing": 0.01, "dmy": 0.25}
_ID = {"cmnd": 0.08, "typo": 0.02, "transposed": 0.02, "other": 0.02, "missing": 0.05, "spaced": 0.03}
_PHONE = {"old": 0.05, "other": 0.15, "missing": 0.10, "messy": 0.05}
_PROVINCE = {"legacy": 0.25, "moved": 0.05, "missing": 0.10}
_RELATIVES = 0.10  # share of non-matching records that are relatives of a registry person


@dataclass(frozen=True)
class LinkageData:
    registry: list[dict[str, str]]  # LEFT_COLUMNS
    records: list[dict[str, str]]  # RIGHT_COLUMNS
    links: list[tuple[str, str]]  # (record_id, personal_id) of every true pair


def _move_tone(token: str) -> str:
    """Old and new tone placement swapped in a final oa/oe/uy ("hòa" <-> "hoà"); else unchanged."""
    decomposed = unicodedata.normalize("NFD", token)
    tones = [c for c in decomposed if c in "\u0300\u0301\u0303\u0309\u0323"]
    base = "".join(c for c in decomposed if c not in tones)
    if len(tones) != 1 or not base.lower().endswith(("oa", "oe", "uy")):
        return token
    n = len(base)
    variants = [unicodedata.normalize("NFC", base[: p + 1] + tones[0] + base[p + 1:]) for p in (n - 2, n - 1)]
    return variants[1] if unicodedata.normalize("NFC", token) == variants[0] else variants[0]


def _typo(name: str, rng: Random) -> str:
    tokens = name.split()
    t = rng.randrange(len(tokens))
    word = tokens[t]
    at = rng.randrange(len(word))
    letter = rng.choice("abcdeghiklmnopqrstuvxy")
    op = rng.choice(("substitute", "delete", "insert", "transpose"))
    if op == "substitute":
        word = word[:at] + (letter.upper() if word[at].isupper() else letter) + word[at + 1:]
    elif op == "delete" and len(word) > 2:
        word = word[:at] + word[at + 1:]
    elif op == "transpose" and at + 1 < len(word):
        word = word[:at] + word[at + 1] + word[at] + word[at + 2:]
    else:
        word = word[: at + 1] + letter + word[at + 1:]
    tokens[t] = word
    return " ".join(tokens)


def _noisy_name(name: str, rng: Random) -> str:
    if rng.random() < _NAME["no_middle"] and len(name.split()) > 2:
        name = f"{name.split()[0]} {name.split()[-1]}"
    if rng.random() < _NAME["tone"]:
        name = " ".join(_move_tone(t) for t in name.split())
    if rng.random() < _NAME["typo"]:
        name = _typo(name, rng)
    if rng.random() < _NAME["no_diacritics"]:
        name = fold_diacritics(name)
    if rng.random() < _NAME["messy"]:
        name = dirt.messy_name(name, rng)
    if rng.random() < _NAME["nfd"]:
        name = unicodedata.normalize("NFD", name)
    return name


def _noisy_date(birth: str, rng: Random) -> str:
    roll = rng.random()
    if roll < _DATE["missing"]:
        return ""
    roll -= _DATE["missing"]
    if len(birth) == 4:
        return birth
    year, month, day = int(birth[:4]), int(birth[5:7]), int(birth[8:10])
    if roll < _DATE["swap"]:  # another system's month/day order
        return f"{month:02d}/{day:02d}/{year}"
    roll -= _DATE["swap"]
    if roll < _DATE["year_only"]:
        return f"{year}"
    roll -= _DATE["year_only"]
    if roll < _DATE["wrong_year"]:
        year += rng.choice((-1, 1))
        day = min(day, 28) if month == 2 else day
    elif roll - _DATE["wrong_year"] < _DATE["dmy"]:
        return dirt.day_month_year(f"{year:04d}-{month:02d}-{day:02d}", rng)
    return f"{year:04d}-{month:02d}-{day:02d}"


def _noisy_id(world: World, person: Person, rng: Random) -> str:
    roll, pid = rng.random(), person.personal_id
    for kind, share in _ID.items():
        if roll < share:
            break
        roll -= share
    else:
        return pid
    if kind == "cmnd":
        return f"{rng.randrange(10**9):09d}"
    if kind == "typo":
        at = rng.randrange(6, 12)
        return pid[:at] + rng.choice([d for d in "0123456789" if d != pid[at]]) + pid[at + 1:]
    if kind == "transposed":
        spots = [i for i in range(6, 11) if pid[i] != pid[i + 1]] or [6]
        at = rng.choice(spots)
        return pid[:at] + pid[at + 1] + pid[at] + pid[at + 2:]
    if kind == "other":
        return world.personal_id(rng.choice(world.legacy).id_prefix, person.sex, int(person.birth_date[:4]))
    return "" if kind == "missing" else dirt.spaced_id(pid)


def _noisy_phone(world: World, phone: str, rng: Random) -> str:
    roll = rng.random()
    if roll < _PHONE["missing"]:
        return ""
    if (roll := roll - _PHONE["missing"]) < _PHONE["other"]:
        return world.phone()
    if (roll := roll - _PHONE["other"]) < _PHONE["old"] and world.mobile[phone[:3]].legacy_prefix:
        return dirt.old_msisdn(phone)
    if roll - _PHONE["old"] < _PHONE["messy"]:
        return dirt.messy_phone(phone, rng)
    return phone


def _noisy_province(world: World, person: Person, rng: Random) -> str:
    roll = rng.random()
    if roll < _PROVINCE["missing"]:
        return ""
    code = person.province_code
    if (roll := roll - _PROVINCE["missing"]) < _PROVINCE["moved"]:
        code = rng.choice(world.provinces).code
    elif roll - _PROVINCE["moved"] < _PROVINCE["legacy"]:
        return rng.choice(reference.predecessors(code)).name
    province = reference.province_2025(code)
    return province.name if province and rng.random() < 0.8 else (province.official_name if province else "")


def _relative(world: World, person: Person, rng: Random) -> Person:
    """A sibling (or, one time in five, a twin) of a registry person: same family, another given name."""
    other = world.person()
    year = int(person.birth_date[:4])
    if rng.random() < 0.2:
        birth = person.birth_date
    else:
        year = min(max(1930, year + rng.choice((-1, 1)) * rng.randint(1, 12)), world.today.year - 1)
        birth = f"{year}{other.birth_date[4:]}" if len(other.birth_date) == 10 else f"{year}"
        birth = birth.replace("-02-29", "-02-28")
    family_middle = person.full_name.rsplit(" ", 1)[0]
    given = full_name(rng, other.sex, born=year, south=False).rsplit(" ", 1)[1]
    while given == person.full_name.rsplit(" ", 1)[1]:
        given = full_name(rng, other.sex, born=year, south=False).rsplit(" ", 1)[1]
    phone = person.phone if rng.random() < 0.2 else other.phone  # a household number, sometimes
    return Person(other.personal_id, f"{family_middle} {given}", birth, other.sex, other.birth_province,
                  person.province_code, other.ward_code, other.address_line, phone, other.status)


def _record(world: World, record_id: str, person: Person) -> dict[str, str]:
    rng = world.rng
    return {"record_id": record_id, "id_number": _noisy_id(world, person, rng),
            "subscriber_name": _noisy_name(person.full_name, rng), "birth_date": _noisy_date(person.birth_date, rng),
            "msisdn": _noisy_phone(world, person.phone, rng), "province": _noisy_province(world, person, rng)}


def generate_linkage(registry: int, *, records: int | None = None, match_share: float = 0.8, seed: int = 7,
                     today: date = TODAY) -> LinkageData:
    """`registry` people and `records` records (default: as many), `match_share` of them about a
    distinct registry person; deterministic for a seed."""
    world = World(Random(seed), today)
    rng = world.rng
    people = [world.person() for _ in range(registry)]
    left = [{"personal_id": p.personal_id, "full_name": p.full_name, "birth_date": p.birth_date, "sex": p.sex,
             "phone": p.phone, "province_code": p.province_code, "status": p.status} for p in people]
    wanted = registry if records is None else records
    matched = min(round(wanted * match_share), registry)
    subjects: list[tuple[Person, bool]] = [(p, True) for p in rng.sample(people, matched)]
    for _ in range(wanted - matched):
        stranger = world.person()
        subjects.append((_relative(world, rng.choice(people), rng) if rng.random() < _RELATIVES else stranger,
                         False))
    rng.shuffle(subjects)
    right, links = [], []
    for n, (person, is_match) in enumerate(subjects):
        record_id = f"r{n:08d}"
        right.append(_record(world, record_id, person))
        if is_match:
            links.append((record_id, person.personal_id))
    return LinkageData(left, right, links)


def write_linkage(data: LinkageData, directory: str | Path) -> tuple[Path, Path, Path]:
    """left.csv, right.csv and links.csv in `directory` (created if needed)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = (out / "left.csv", out / "right.csv", out / "links.csv")
    for path, columns, rows in ((paths[0], LEFT_COLUMNS, data.registry), (paths[1], RIGHT_COLUMNS, data.records)):
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    with paths[2].open("w", newline="", encoding="utf-8") as f:
        links = csv.writer(f)
        links.writerow(LINK_COLUMNS)
        links.writerows(data.links)
    return paths
