"""What every stage shares: where an event came from, what a stage sends, the quarantine event."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from schemas.codec import Codec

__all__ = ["Out", "Where", "quarantine_issue"]

log = logging.getLogger("gsp.streams")
Out = tuple[str, bytes, bytes]
_UNKNOWN_NS = uuid.UUID("0b7e7c1e-8f2a-5d3c-9e4b-6a1f2d3c4b5a")


@dataclass(frozen=True, slots=True)
class Where:
    """Where an input event came from, for quarantine records."""
    topic: str
    partition: int
    offset: int


def quarantine_issue(codec: Codec, schema_id: int, *, dataset: str, stage: str, header: dict[str, Any] | None, key: str | None,
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


