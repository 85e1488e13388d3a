"""The synthetic population: people as they truly are, with unique ids and phone numbers.

Birth registration provinces are weighted towards the big cities; residence is usually the
2025 successor of the birth province; ids follow the 12-digit structure (prefix, century and
sex digit, two-digit year, six random digits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from random import Random

from gsp.tools.synth import dirt, names
from streams import reference

__all__ = ["Person", "Unique", "World"]

_OLDEST, _YOUNGEST = 1930, 2015
_BIRTHS_WEIGHT = {"001": 6.0, "079": 6.0, "038": 2.5, "040": 2.5, "031": 1.5, "048": 1.2, "092": 1.2}
_CARRIER_SHARE = {"Viettel": 52.0, "VinaPhone": 22.0, "MobiFone": 20.0, "Vietnamobile": 4.0, "Gmobile": 2.0}
_STREETS = ("Lê Lợi", "Trần Hưng Đạo", "Nguyễn Trãi", "Hai Bà Trưng", "Quang Trung", "Lý Thường Kiệt",
            "Hùng Vương", "Nguyễn Huệ", "Phan Chu Trinh", "Điện Biên Phủ", "Lê Duẩn", "Võ Thị Sáu")


@dataclass(frozen=True, slots=True)
class Person:
    """What is true about one citizen, before any source system got it wrong."""

    personal_id: str
    full_name: str
    birth_date: str  # ISO date, or the year alone
    sex: str
    birth_province: str  # pre-2025 id prefix
    province_code: str  # 2025 residence
    ward_code: str
    address_line: str
    phone: str
    status: str


class Unique:
    """Draws values that were never drawn before (personal ids, phone numbers)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def draw(self, make: Callable[[], str]) -> str:
        while (value := make()) in self._seen:
            pass
        self._seen.add(value)
        return value

    def claim(self, value: str) -> bool:
        """Take `value` if nobody has it yet."""
        if value in self._seen:
            return False
        self._seen.add(value)
        return True


class World:
    def __init__(self, rng: Random, today: date) -> None:
        self.rng, self.today = rng, today
        self.ids, self.phones = Unique(), Unique()
        self.legacy = reference.legacy_provinces()
        self.legacy_weights = [_BIRTHS_WEIGHT.get(p.id_prefix, 1.0) for p in self.legacy]
        self.provinces = reference.provinces_2025()
        self.carriers = list(_CARRIER_SHARE)
        self.mobile = {m.prefix: m for m in reference.mobile_prefixes()}
        self.prefixes = {c: [m.prefix for m in self.mobile.values() if m.carrier == c] for c in self.carriers}
        self.old_style_prefixes = {c: [p for p in self.prefixes[c] if self.mobile[p].legacy_prefix]
                                   for c in self.carriers}
        self.used_msisdns: set[str] = set()

    def personal_id(self, prefix: str, sex: str, year: int) -> str:
        lead = f"{prefix}{dirt.century_digit(sex, year)}{year % 100:02d}"
        return self.ids.draw(lambda: f"{lead}{self.rng.randrange(10**6):06d}")

    def phone(self, *, old_style: bool = False) -> str:
        carrier = self.rng.choices(self.carriers, list(_CARRIER_SHARE.values()))[0]
        prefixes = (self.old_style_prefixes if old_style else self.prefixes)[carrier]
        return self.phones.draw(lambda: f"{self.rng.choice(prefixes)}{self.rng.randrange(10**7):07d}")

    def person(self) -> Person:
        rng = self.rng
        sex = rng.choice(("MALE", "FEMALE"))
        year = min(int(rng.triangular(_OLDEST, _YOUNGEST + 1, 1990)), _YOUNGEST, self.today.year - 1)
        if year < 1960 and rng.random() < 0.2:  # older registrations often hold the year only
            birth = f"{year}"
        else:
            days = (date(year + 1, 1, 1) - date(year, 1, 1)).days
            birth = (date(year, 1, 1) + timedelta(days=rng.randrange(days))).isoformat()
        born_in = rng.choices(self.legacy, self.legacy_weights)[0]
        home = born_in.successor if rng.random() < 0.88 else rng.choice(self.provinces).code
        ward = rng.choice(reference.wards_2025(home))
        if ward.name.startswith("Phường"):
            address = f"Số {rng.randint(1, 250)} {rng.choice(_STREETS)}"
        else:
            address = f"{'Ấp' if home >= '75' else 'Thôn'} {rng.randint(1, 15)}"  # 75+: the south
        deceased = rng.random() < (0.15 if year < 1950 else 0.01)
        return Person(
            self.personal_id(born_in.id_prefix, sex, year),
            names.full_name(rng, sex, born=year, south=born_in.id_prefix >= "049"),
            birth, sex, born_in.id_prefix, home, ward.code, address, self.phone(),
            "DECEASED" if deceased else "ALIVE",
        )

    def msisdn(self, person: Person, *, old_style: bool = False) -> str:
        """The person's own number for their first subscription, a fresh one afterwards."""
        own = person.phone
        if own in self.used_msisdns or (old_style and self.mobile[own[:3]].legacy_prefix is None):
            own = self.phone(old_style=old_style)
        self.used_msisdns.add(own)
        return own

    def carrier(self, msisdn: str) -> str:
        allocated = self.mobile[msisdn[:3]].carrier
        if self.rng.random() < 0.04:  # ported since 2018: the prefix is only a hint
            return self.rng.choice([c for c in self.carriers if c != allocated])
        return allocated
