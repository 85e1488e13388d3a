"""The one place a verdict is decided: a micro-batch of a linked dataset's cleaned records in,
per record its MatchResult and whether a steward should look.

1. The three-field check (`streams.matching.exact`) against the entry the record's id names:
   MATCHED or MISMATCH; NOT_FOUND when the registry has no entry for the id.
2. With a `Linker`, a MISMATCH is also scored against that entry, and an unknown id is searched
   for: POSSIBLE when someone is likely (at or above the model's review probability), else
   NO_MATCH. A search alone never says MATCHED. A likely pair goes to the review queue, unless
   a steward has decided it already: then the decision is applied (`decided_verdict`).

Field access comes from the dataset's declaration: its registry mapping says where the
personal id, full name and birth date are, and, with the model's settings (registry column ->
record column), how a record becomes the linkage record the model compares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.datasets import Dataset, FieldRef
from schemas.envelope import Verdict
from streams.linkage import Link
from streams.matching.exact import Check, Lookup, check
from streams.matching.linker import Linker

__all__ = ["Match", "Matcher", "decided_verdict"]

_ACCEPTED = "ACCEPTED"


def decided_verdict(proposed: str, decision: str) -> Verdict:
    """What a steward's decision makes of a proposed pair, in the worker and at the review desk alike:
    ACCEPTED -> MATCHED; REJECTED -> NO_MATCH for a searched proposal (POSSIBLE), and still MISMATCH
    for the entry of the record's own id."""
    if decision == _ACCEPTED:
        return Verdict.MATCHED
    return Verdict.NO_MATCH if proposed == Verdict.POSSIBLE else Verdict(proposed)


@dataclass(frozen=True, slots=True)
class Match:
    """One record's outcome."""

    result: dict[str, Any]  # the MatchResult, all but "record" (the stage adds the record's bytes)
    review: bool  # a likely pair no steward has decided yet: to the review queue too
    check: Check  # the three-field check it started from (quality counts its agreement)

    @property
    def verdict(self) -> Verdict:
        return Verdict(self.result["verdict"])


class Matcher:
    """Decides the verdicts of one linked dataset's records."""

    def __init__(self, dataset: Dataset, *, linker: Linker | None = None) -> None:
        self.dataset = dataset
        self.linker = linker
        self._personal_id, self._full_name, self._birth_date = (
            dataset.registry[f] for f in ("personal_id", "full_name", "birth_date"))
        self._columns: tuple[tuple[str, FieldRef | None], ...] = ()
        self._record_id = ""
        if linker is not None:
            settings = linker.model.settings
            # Registry column (the settings' left side) -> where the dataset declares that registry field.
            self._columns = tuple((f.right, dataset.registry.get(f.left)) for f in settings.fields)
            self._record_id = settings.unique_id_right

    def linkage_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The columns the model compares (its settings' right-hand side), from one cleaned record."""
        out: dict[str, Any] = {self._record_id: record["header"]["source_key"]}
        for column, ref in self._columns:
            out[column] = ref.value(record) if ref is not None else None
        return out

    def match(self, records: Sequence[Mapping[str, Any]], lookup: Lookup) -> list[Match]:
        """Each record's outcome, in order; `lookup` gives the registry entry of a personal id."""
        checks = [check(self._personal_id.value(r), self._full_name.value(r), self._birth_date.value(r), lookup)
                  for r in records]
        results = [self._result(r, c) for r, c in zip(records, checks, strict=True)]
        review = [False] * len(records)
        if self.linker is not None:
            self._link(self.linker, records, checks, results, review)
        return [Match(result, to_review, c) for result, to_review, c in zip(results, review, checks, strict=True)]

    def _result(self, record: Mapping[str, Any], c: Check) -> dict[str, Any]:
        header = record["header"]
        return {
            "header": header, "dataset": self.dataset.name, "source_key": header["source_key"], "verdict": c.verdict,
            "personal_id": c.personal_id, "agreeing_fields": list(c.agreeing), "disagreeing_fields": list(c.disagreeing),
            "score": c.score, "method": "exact", "probability": None, "levels": {},
        }

    def _link(self, linker: Linker, records: Sequence[Mapping[str, Any]], checks: list[Check],
              results: list[dict[str, Any]], review: list[bool]) -> None:
        mismatched = [i for i, c in enumerate(checks) if c.verdict is Verdict.MISMATCH]
        unknown = [i for i, c in enumerate(checks) if c.verdict is Verdict.NOT_FOUND]
        links: dict[int, Link | None] = {}
        if mismatched:
            links.update(zip(mismatched, linker.pair([self.linkage_record(records[i]) for i in mismatched],
                                                     [checks[i].personal_id for i in mismatched]), strict=True))
        if unknown:
            links.update(zip(unknown, linker.search([self.linkage_record(records[i]) for i in unknown]), strict=True))
        for i, link in links.items():
            if link is None:
                continue
            result = results[i]
            result.update(probability=link.match_probability, levels=dict(link.levels))
            likely = link.personal_id is not None and link.match_probability >= linker.review_probability
            if checks[i].verdict is Verdict.NOT_FOUND:
                result.update(method="search", score=link.match_weight,
                              verdict=Verdict.POSSIBLE if likely else Verdict.NO_MATCH,
                              personal_id=link.personal_id if likely else None,
                              agreeing_fields=[c for c, level in link.levels if level not in ("null", "else")],
                              disagreeing_fields=[c for c, level in link.levels if level == "else"])
            if not likely or link.personal_id is None:
                continue
            decided = linker.decision(self.dataset.name, result["source_key"], link.personal_id)
            if decided is None:
                review[i] = True
                continue
            verdict = decided_verdict(result["verdict"], decided)
            result.update(verdict=verdict, method="review",
                          personal_id=None if verdict is Verdict.NO_MATCH else link.personal_id)
