"""clean.<linked dataset> -> match.<dataset> (+ review.<dataset> for stewards)."""

from __future__ import annotations

from schemas import topics
from schemas.codec import Codec
from schemas.datasets import Dataset
from schemas.envelope import Verdict
from streams.matching import Linker, Lookup, Matcher
from streams.quality import QualityTally
from streams.stages.base import Out

__all__ = ["MatchStage"]


class MatchStage:
    """clean.<dataset> -> match.<dataset>, and review.<dataset> for a pair a steward should decide.

    Decodes a micro-batch, asks `streams.matching.Matcher` for each record's verdict and encodes
    its MatchResult, the record's own bytes inside. ``lookup`` is the registry: personal id ->
    entry (the worker's replica, or the registry table when the matcher is off).
    """

    def __init__(self, codec: Codec, dataset: Dataset, *, result_schema_id: int, lookup: Lookup,
                 linker: Linker | None = None, tally: QualityTally | None = None) -> None:
        self.dataset = dataset.name
        self.matcher = Matcher(dataset, linker=linker)
        self.topic = topics.match(dataset.name)
        self.review_topic = topics.review(dataset.name)
        self._codec = codec
        self._lookup = lookup
        self._tally = tally
        self._result_schema_id = result_schema_id

    def process(self, value: bytes) -> tuple[list[Out], Verdict]:
        """One record's events and verdict (the batch path, for a batch of one)."""
        return self.process_batch([value])[0]

    def process_batch(self, values: list[bytes]) -> list[tuple[list[Out], Verdict]]:
        """(events to send, verdict) per clean record, in order."""
        decode, encode = self._codec.decode, self._codec.encode
        records = [decode(value)[1] for value in values]
        out: list[tuple[list[Out], Verdict]] = []
        for value, match in zip(values, self.matcher.match(records, self._lookup), strict=True):
            if self._tally is not None and match.check.found:
                self._tally.observe_match(match.check.agreeing, match.check.disagreeing)
            result = match.result
            result["record"] = value
            key, encoded = result["source_key"].encode(), encode(self._result_schema_id, result)
            events = [(self.topic, key, encoded)]
            if match.review:
                events.append((self.review_topic, key, encoded))
            out.append((events, match.verdict))
        return out
