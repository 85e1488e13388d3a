"""clean.<registry> -> (personal id, registry entry) for the registry table."""

from __future__ import annotations

from typing import Any

from schemas.codec import Codec
from streams import match as matching

__all__ = ["RegistryStage"]


class RegistryStage:
    """clean.population.citizen -> (personal_id, registry entry) for the registry table."""

    def __init__(self, codec: Codec) -> None:
        self._codec = codec

    def process(self, value: bytes) -> tuple[str, dict[str, Any]]:
        _, citizen = self._codec.decode(value)
        return citizen["personal_id"], matching.registry_entry(citizen)


