"""What every stage shares: where an event came from, and what a stage sends."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Out", "Where"]

Out = tuple[str, bytes, bytes]   # (topic, key, value)


@dataclass(frozen=True, slots=True)
class Where:
    """Where an input event came from, for quarantine records."""
    topic: str
    partition: int
    offset: int
