"""The event envelope every platform event carries, and the vocabulary shared by every package.

Every event starts with a header (vn.gsp.common.EventHeader): which source record, which
version of it, when it was read. ``event_id`` is a UUIDv5 of the source system, key and
version, so a replay produces the same id and every sink can upsert by it. A record the
platform holds back becomes a quarantine issue (vn.gsp.quality.QualityIssue), built here
for the connector and the stream stages alike; the caller encodes it.
"""

from __future__ import annotations

import hashlib
import uuid
from enum import StrEnum
from typing import Any

__all__ = ["Verdict", "event_id", "header", "quarantine_issue", "unknown_header"]

# Fixed for ever: changing either namespace changes every event id, and sinks would store duplicates.
_EVENT_NS = uuid.UUID("6f1c2a4e-3b7d-5e8f-9a0b-1c2d3e4f5a6b")
_UNKNOWN_NS = uuid.UUID("0b7e7c1e-8f2a-5d3c-9e4b-6a1f2d3c4b5a")


class Verdict(StrEnum):
    """Outcome of matching a record against the population registry (a str: Avro and JSON carry the value)."""

    MATCHED = "MATCHED"        # id, full name and birth date agree with the registry (or a steward accepted the pair)
    MISMATCH = "MISMATCH"      # the id is in the registry, but the name or birth date differs
    NOT_FOUND = "NOT_FOUND"    # no registry entry for the id, and no search was made (matcher off)
    POSSIBLE = "POSSIBLE"      # a search proposed a likely person: waits for a steward
    NO_MATCH = "NO_MATCH"      # a search found nobody likely, or a steward rejected the proposal


_EVENT_SHA1 = hashlib.sha1(_EVENT_NS.bytes, usedforsecurity=False)  # the namespace hashed once, copied per id


def event_id(source_system: str, source_key: str, source_version: str) -> str:
    """Stable id of one version of one source record: ``str(uuid.uuid5(_EVENT_NS, "system/key/version"))``.

    Computed as RFC 4122 does, without the UUID object (a third of the cost; the connector stamps every record)."""
    sha = _EVENT_SHA1.copy()
    sha.update(f"{source_system}/{source_key}/{source_version}".encode())
    digest = bytearray(sha.digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = digest.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def header(source_system: str, source_key: str, source_version: str, ingested_at_ms: int, *,
           deleted: bool = False) -> dict[str, Any]:
    """The header of one version of one source record, read at ``ingested_at_ms``.

    ``deleted``: this version is the source's delete of the record (it keeps the record's last fields).
    Events written before headers had it decode without it: read it as ``header.get("deleted", False)``."""
    return {"event_id": event_id(source_system, source_key, source_version), "source_system": source_system,
            "source_key": source_key, "source_version": source_version, "ingested_at": ingested_at_ms,
            "deleted": deleted}


def unknown_header(topic: str, partition: int, offset: int) -> dict[str, Any]:
    """The header of bytes that could not be decoded: they have none of their own, so where they were read names them."""
    ref = f"{topic}/{partition}/{offset}"
    return {"event_id": str(uuid.uuid5(_UNKNOWN_NS, ref)), "source_system": "unknown", "source_key": ref,
            "source_version": "0", "ingested_at": 0, "deleted": False}


def quarantine_issue(*, header: dict[str, Any], dataset: str, stage: str, key: str | None, rule: str,
                     field: str | None, reason: str, original: bytes, source_topic: str | None = None,
                     source_partition: int | None = None, source_offset: int | None = None) -> dict[str, Any]:
    """A vn.gsp.quality.QualityIssue: why a record was held back, and what a steward needs to fix and release it.

    ``original`` is the record exactly as received; the source position is absent for a
    row a connector held back before it reached any topic.
    """
    return {"header": header, "dataset": dataset, "stage": stage, "key": key, "rule": rule, "field": field,
            "reason": reason, "original": original, "source_topic": source_topic,
            "source_partition": source_partition, "source_offset": source_offset}
