"""clean.<linked dataset> -> match.<dataset> (+ review.<dataset> for stewards)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from schemas import topics
from schemas.codec import Codec
from streams import match as matching
from streams.linkage import NO_MATCH, POSSIBLE, Link
from streams.linking import Linker, decided_verdict
from streams.quality import QualityTally
from streams.stages.base import Out

__all__ = ["MatchStage"]


class MatchStage:
    """clean.telecom.subscriber -> match.telecom.subscriber (+ review.telecom.subscriber for stewards).

    A subscriber whose id the registry table holds gets the three-field check: MATCHED or
    MISMATCH. With a `Linker`, a MISMATCH is also scored against that entry, and one likely
    to be the same person (a typo, a name without diacritics) goes to the review queue; a
    subscriber whose id the registry does not hold is searched for: POSSIBLE (review queue)
    when someone likely is found, else NO_MATCH. A steward's earlier decision on the pair is
    applied instead of asking again. Without a linker an unknown id is NOT_FOUND.
    """

    dataset = "telecom.subscriber"

    def __init__(self, codec: Codec, *, result_schema_id: int, tally: QualityTally | None = None,
                 linker: Linker | None = None) -> None:
        self._codec = codec
        self._tally = tally
        self._result_schema_id = result_schema_id
        self.linker = linker
        self.topic = topics.match(self.dataset)
        self.review_topic = topics.review(self.dataset)

    def id_of(self, value: bytes) -> tuple[dict[str, Any], str]:
        _, subscriber = self._codec.decode(value)
        return subscriber, subscriber["id_number"]

    def process(self, subscriber: dict[str, Any], value: bytes, entry: dict[str, Any] | None) -> tuple[str, bytes, bytes, str]:
        """One subscriber's match result, and its verdict (the batch path, for a batch of one)."""
        [(outs, verdict)] = self.process_batch([(subscriber, value, entry)])
        return (*outs[0], verdict)

    def process_batch(self, items: list[tuple[dict[str, Any], bytes, dict[str, Any] | None]]) -> list[tuple[list[Out], str]]:
        """(events to send, verdict) per (subscriber, its bytes, its id's registry entry or None), in order."""
        checks = [matching.verify(s["id_number"], s["subscriber_name"], s["birth_date"], entry) for s, _, entry in items]
        results: list[dict[str, Any]] = []
        for (subscriber, value, _), v in zip(items, checks, strict=True):
            if self._tally is not None and v.verdict != matching.NOT_FOUND:
                self._tally.observe_match(v.agreeing, v.disagreeing)
            results.append(self._result(subscriber, value, v.verdict, v.personal_id, v.agreeing, v.disagreeing, v.score))
        review = [False] * len(items)
        if self.linker is not None:
            self._link(items, checks, results, review)
        out: list[tuple[list[Out], str]] = []
        for result, to_review in zip(results, review, strict=True):
            key, encoded = result["source_key"].encode(), self._codec.encode(self._result_schema_id, result)
            events = [(self.topic, key, encoded)] + ([(self.review_topic, key, encoded)] if to_review else [])
            out.append((events, result["verdict"]))
        return out

    def _link(self, items: list[tuple[dict[str, Any], bytes, dict[str, Any] | None]], checks: list[matching.Verification],
              results: list[dict[str, Any]], review: list[bool]) -> None:
        linker = self.linker
        assert linker is not None
        mismatched = [i for i, v in enumerate(checks) if v.verdict == matching.MISMATCH]
        unknown = [i for i, v in enumerate(checks) if v.verdict == matching.NOT_FOUND]
        links: dict[int, Link | None] = {}
        if mismatched:
            links.update(zip(mismatched, linker.pair([items[i][0] for i in mismatched],
                                                     [checks[i].personal_id for i in mismatched]), strict=True))
        if unknown:
            links.update(zip(unknown, linker.search([items[i][0] for i in unknown]), strict=True))
        for i, link in links.items():
            if link is None:
                continue
            result = results[i]
            result.update(probability=link.match_probability, levels=dict(link.levels))
            likely = link.personal_id is not None and link.match_probability >= linker.review_probability
            if checks[i].verdict == matching.NOT_FOUND:
                result.update(method="search", score=link.match_weight, verdict=POSSIBLE if likely else NO_MATCH,
                              personal_id=link.personal_id if likely else None,
                              agreeing_fields=[c for c, level in link.levels if level not in ("null", "else")],
                              disagreeing_fields=[c for c, level in link.levels if level == "else"])
            if not likely:
                continue
            decided = linker.decision(result["source_key"], link.personal_id)  # type: ignore[arg-type]
            if decided is None:
                review[i] = True
                continue
            verdict = decided_verdict(result["verdict"], decided)
            result.update(verdict=verdict, method="review", personal_id=None if verdict == NO_MATCH else link.personal_id)

    def _result(self, subscriber: dict[str, Any], value: bytes, verdict: str, personal_id: str | None,
                agreeing: Iterable[str], disagreeing: Iterable[str], score: float) -> dict[str, Any]:
        header = subscriber["header"]
        return {
            "header": header, "dataset": self.dataset, "source_key": header["source_key"], "verdict": verdict,
            "personal_id": personal_id, "agreeing_fields": list(agreeing), "disagreeing_fields": list(disagreeing),
            "score": score, "record": value, "method": "exact", "probability": None, "levels": {},
        }


