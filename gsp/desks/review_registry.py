"""The registry entry beside a proposed pair, field by field as the matcher compared them, for the review desk.

:class:`RegistryLookup` reads a person's registry record from ``clean.<registry>.v1``,
which is keyed by personal id and partitioned as Kafka's default partitioner does
(murmur2 of the key): only the partition the id hashes to is read, to its end, and
the latest record of the id is kept. That costs one partition's scan per item a
steward opens (a few thousand records in the demo); a registry of millions would
want an index of its own.

:func:`compared` lines the item's record up with that entry: one row per registry
field the item's dataset maps (the fields the matcher compares, nothing more of the
registry record), with the agreement level of each comparison the matcher made on it.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.partitioner.default import murmur2

from gsp.governance.catalog import DATASETS
from schemas import topics
from schemas.codec import Codec, CodecError
from schemas.datasets import FieldRef
from schemas.datasets import Role as DatasetRole
from streams.linkage import ModelError
from streams.linkage.model import Model
from streams.matching import DEFAULT_MODEL, RegistryEntries

__all__ = ["Lookup", "RegistryLookup", "compared"]

log = logging.getLogger("gsp.review")

# personal id -> the registry record decoded, or None when the registry holds no record of it
Lookup = Callable[[str], dict[str, Any] | None]


class RegistryUnreadable(Exception):
    """The registry topic could not be read in time."""


class RegistryLookup:
    """A person's latest registry record, read from the registry's clean topic."""

    def __init__(self, bootstrap: str, codec: Codec, *, consumer_config: Mapping[str, Any] | None = None,
                 timeout_s: float = 10.0) -> None:
        self._config = {**(consumer_config or {}), "bootstrap_servers": bootstrap}
        for name in ("session_timeout_ms", "heartbeat_interval_ms", "max_poll_interval_ms", "group_id"):
            self._config.pop(name, None)  # no group: the partition is assigned, nothing is committed
        self._codec, self._timeout_s = codec, timeout_s
        registry = next((d for d in DATASETS.values() if d.role is DatasetRole.REGISTRY), None)
        self.topic = topics.clean(registry.name) if registry is not None else None

    def __call__(self, personal_id: str) -> dict[str, Any] | None:
        if self.topic is None:
            return None
        key = personal_id.encode()
        consumer = KafkaConsumer(enable_auto_commit=False, **self._config)
        try:
            partitions = sorted(consumer.partitions_for_topic(self.topic) or ())
            if not partitions:
                return None
            tp = TopicPartition(self.topic, partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)])
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            end = consumer.end_offsets([tp])[tp]
            latest: bytes | None = None
            deadline = time.monotonic() + self._timeout_s
            while consumer.position(tp) < end:
                if time.monotonic() > deadline:
                    raise RegistryUnreadable(f"{self.topic} was not read in {self._timeout_s:.0f} s")
                for batch in consumer.poll(timeout_ms=500, max_records=5000).values():
                    for message in batch:
                        if message.key == key:
                            latest = message.value
            return dict(self._codec.decode(latest)[1]) if latest else None
        finally:
            consumer.close()


@functools.cache
def _fields_of_comparisons() -> dict[str, str]:
    """Comparison -> the registry field it compares (the shipped model's settings)."""
    try:
        settings = Model.load(DEFAULT_MODEL).settings
    except ModelError:
        return {}
    left = {f.name: f.left for f in settings.fields}
    return {c.name: left[c.field] for c in settings.comparisons if c.field in left}


def compared(dataset_name: str, personal_id: str, record: Any, levels: Mapping[str, str],
             lookup: Lookup | None) -> dict[str, Any]:
    """``{"registry": {field: value} | None, "registry_error": str | None, "fields": [{"field", "record",
    "registry", "levels": {comparison: level}}]}``: the registry fields the dataset maps, its record's value and
    the registry's of each, and the levels the matcher saw; comparisons of no mapped field in a row of their own."""
    dataset = DATASETS.get(dataset_name)
    mapped: Mapping[str, FieldRef] = dataset.registry if dataset is not None else {}
    registry = next((d for d in DATASETS.values() if d.role is DatasetRole.REGISTRY), None)
    entry: dict[str, Any] | None = None
    error: str | None = None
    if lookup is not None and registry is not None:
        try:
            found = lookup(personal_id)
        except (KafkaError, CodecError, RegistryUnreadable) as exc:
            log.warning("registry entry not read", extra={"stage": "review", "error": str(exc)[:300]})
            found, error = None, f"the registry entry could not be read: {exc}"
        if found is not None:
            entries = RegistryEntries(registry, [dataset] if dataset is not None else [])
            entry = {name: FieldRef(registry.key if name == "personal_id" else entries.path(name)).value(found)
                     for name in mapped}
        elif error is None:
            error = f"the registry holds no record of {personal_id}"
    fields_of = _fields_of_comparisons()
    values = record if isinstance(record, Mapping) else {}
    rows = [{"field": name, "record": ref.value(values), "registry": None if entry is None else entry.get(name),
             "levels": {c: level for c, level in levels.items() if fields_of.get(c) == name}}
            for name, ref in mapped.items()]
    other = {c: level for c, level in levels.items() if fields_of.get(c) not in mapped}
    if other:
        rows.append({"field": None, "record": None, "registry": None, "levels": other})
    return {"registry": entry, "registry_error": error, "fields": rows}

