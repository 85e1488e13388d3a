"""The programme's three-field check: a record is verified when its personal id, full name and
birth date agree with the registry's entry for that id.

Names are compared as `streams.clean.name_key` compares them (NFC, case folded, tone placement
ignored); a name typed without diacritics disagrees here, and the matcher is what tells such a
typo from another person (see `streams.matching.decide`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from schemas.envelope import Verdict
from streams.clean import name_key

__all__ = ["THREE_FIELDS", "Check", "Entry", "Lookup", "check"]

# The registry fields the check compares, in the order a result names them.
THREE_FIELDS = ("personal_id", "full_name", "birth_date")
_PERSONAL_ID_DIGITS = 12  # a 9-digit CMND is not a registry key: only a search can find its holder

Entry = Mapping[str, Any]  # a registry entry as a worker holds it: name_key, birth_date, status, ...
Lookup = Callable[[str], Entry | None]  # personal id -> its registry entry, None when the registry has none


@dataclass(frozen=True, slots=True)
class Check:
    """The three-field check of one record."""

    verdict: Verdict  # MATCHED, MISMATCH or NOT_FOUND
    personal_id: str | None  # the id checked, None when NOT_FOUND
    agreeing: tuple[str, ...]
    disagreeing: tuple[str, ...]
    score: float  # share of the three fields that agree

    @property
    def found(self) -> bool:
        """The registry holds the record's id: the fields were compared."""
        return self.verdict is not Verdict.NOT_FOUND


_NOT_FOUND = Check(Verdict.NOT_FOUND, None, (), (), 0.0)


def check(personal_id: str, full_name: str, birth_date: str, lookup: Lookup) -> Check:
    """MATCHED when id, name and birth date agree; MISMATCH naming what differs; NOT_FOUND otherwise."""
    entry = lookup(personal_id) if len(personal_id) == _PERSONAL_ID_DIGITS else None
    if entry is None:
        return _NOT_FOUND
    agreeing = ["personal_id"]
    disagreeing: list[str] = []
    for field, same in (("full_name", name_key(full_name) == entry["name_key"]),
                        ("birth_date", birth_date == entry["birth_date"])):
        (agreeing if same else disagreeing).append(field)
    verdict = Verdict.MISMATCH if disagreeing else Verdict.MATCHED
    return Check(verdict, personal_id, tuple(agreeing), tuple(disagreeing), len(agreeing) / 3)
