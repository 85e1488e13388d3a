"""The stream stages as plain classes over bytes: decode, apply the pure logic, encode.

The Faust module only wires topics to these; the benchmark and the tests call
them directly. Each ``process`` returns the events to send as
``(topic, key, value)``; a record that cannot be processed becomes a
quarantine event with its reason and the original bytes, never an exception.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from schemas import topics
from schemas.codec import Codec, CodecError
from streams import match as matching
from streams import share as sharing
from streams.clean import Cleaned
from streams.linkage import NO_MATCH, POSSIBLE, Link
from streams.linking import Linker, decided_verdict
from streams.quality import QualityTally

__all__ = ["CleanStage", "MatchStage", "Out", "RegistryStage", "ShareStage", "Where"]

log = logging.getLogger("gsp.streams")
Out = tuple[str, bytes, bytes]
_UNKNOWN_NS = uuid.UUID("0b7e7c1e-8f2a-5d3c-9e4b-6a1f2d3c4b5a")


@dataclass(frozen=True, slots=True)
class Where:
    """Where an input event came from, for quarantine records."""
    topic: str
    partition: int
    offset: int


def _issue(codec: Codec, schema_id: int, *, dataset: str, stage: str, header: dict[str, Any] | None, key: str | None,
           rule: str, field: str | None, reason: str, original: bytes, where: Where) -> bytes:
    if header is None:
        # An undecodable event has no header of its own: identify it by where it was read.
        ref = f"{where.topic}/{where.partition}/{where.offset}"
        header = {"event_id": str(uuid.uuid5(_UNKNOWN_NS, ref)), "source_system": "unknown", "source_key": ref,
                  "source_version": "0", "ingested_at": 0}
    log.info("record quarantined", extra={"stage": stage, "dataset": dataset, "event_id": header["event_id"], "rule": rule})
    return codec.encode(schema_id, {
        "header": header, "dataset": dataset, "stage": stage, "key": key, "rule": rule, "field": field,
        "reason": reason, "original": original, "source_topic": where.topic,
        "source_partition": where.partition, "source_offset": where.offset,
    })


class CleanStage:
    """raw.<dataset> -> clean.<dataset> | quarantine.<dataset>.

    ``key_of`` picks the output key: the clean topics are keyed by personal id
    so that citizens and subscribers are co-partitioned for matching.
    """

    def __init__(self, dataset: str, codec: Codec, *, clean: Callable[[dict[str, Any]], Cleaned],
                 key_of: Callable[[dict[str, Any]], str], clean_schema_id: int, issue_schema_id: int,
                 tally: QualityTally | None = None, clock: Callable[[], float] = time.time) -> None:
        self.dataset = dataset
        self._tally = tally
        self._clock = clock
        self._codec = codec
        self._clean = clean
        self._key_of = key_of
        self._clean_schema_id = clean_schema_id
        self._issue_schema_id = issue_schema_id
        self.clean_topic = topics.clean(dataset)
        self.quarantine_topic = topics.quarantine(dataset)

    def process(self, key: bytes | None, value: bytes, where: Where) -> Out:
        key_text = key.decode("utf-8", "replace") if key else None
        try:
            _, record = self._codec.decode(value)
        except CodecError as exc:
            if self._tally is not None:
                self._tally.observe_connector_issue("avro.decode", None)
            return self._quarantine(None, key_text, "avro.decode", None, str(exc), value, where)
        result = self._clean(record)
        rejection = result.rejection
        if self._tally is not None:
            self._tally.observe_clean(result.record, result.findings, rejected=rejection is not None, now_s=self._clock())
        if rejection is not None:
            return self._quarantine(record.get("header"), key_text, rejection.rule, rejection.field, rejection.reason, value, where)
        # Every record leaves the clean stage with its findings (fixes keep the original value).
        cleaned = {**result.record, "findings": [
            {"rule": f.rule, "field": f.field, "severity": f.severity, "reason": f.reason, "original": f.original}
            for f in result.findings]}
        return self.clean_topic, self._key_of(cleaned).encode(), self._codec.encode(self._clean_schema_id, cleaned)

    def _quarantine(self, header: dict[str, Any] | None, key: str | None, rule: str, field: str | None,
                    reason: str, value: bytes, where: Where) -> Out:
        issue = _issue(self._codec, self._issue_schema_id, dataset=self.dataset, stage="clean", header=header, key=key,
                       rule=rule, field=field, reason=reason, original=value, where=where)
        return self.quarantine_topic, (key or "").encode(), issue


class RegistryStage:
    """clean.population.citizen -> (personal_id, registry entry) for the registry table."""

    def __init__(self, codec: Codec) -> None:
        self._codec = codec

    def process(self, value: bytes) -> tuple[str, dict[str, Any]]:
        _, citizen = self._codec.decode(value)
        return citizen["personal_id"], matching.registry_entry(citizen)


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


class ShareStage:
    """match.<dataset> -> share.<agency>.<dataset> for every subscription that covers the record."""

    def __init__(self, codec: Codec, subscriptions: Callable[[str], Iterable[sharing.Subscription]], *,
                 tallies: dict[str, QualityTally] | None = None, clock: Callable[[], float] = time.time) -> None:
        self._codec = codec
        self._subscriptions = subscriptions
        self._tallies = tallies or {}
        self._clock = clock

    def process(self, value: bytes) -> list[tuple[Out, sharing.Subscription]]:
        _, result = self._codec.decode(value)
        _, record = self._codec.decode(result["record"])
        view = sharing.shared_view(record, personal_id=result["personal_id"], verdict=result["verdict"], score=result["score"])
        key = result["source_key"].encode()
        shared = [((s.topic, key, self._codec.encode(s.schema_id, sharing.project(s, view))), s)
                  for s in self._subscriptions(result["dataset"]) if sharing.covers(s, view)]
        tally = self._tallies.get(result["dataset"])
        if tally is not None and shared:
            tally.observe_delivery(self._clock() - result["header"]["ingested_at"] / 1000)
        return shared
