"""raw.<dataset> -> clean.<dataset> | quarantine.<dataset>."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from schemas import topics
from schemas.codec import Codec, EncodeError
from schemas.datasets import Dataset, FieldRef
from streams.clean import Cleaned
from streams.contracts import contract_of
from streams.quality import QualityTally
from streams.stages.base import Out, Unreadable, Where, quarantine, read_record

__all__ = ["CleanStage"]


class CleanStage:
    """raw.<dataset> -> clean.<dataset> | quarantine.<dataset>.

    ``key_of`` picks the output key; `for_dataset` keys by the declaration's partition key,
    the personal id for a linked dataset, so that it and the registry are co-partitioned for matching.
    """

    def __init__(self, dataset: str, codec: Codec, *, clean: Callable[[dict[str, Any]], Cleaned],
                 key_of: Callable[[dict[str, Any]], str], clean_schema_id: int, issue_schema_id: int,
                 tally: QualityTally | None = None, clock: Callable[[], float] = time.time,
                 contract: str | None = None) -> None:
        """``contract``: the full name of the Avro record the raw topic carries; a record of another is quarantined
        (None: any record is cleaned)."""
        self.dataset = dataset
        self._contract = contract
        self._tally = tally
        self._clock = clock
        self._codec = codec
        self._clean = clean
        self._key_of = key_of
        self._clean_schema_id = clean_schema_id
        self._issue_schema_id = issue_schema_id
        self.clean_topic = topics.clean(dataset)
        self.quarantine_topic = topics.quarantine(dataset)

    @classmethod
    def for_dataset(cls, dataset: Dataset, codec: Codec, *, clean_schema_id: int, issue_schema_id: int,
                    tally: QualityTally | None = None, clock: Callable[[], float] = time.time) -> CleanStage:
        """The clean stage of a declared dataset: its cleaning contract, keyed by its partition key."""
        contract = contract_of(dataset)
        key = FieldRef(dataset.partition_key)

        def key_of(record: dict[str, Any]) -> str:
            value = key.value(record)
            return "" if value is None else str(value)

        return cls(dataset.name, codec, clean=contract.clean, key_of=key_of,
                   clean_schema_id=clean_schema_id, issue_schema_id=issue_schema_id, tally=tally, clock=clock,
                   contract=dataset.contract)

    def process(self, key: bytes | None, value: bytes | None, where: Where) -> Out:
        """The record cleaned, or held back in quarantine with its reason; never an exception for any bytes
        (`SchemaUnavailable` aside: the registry's outage is waited out, see `streams.stages.base`)."""
        key_text = key.decode("utf-8", "replace") if key else None
        original = value or b""  # a tombstone is quarantined with no bytes
        try:
            record = read_record(self._codec, value, dataset=self.dataset, contract=self._contract)
        except Unreadable as exc:
            if self._tally is not None:
                self._tally.observe_connector_issue(exc.rule, None)
            return self._quarantine(None, key_text, exc.rule, None, str(exc), original, where)
        result = self._clean(record)
        rejection = result.rejection
        if self._tally is not None:
            self._tally.observe_clean(result.record, result.findings, rejected=rejection is not None, now_s=self._clock())
        if rejection is not None:
            return self._quarantine(record.get("header"), key_text, rejection.rule, rejection.field, rejection.reason, original, where)
        # Every record leaves the clean stage with its findings (fixes keep the original value).
        cleaned = {**result.record, "findings": [
            {"rule": f.rule, "field": f.field, "severity": f.severity, "reason": f.reason, "original": f.original}
            for f in result.findings]}
        try:
            encoded = self._codec.encode(self._clean_schema_id, cleaned)
        except EncodeError as exc:  # odd values its rules let through that the clean contract cannot carry
            return self._quarantine(record.get("header"), key_text, "avro.encode", None, str(exc), original, where)
        return self.clean_topic, self._key_of(cleaned).encode(), encoded

    def _quarantine(self, header: dict[str, Any] | None, key: str | None, rule: str, field: str | None,
                    reason: str, value: bytes, where: Where) -> Out:
        return quarantine(self._codec, self._issue_schema_id, dataset=self.dataset, stage="clean", header=header,
                          key=key, rule=rule, field=field, reason=reason, original=value, where=where)
