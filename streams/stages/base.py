"""What every stage shares: where an event came from, what a stage sends, and how it holds back what it cannot read.

A stage reads its input with `read_record`: bytes that are not a record of its contract raise
`Unreadable`, which the stage turns into a quarantine event (`quarantine`). `SchemaUnavailable`
(the registry did not answer) is deliberately not caught: the record may be good, so the worker
waits and retries the batch instead of quarantining it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from schemas import envelope, topics
from schemas.codec import Codec, CodecError, EncodeError

__all__ = ["Out", "Unreadable", "Where", "quarantine", "read_record"]

log = logging.getLogger("gsp.streams")

Out = tuple[str, bytes, bytes]   # (topic, key, value)


@dataclass(frozen=True, slots=True)
class Where:
    """Where an input event came from, for quarantine records (-1: a caller that did not say)."""
    topic: str
    partition: int
    offset: int


class Unreadable(Exception):
    """Input a stage cannot read as a record of its contract; ``rule`` and the message go to the quarantine issue."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(reason)
        self.rule = rule


def read_record(codec: Codec, value: bytes | None, *, dataset: str, contract: str | None) -> dict[str, Any]:
    """The record in ``value``, of the Avro record named ``contract`` (any, when None); `Unreadable` otherwise."""
    if value is None:
        raise Unreadable("tombstone", f"a null value (a tombstone): deletes are not part of the {dataset} contract yet")
    try:
        schema_id, record = codec.decode(value)
        name = codec.name_of(schema_id)
    except CodecError as exc:
        raise Unreadable("avro.decode", str(exc)) from None
    if contract is not None and name != contract:
        raise Unreadable("schema.mismatch", f"a record of {name or 'an unnamed schema'} (schema id {schema_id}), "
                                            f"not of {dataset}'s contract {contract}")
    return record


def quarantine(codec: Codec, issue_schema_id: int, *, dataset: str, stage: str, header: Any, key: str | None,
               rule: str, field: str | None, reason: str, original: bytes, where: Where) -> Out:
    """The event that holds ``original`` back in quarantine.<dataset>, with the reason and where it was read."""
    def issue(header: Any) -> dict[str, Any]:
        return envelope.quarantine_issue(header=header, dataset=dataset, stage=stage, key=key, rule=rule, field=field,
                                         reason=reason, original=original, source_topic=where.topic,
                                         source_partition=where.partition, source_offset=where.offset)

    unknown = envelope.unknown_header(where.topic, where.partition, where.offset)
    try:
        value = codec.encode(issue_schema_id, issue(header or unknown))
    except EncodeError:  # a record of another contract may hold anything under "header"
        header, value = unknown, codec.encode(issue_schema_id, issue(unknown))
    log.info("record quarantined", extra={"stage": stage, "dataset": dataset,
                                          "event_id": (header or unknown)["event_id"], "rule": rule})
    return topics.quarantine(dataset), (key or "").encode(), value
