"""clean.<linked dataset> -> match.<dataset> (+ review.<dataset> for stewards) | quarantine.<dataset>."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from schemas import topics
from schemas.codec import Codec
from schemas.datasets import Dataset
from schemas.envelope import Verdict
from streams.matching import Linker, Lookup, Matcher
from streams.quality import QualityTally
from streams.stages.base import Out, Unreadable, Where, quarantine, read_record

__all__ = ["MatchStage"]

log = logging.getLogger("gsp.streams")


class MatchStage:
    """clean.<dataset> -> match.<dataset>, and review.<dataset> for a pair a steward should decide.

    Decodes a micro-batch, asks `streams.matching.Matcher` for each record's verdict and encodes
    its MatchResult, the record's own bytes inside. ``lookup`` is the registry: personal id ->
    entry (the worker's replica, or the registry table when the matcher is off). Input that is not
    a record of the dataset's contract goes to quarantine.<dataset> (verdict None) when
    ``issue_schema_id`` is given, and is logged and skipped otherwise (a benchmark's stage).
    """

    def __init__(self, codec: Codec, dataset: Dataset, *, result_schema_id: int, lookup: Lookup,
                 linker: Linker | None = None, tally: QualityTally | None = None,
                 issue_schema_id: int | None = None) -> None:
        self.dataset = dataset.name
        self.matcher = Matcher(dataset, linker=linker)
        self.topic = topics.match(dataset.name)
        self.review_topic = topics.review(dataset.name)
        self.quarantine_topic = topics.quarantine(dataset.name)
        self._contract = dataset.contract
        self._codec = codec
        self._lookup = lookup
        self._tally = tally
        self._result_schema_id = result_schema_id
        self._issue_schema_id = issue_schema_id

    def process(self, value: bytes | None, where: Where | None = None) -> tuple[list[Out], Verdict | None]:
        """One record's events and verdict (the batch path, for a batch of one)."""
        return self.process_batch([value], None if where is None else [where])[0]

    def process_batch(self, values: Sequence[bytes | None],
                      wheres: Sequence[Where] | None = None) -> list[tuple[list[Out], Verdict | None]]:
        """(events to send, verdict) per clean record, in order; verdict None for a record held back.

        ``wheres``: where each value was read, for the quarantine events of those that cannot be matched."""
        places = wheres or [Where(topics.clean(self.dataset), -1, -1)] * len(values)
        out: list[tuple[list[Out], Verdict | None]] = [([], None)] * len(values)
        readable: list[tuple[int, dict[str, Any]]] = []
        for at, (value, where) in enumerate(zip(values, places, strict=True)):
            try:
                readable.append((at, read_record(self._codec, value, dataset=self.dataset, contract=self._contract)))
            except Unreadable as exc:
                out[at] = (self._hold_back(value, exc, where), None)
        matches = self.matcher.match([record for _, record in readable], self._lookup)
        encode = self._codec.encode
        for (at, _), match in zip(readable, matches, strict=True):
            if self._tally is not None and match.check.found:
                self._tally.observe_match(match.check.agreeing, match.check.disagreeing)
            result = match.result
            result["record"] = values[at]
            key, encoded = result["source_key"].encode(), encode(self._result_schema_id, result)
            events = [(self.topic, key, encoded)]
            if match.review:
                events.append((self.review_topic, key, encoded))
            out[at] = (events, match.verdict)
        return out

    def _hold_back(self, value: bytes | None, exc: Unreadable, where: Where) -> list[Out]:
        if self._issue_schema_id is None:
            log.error("unreadable record skipped", extra={"stage": "match", "dataset": self.dataset, "rule": exc.rule,
                                                          "error": str(exc)[:200]})
            return []
        return [quarantine(self._codec, self._issue_schema_id, dataset=self.dataset, stage="match", header=None,
                           key=None, rule=exc.rule, field=None, reason=str(exc), original=value or b"", where=where)]
