"""A dataset's contract as a value, and how it cleans one record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from streams.rules import FIX, Cleaned, FieldType, Finding, parse_date
from streams.rules.base import Check, Context, lookup

__all__ = ["PRESENCES", "Contract", "FieldSpec"]

PRESENCES = ("required", "expected", "optional")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a contract: what it is, whether it must be there, which rules run on it."""

    path: str  # "residence.ward_code"
    type: FieldType | None  # None: only its presence is declared
    presence: str  # "required": absence is a finding of its rules; "expected": counted for completeness
    severities: Mapping[str, str]  # rule id -> "reject" | "fix" | "warn"
    links: Mapping[str, str]  # link name -> field path ("birth_date" -> "birth_date")
    enrich: frozenset[str]  # enrichments asked for ("id.birth_province")
    format: tuple[str, ...] = ()  # the source's own form, as the type reads it: strptime ("%Y%m%d") or regex


@dataclass(frozen=True, slots=True)
class Contract:
    """The cleaning contract of one dataset: the ``cleaning`` section of ``schemas/datasets/<dataset>.json``."""

    dataset: str  # "population.citizen"
    version: int
    schema: str  # the Avro record the fields belong to: "vn.gsp.population.Citizen"
    doc: str
    fields: tuple[FieldSpec, ...]  # in the order their findings are reported

    def field(self, path: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.path == path), None)

    def rules(self) -> tuple[tuple[str, str, str], ...]:
        """(field, rule id, severity) for every rule the contract applies, in order."""
        return tuple((f.path, rule, severity) for f in self.fields for rule, severity in f.severities.items())

    def missing(self, record: Mapping[str, Any]) -> tuple[str, ...]:
        """Required and expected fields that are absent, null or blank in `record` (for completeness)."""
        return tuple(f.path for f in self.fields if f.presence != "optional" and _absent(lookup(record, f.path)))

    def clean(self, record: Mapping[str, Any], *, today: date | None = None) -> Cleaned:
        """Apply every declared rule to a copy of `record`; never raises on any value in it."""
        day = today or date.today()
        copy = _copy(record)
        years = {f.path: _birth_year(f, copy, day) for f in self.fields if f.type is not None and f.type.name == "date"}
        findings: list[Finding] = []
        enriched: dict[str, Any] = {}
        context = Context(copy, day, {}, years, {f.path: f.severities for f in self.fields})
        for spec in self.fields:
            if spec.type is None:
                continue
            value = lookup(copy, spec.path)
            check = Check(spec.path, value, spec.severities, required=spec.presence == "required",
                          enrich=spec.enrich, formats=spec.format)
            context.links = spec.links
            spec.type.check(check, context)
            if check.value != value or type(check.value) is not type(value):
                _assign(copy, spec.path, check.value)
            findings.extend(check.findings)
            enriched.update(check.enriched)
        return Cleaned(copy, tuple(findings), enriched)


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _birth_year(spec: FieldSpec, record: dict[str, Any], today: date) -> int | None:
    parsed = parse_date(lookup(record, spec.path), today=today, formats=spec.format)
    if parsed.iso is None or (parsed.swapped and spec.severities.get("date.swapped") != FIX):
        return None
    return parsed.year


def _copy(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, dict) else v for k, v in record.items()}


def _assign(record: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target: Any = record
    for step in parents:
        target = target.get(step) if isinstance(target, dict) else None
    if isinstance(target, dict):
        target[last] = value
