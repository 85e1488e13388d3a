"""Three-field verification of a record against the population registry.

The telecom check the programme ran: a subscription is verified when id
number, full name and birth date all agree with the registry. Pure: no Faust
or Kafka import; the registry entry is a plain dict built by
:func:`registry_entry` from a cleaned citizen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.clean import name_key

__all__ = ["Verification", "registry_entry", "verify"]

MATCHED, MISMATCH, NOT_FOUND = "MATCHED", "MISMATCH", "NOT_FOUND"


@dataclass(frozen=True, slots=True)
class Verification:
    verdict: str
    personal_id: str | None
    agreeing: tuple[str, ...]
    disagreeing: tuple[str, ...]
    score: float


def registry_entry(citizen: dict[str, Any]) -> dict[str, Any]:
    """What the match stage keeps per citizen: the fields the exact check and the matcher compare, plus status."""
    return {
        "name_key": name_key(citizen["full_name"]),
        "full_name": citizen["full_name"],
        "birth_date": citizen["birth_date"],
        "phone": citizen.get("phone"),
        "status": citizen["status"],
        "province_code": citizen["residence"]["province_code"],
    }


def verify(id_number: str, full_name: str, birth_date: str, entry: dict[str, Any] | None) -> Verification:
    """MATCHED when id, name and birth date agree; MISMATCH naming what differs; NOT_FOUND otherwise.

    A 9-digit legacy id cannot be looked up in a registry keyed by personal id,
    so it is NOT_FOUND here; probabilistic search is what finds those.
    """
    if entry is None or len(id_number) != 12:
        return Verification(NOT_FOUND, None, (), (), 0.0)
    agreeing = ["personal_id"]
    disagreeing: list[str] = []
    for field, same in (("full_name", name_key(full_name) == entry["name_key"]),
                        ("birth_date", birth_date == entry["birth_date"])):
        (agreeing if same else disagreeing).append(field)
    verdict = MISMATCH if disagreeing else MATCHED
    return Verification(verdict, id_number, tuple(agreeing), tuple(disagreeing), len(agreeing) / 3)
