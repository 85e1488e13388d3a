"""Avro schema compatibility, with Confluent's meaning of each level.

BACKWARD: the new schema can read data written with the previous one, so
consumers upgrade first. FORWARD: the previous schema can read data written
with the new one, so producers upgrade first. FULL: both. The ``_TRANSITIVE``
variants check against every live version instead of only the latest.

Apache Avro's own reader/writer checker does the schema resolution work; this
module only chooses the pairs and turns the result into sentences.
"""

from __future__ import annotations

from collections.abc import Sequence

import avro.errors
import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from gsp.governance.registry.errors import InvalidCompatibilityLevel, InvalidSchema

__all__ = ["DEFAULT_LEVEL", "LEVELS", "check", "normalise_level", "parse"]

LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)
DEFAULT_LEVEL = "BACKWARD"


def normalise_level(level: object) -> str:
    """The level in upper case, or :class:`InvalidCompatibilityLevel`."""
    if isinstance(level, str) and level.upper() in LEVELS:
        return level.upper()
    raise InvalidCompatibilityLevel(level)


def parse(schema: str) -> avro.schema.Schema:
    """Parse an Avro schema, turning every way the library can reject it into :class:`InvalidSchema`."""
    try:
        return avro.schema.parse(schema)
    # The parser reports malformed input through several exception types,
    # e.g. TypeError for a non-string name; to a client they all mean one thing.
    except (avro.errors.AvroException, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidSchema(f"Invalid schema: {exc}") from exc


def check(candidate: str, previous: Sequence[tuple[int, str]], level: str) -> list[str]:
    """Why ``candidate`` may not follow ``previous`` under ``level``; empty when it may.

    ``previous`` holds ``(version, schema)`` pairs, oldest first.
    """
    level = normalise_level(level)
    if level == "NONE" or not previous:
        return []
    if not level.endswith("_TRANSITIVE"):
        previous = previous[-1:]
    direction = level.removesuffix("_TRANSITIVE")
    new = parse(candidate)
    messages: list[str] = []
    for version, text in previous:
        old = parse(text)
        if direction in ("BACKWARD", "FULL"):
            messages += _problems(
                reader=new, writer=old,
                pair=f"{level}: the new schema cannot read data written with version {version}",
            )
        if direction in ("FORWARD", "FULL"):
            messages += _problems(
                reader=old, writer=new,
                pair=f"{level}: version {version} cannot read data written with the new schema",
            )
    return messages


def _problems(*, reader: avro.schema.Schema, writer: avro.schema.Schema, pair: str) -> list[str]:
    # A fresh checker per pair: it memoises by object identity.
    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    if result.compatibility is not SchemaCompatibilityType.incompatible:
        return []
    kinds = ", ".join(sorted({kind.value.upper() for kind in result.incompatibilities}))
    details = "; ".join(sorted(result.messages))
    where = ", ".join(sorted(result.locations))
    return [f"{pair} ({kinds}: {details} at {where})"]
