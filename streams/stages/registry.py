"""clean.<registry> -> (personal id, registry entry) for the registry table."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from schemas.codec import Codec
from schemas.datasets import Dataset
from streams.matching import RegistryEntries
from streams.stages.base import Unreadable, read_record

__all__ = ["RegistryStage"]

log = logging.getLogger("gsp.streams")


class RegistryStage:
    """clean.<registry dataset> -> (personal id, entry): what every worker's matcher keeps per person.

    The entry holds the registry fields the ``linked`` datasets map (`streams.matching.registry`).
    """

    def __init__(self, codec: Codec, registry: Dataset, linked: Iterable[Dataset]) -> None:
        self.dataset = registry.name
        self._contract = registry.contract
        self._codec = codec
        self._entries = RegistryEntries(registry, linked)

    def process(self, value: bytes | None) -> tuple[str, dict[str, Any]] | None:
        """The person's entry; None for input that is not a registry record (logged: the registry keeps what it had,
        and the clean stage already quarantined anything it could not read)."""
        try:
            record = read_record(self._codec, value, dataset=self.dataset, contract=self._contract)
        except Unreadable as exc:
            log.error("unreadable registry record not indexed", extra={"stage": "registry", "dataset": self.dataset,
                                                                      "rule": exc.rule, "error": str(exc)[:200]})
            return None
        return self._entries.entry(record)
