"""What every rule reports through: findings, the cleaned record, and the check of one field.

A field type (`FieldType`) is one check function and the rules it can report. The contract of a
dataset decides which of those rules run on which field, and with which severity:

- ``reject``: the record goes to quarantine (the first rejecting finding names the reason);
- ``fix``: the value is corrected, the finding keeps the rule and the original value;
- ``warn``: the value passes as given, with the finding.

A check function never decides severities: it calls `Check.flag` for a problem and `Check.fix`
for a correction it could make; `Check` applies the contract.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

__all__ = ["FIX", "REJECT", "SEVERITIES", "WARN", "Check", "Cleaned", "Context", "FieldType", "Finding", "Rule"]

REJECT = "reject"
FIX = "fix"
WARN = "warn"
SEVERITIES = (REJECT, FIX, WARN)


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str  # "id.prefix"
    field: str  # "personal_id", or a dotted path: "residence.province_code"
    severity: str  # "reject" | "fix" | "warn"
    reason: str  # one line for a data steward; never a person's full value
    original: str | None = None  # the value before a fix; None for "reject" and "warn"


@dataclass(frozen=True, slots=True)
class Cleaned:
    record: dict[str, Any]
    findings: tuple[Finding, ...]
    enriched: dict[str, Any] = field(default_factory=dict)  # enrichment name -> value, as the contract asks

    @property
    def rejection(self) -> Finding | None:
        """The first finding that rejects the record, or None when it passes."""
        return next((f for f in self.findings if f.severity == REJECT), None)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str  # "id.prefix"
    doc: str  # what it finds, one line
    source: str  # the law, circular or decision it rests on
    fixes: bool = False  # can correct the value, so "fix" is an allowed severity


@dataclass(slots=True)
class Context:
    """The record around a field: linked fields, parsed dates, and the day cleaning runs."""

    record: dict[str, Any]
    today: date
    links: Mapping[str, str]  # link name ("birth_date") -> field path in the record
    birth_years: Mapping[str, int | None]  # date field path -> year it parses to, None when invalid
    declared: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # field path -> its rule severities

    def linked(self, name: str) -> Any:
        """The current value of a linked field, or None when the contract names none."""
        path = self.links.get(name)
        return None if path is None else lookup(self.record, path)

    def reports(self, name: str, rule: str) -> bool:
        """True when the contract runs `rule` on the linked field: that field's check speaks for its value."""
        path = self.links.get(name)
        return path is not None and rule in self.declared.get(path, {})

    def birth_year(self, name: str = "birth_date") -> int | None:
        path = self.links.get(name)
        return None if path is None else self.birth_years.get(path)


class Check:
    """One field of one record under its contract: the value and the severities declared for it."""

    __slots__ = ("_enrich", "_severities", "enriched", "field", "findings", "formats", "required", "value")

    def __init__(self, field_path: str, value: Any, severities: Mapping[str, str], *, required: bool = False,
                 enrich: frozenset[str] = frozenset(), formats: tuple[str, ...] = ()) -> None:
        self.field = field_path
        self.value = value
        self.required = required  # the contract's presence "required": absence is a finding of the field's rules
        self.formats = formats  # the contract's "format" for the field: strptime or regex, as its type reads them
        self.findings: list[Finding] = []
        self.enriched: dict[str, Any] = {}
        self._severities = severities
        self._enrich = enrich

    def wants(self, rule: str) -> bool:
        """True when the contract declares `rule` for this field."""
        return rule in self._severities

    def flag(self, rule: str, reason: str) -> None:
        """Report a problem; ignored unless the contract declares the rule."""
        severity = self._severities.get(rule)
        if severity is not None:
            self.findings.append(Finding(rule, self.field, severity, reason))

    def fix(self, rule: str, reason: str, fixed: Any) -> bool:
        """Report a correction; the value changes only when the contract declares it a fix."""
        severity = self._severities.get(rule)
        if severity is None:
            return False
        if severity != FIX:
            self.findings.append(Finding(rule, self.field, severity, reason))
            return False
        original = self.value if isinstance(self.value, str) or self.value is None else str(self.value)
        self.findings.append(Finding(rule, self.field, FIX, reason, original))
        self.value = fixed
        return True

    def wants_enrichment(self, name: str) -> bool:
        return name in self._enrich

    def enrich(self, name: str, value: Any) -> None:
        if name in self._enrich:
            self.enriched[name] = value


@dataclass(frozen=True, slots=True)
class FieldType:
    """A kind of field ("personal_id", "phone", ...): its check, the rules it reports, what it may read."""

    name: str
    check: Callable[[Check, Context], None]
    rules: tuple[Rule, ...]
    links: tuple[str, ...] = ()  # other fields the check may read, named in the contract
    enrichments: tuple[str, ...] = ()  # values the check can add to `Cleaned.enriched`
    # Why a declared "format" is unusable ("" when it is usable); None when the type takes no "format".
    format_problem: Callable[[str], str] | None = None
    needs_format: bool = False  # a field of this type must declare a "format"

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


def lookup(record: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path ("residence.ward_code"), None when any step is missing."""
    value: Any = record
    for step in path.split("."):
        if not isinstance(value, dict):  # records are dicts; `dict` is much cheaper to test than Mapping
            return None
        value = value.get(step)
    return value
