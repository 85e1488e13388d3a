"""Data quality by the programme's yardstick, "đúng, đủ, sạch, sống": correct, complete, clean, live.

Pure: no Faust or Kafka import. A :class:`QualityTally` counts checks and
failures per (field, dimension) for one dataset as records pass the stages:

- correct (đúng): a field passes when no rule rejected or warned about it,
  and, where matching tells, when it agrees with the population registry;
- complete (đủ): required and expected fields are present (not null or empty);
  rows the connector quarantined for a NULL in a required column count here;
- clean (sạch): the record is not a duplicate of one already seen for its key,
  does not conflict with it (same key and version, different content), and was
  not quarantined;
- live (sống): the source's ``updated_at`` is within the dataset's freshness
  window, and a shared record reached its subscriber within the delivery window.

A score is 1 - failures / checks over all cells of a dimension. Tallies are
cumulative; the control plane sums the latest tally of every worker.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from schemas.datasets import Dataset

__all__ = ["DIMENSIONS", "QualityProfile", "QualityTally", "merge", "scores", "worst_fields"]

DIMENSIONS = ("correct", "complete", "clean", "live")
_DAY = 86_400.0


@dataclass(frozen=True)
class QualityProfile:
    dataset: str
    key_field: str
    required: tuple[str, ...]
    expected: tuple[str, ...] = ()
    freshness_s: float = 365 * _DAY           # older updated_at counts as not live
    delivery_s: float = 60.0                  # a shared record later than this counts as not live
    registry_fields: dict[str, str] = field(default_factory=dict)  # registry field name -> dataset field path

    @classmethod
    def of(cls, dataset: Dataset) -> QualityProfile:
        """The profile a dataset declares: its quality section, its key, its registry mapping."""
        q = dataset.quality
        return cls(dataset.name, dataset.key, required=q.required, expected=q.expected, freshness_s=q.freshness_s,
                   delivery_s=q.delivery_s, registry_fields={name: ref.path for name, ref in dataset.registry.items()})


def _value(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


class QualityTally:
    def __init__(self, profile: QualityProfile) -> None:
        self.profile = profile
        self.records = 0
        self.cells: Counter[tuple[str, str, str]] = Counter()   # (field, dimension, "checks"|"failures")
        self.rules: Counter[str] = Counter()
        self._seen: dict[str, tuple[str, int]] = {}              # key -> (content hash, updated_at)

    @classmethod
    def for_dataset(cls, dataset: Dataset) -> QualityTally:
        """An empty tally of a declared dataset."""
        return cls(QualityProfile.of(dataset))

    def _check(self, name: str, dimension: str, ok: bool) -> None:
        self.cells[(name, dimension, "checks")] += 1
        if not ok:
            self.cells[(name, dimension, "failures")] += 1

    def observe_clean(self, record: dict[str, Any], findings: Iterable[Any], *, rejected: bool, now_s: float) -> None:
        """One record through the clean stage (rejected or not), with its findings."""
        p = self.profile
        self.records += 1
        flagged = set()
        for finding in findings:
            self.rules[finding.rule] += 1
            if finding.severity in ("reject", "warn"):
                flagged.add(finding.field)
        for name in (*p.required, *p.expected):
            value = _value(record, name)
            self._check(name, "complete", value not in (None, ""))
            if name in p.required or value not in (None, ""):
                self._check(name, "correct", name not in flagged and name.split(".")[0] not in flagged)
        self._check("record", "clean", not rejected)
        self._observe_duplicates(record)
        updated_at = record.get("updated_at")
        if isinstance(updated_at, int):
            self._check("updated_at", "live", now_s - updated_at / 1000 <= p.freshness_s)

    def _observe_duplicates(self, record: dict[str, Any]) -> None:
        key = _value(record, self.profile.key_field)
        if key in (None, ""):
            return
        body = {k: v for k, v in record.items() if k != "header"}
        digest = hashlib.blake2b(json.dumps(body, sort_keys=True, default=str).encode(), digest_size=8).hexdigest()
        version = int(record.get("updated_at") or 0)
        previous = self._seen.get(str(key))
        self._check("record", "clean", previous is None or previous[0] != digest)        # duplicate
        self._check(self.profile.key_field, "clean",
                    previous is None or previous[1] != version or previous[0] == digest)  # conflict
        self._seen[str(key)] = (digest, version)

    def observe_connector_issue(self, rule: str, field_name: str | None) -> None:
        """A row the connector quarantined before any stage saw it."""
        self.records += 1
        self.rules[rule] += 1
        if rule == "schema.required" and field_name:
            self._check(field_name, "complete", False)
        self._check("record", "clean", False)

    def observe_match(self, agreeing: Iterable[str], disagreeing: Iterable[str]) -> None:
        names = self.profile.registry_fields
        for match_field in agreeing:
            self._check(names.get(match_field, match_field), "correct", True)
        for match_field in disagreeing:
            self._check(names.get(match_field, match_field), "correct", False)

    def observe_delivery(self, latency_s: float) -> None:
        self._check("delivery", "live", latency_s <= self.profile.delivery_s)

    def snapshot_cells(self) -> list[dict[str, Any]]:
        names = sorted({(f, d) for f, d, _ in self.cells})
        return [{"field": f, "dimension": d, "checks": self.cells[(f, d, "checks")],
                 "failures": self.cells[(f, d, "failures")]} for f, d in names]


def merge(snapshots: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Sum several workers' snapshots of one dataset."""
    cells: Counter[tuple[str, str, str]] = Counter()
    rules: Counter[str] = Counter()
    records = 0
    for s in snapshots:
        records += s["records"]
        rules.update(s["rules"])
        for c in s["cells"]:
            cells[(c["field"], c["dimension"], "checks")] += c["checks"]
            cells[(c["field"], c["dimension"], "failures")] += c["failures"]
    names = sorted({(f, d) for f, d, _ in cells})
    return {"records": records, "rules": dict(rules),
            "cells": [{"field": f, "dimension": d, "checks": cells[(f, d, "checks")],
                       "failures": cells[(f, d, "failures")]} for f, d in names]}


def scores(cells: Iterable[dict[str, Any]]) -> dict[str, float | None]:
    """Score in [0, 1] per dimension; None where nothing was checked."""
    checks: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for c in cells:
        checks[c["dimension"]] += c["checks"]
        failures[c["dimension"]] += c["failures"]
    return {d: (round(1 - failures[d] / checks[d], 6) if checks[d] else None) for d in DIMENSIONS}


def worst_fields(cells: Iterable[dict[str, Any]], limit: int = 5) -> list[dict[str, Any]]:
    failing = [dict(c, rate=round(c["failures"] / c["checks"], 6)) for c in cells if c["failures"]]
    return sorted(failing, key=lambda c: (-c["failures"], c["field"]))[:limit]
