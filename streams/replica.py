"""What every worker reads whole before it matches: the registry and the stewards' decisions.

The registry table spreads the writing of the registry over the workers, but the search cannot
use personal-id partitions (blocking keys are not personal ids), so every worker keeps a full
replica in its `Linker`, read from the table's changelog (all partitions), and the stewards'
decisions from ``gsp.review.decisions``. Both are rebuilt from those topics after a restart
before the match agents decide anything (`wait_ready`). Exact lookups use the same replica: on
the embedded broker Faust's own table recovery stops short (its end offsets are wrong, see
`streams.follow`) and would forget citizens after a restart.

A worker therefore holds the whole registry (about 1 kB per citizen, see
gsp/tools/bench/linkage.py): fine for a ministry or a province, not for 100 million;
`streams.linkage.partition` is the partitioned index, docs/capacity.md the plan to use it here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from schemas import topics
from schemas.codec import Codec, CodecError
from streams.follow import follow_topic
from streams.matching import Linker

__all__ = ["DecodeChange", "Replica"]

log = logging.getLogger("gsp.streams.replica")

_ENTRY_FIELDS = frozenset({"name_key", "birth_date", "status"})  # what the linker reads of every entry

# A changelog record (key, value) -> (personal id, entry or None for a deletion), in the table's own serialization.
DecodeChange = Callable[[bytes, bytes | None], tuple[str, Mapping[str, Any] | None]]


class Replica:
    """The linker's registry and decisions, kept current from their topics by `follow`."""

    def __init__(self, linker: Linker, codec: Codec, *, decode_change: DecodeChange,
                 on_error: Callable[[], None] = lambda: None) -> None:
        self.linker = linker
        self._codec = codec
        self._decode_change = decode_change
        self._on_error = on_error
        self._registry_ready = asyncio.Event()
        self._decisions_ready = asyncio.Event()

    @property
    def ready(self) -> bool:
        """Both topics read up to where they ended when the worker started."""
        return self._registry_ready.is_set() and self._decisions_ready.is_set()

    async def wait_ready(self) -> None:
        if not self.ready:
            await asyncio.gather(self._registry_ready.wait(), self._decisions_ready.wait())

    def apply_registry_change(self, key: bytes | None, value: bytes | None) -> None:
        """One change of the registry table; one the linker cannot hold is counted and logged, never applied."""
        try:
            if key is None:
                raise ValueError("a change without a key")
            personal_id, entry = self._decode_change(key, value)
            if entry is not None and not (isinstance(entry, Mapping) and _ENTRY_FIELDS <= entry.keys()):
                raise ValueError(f"not a registry entry: {type(entry).__name__} {str(entry)[:80]}")
            self.linker.apply_entry(personal_id, entry)
        except (ValueError, TypeError, KeyError) as exc:  # one bad changelog record must not stop the worker
            self._on_error()
            log.error("registry change not indexed", extra={"stage": "registry", "error": str(exc)})

    def apply_decision(self, key: bytes | None, value: bytes | None) -> None:
        """A steward's decision, or its withdrawal (a tombstone); an unreadable one withdraws the decision its key
        names (fail closed: the pair waits for a steward again rather than being shared on a guess)."""
        try:
            pair = None if key is None else key.decode()
        except UnicodeDecodeError:
            pair = None
        if pair is None:
            log.error("review decision without a readable key ignored", extra={"stage": "match"})
            return
        try:
            decision = None if value is None else self._codec.decode(value)[1]["decision"]
            if decision is not None and not isinstance(decision, str):
                raise TypeError(f"decision is a {type(decision).__name__}")
        except (CodecError, KeyError, TypeError) as exc:
            log.error("unreadable review decision ignored", extra={"stage": "match", "error": str(exc)})
            decision = None
        self.linker.apply_decision(pair, decision)

    async def follow(self, bootstrap: str, changelog: str, stopped: asyncio.Event) -> None:
        """Read the registry changelog and the decisions until ``stopped``."""
        await asyncio.gather(
            follow_topic(bootstrap, changelog, self.apply_registry_change, stopped, caught_up=self._registry_ready,
                         client_id="gsp-registry-replica"),
            follow_topic(bootstrap, topics.REVIEW_DECISIONS, self.apply_decision, stopped,
                         caught_up=self._decisions_ready, client_id="gsp-review-decisions"))

    def health(self) -> dict[str, Any]:
        """Plain counters only: safe to read from the ops server's thread."""
        return {"ready": self.ready, "registry_entries": self.linker.entries, "indexed": len(self.linker.index),
                "decisions": self.linker.decisions}
