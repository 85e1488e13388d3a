"""clean.<registry> -> (personal id, registry entry) for the registry table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from schemas.codec import Codec
from schemas.datasets import Dataset
from streams.matching import RegistryEntries

__all__ = ["RegistryStage"]


class RegistryStage:
    """clean.<registry dataset> -> (personal id, entry): what every worker's matcher keeps per person.

    The entry holds the registry fields the ``linked`` datasets map (`streams.matching.registry`).
    """

    def __init__(self, codec: Codec, registry: Dataset, linked: Iterable[Dataset]) -> None:
        self.dataset = registry.name
        self._codec = codec
        self._entries = RegistryEntries(registry, linked)

    def process(self, value: bytes) -> tuple[str, dict[str, Any]]:
        _, record = self._codec.decode(value)
        return self._entries.entry(record)
