"""`gsp lineage`: a delivered record's way, from the audit ledger and the platform's own topics.

The ledger holds, per delivered record, where it was on each topic (raw, clean, match, share: the
positions the stages carried as internal headers and the broker acknowledged) and under which
subscription version it went to which agency. The source key is personal data (a phone number, a
licence number), so the ledger does not copy it: it is read from the record's header at its clean
position, as long as the topic still holds it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from gsp.governance.ledger import Ledger
from schemas.codec import Codec, CodecError

__all__ = ["Lineage", "header_reader"]

log = logging.getLogger("gsp.lineage")
_LAYERS = {"raw": 0, "clean": 1, "match": 2, "share": 3}  # a record's way, in order


class Lineage:
    def __init__(self, ledger: Ledger, *, read_header: Callable[[str, int, int], dict[str, Any] | None]) -> None:
        self.ledger = ledger
        self._read_header = read_header

    def of(self, event_id: str) -> list[dict[str, Any]]:
        """Every delivery of ``event_id`` (the agency's or the platform's), oldest first, with the source's header."""
        out = []
        for delivery in self.ledger.lineage(event_id):
            record = delivery["record"]
            source = {"system": record.get("source_system"), "version": record.get("source_version"), "key": None}
            for topic, where in record.get("positions", {}).items():
                if topic.startswith(("clean.", "raw.")) and source["key"] is None:
                    partition, offset = (int(n) for n in where.split(":"))
                    header = self._read_header(topic, partition, offset)
                    if header is not None and header.get("event_id") == record.get("event_id"):
                        source["key"] = header.get("source_key")
            record["positions"] = dict(sorted(record.get("positions", {}).items(), key=lambda kv: _LAYERS.get(
                kv[0].split(".", 1)[0], len(_LAYERS))))
            out.append({**delivery, "source": source})
        return out


def header_reader(bootstrap: str, codec: Codec, *, timeout_ms: int = 3000) -> Callable[[str, int, int], dict[str, Any] | None]:
    """Reads the EventHeader of the record at one position (None if the topic no longer holds it)."""
    def read(topic: str, partition: int, offset: int) -> dict[str, Any] | None:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=timeout_ms)
        try:
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, offset)
            for batch in consumer.poll(timeout_ms=timeout_ms, max_records=1).values():
                for message in batch:
                    if message.offset == offset and message.value is not None:
                        header = codec.decode(message.value)[1].get("header")
                        return dict(header) if isinstance(header, dict) else None
        except (CodecError, ValueError) as exc:
            log.warning("lineage: record not readable", extra={"topic": topic, "error": str(exc)[:200]})
        finally:
            consumer.close()
        return None
    return read
