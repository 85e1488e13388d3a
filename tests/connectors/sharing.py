"""Share-topic events for sink tests: a small contract with the real event header, encoded as the share stage does."""

from __future__ import annotations

from typing import Any

from kafka import KafkaProducer

from schemas import envelope
from schemas.codec import Codec, contract

__all__ = ["SHARE_SCHEMA", "publish", "share_codec"]

SHARE_SCHEMA_ID = 31
SHARE_SCHEMA: dict[str, Any] = {
    "type": "record", "name": "ShareTest", "namespace": "vn.gsp.test",
    "fields": [{"name": "header", "type": contract("vn.gsp.common.EventHeader")},
               {"name": "msisdn", "type": "string"}, {"name": "match_score", "type": "double"}]}


def share_codec(schema_id: int = SHARE_SCHEMA_ID) -> Codec:
    codec = Codec()
    codec.add(schema_id, SHARE_SCHEMA)
    return codec


def publish(bootstrap: str, topic: str, numbers: range, *, schema_id: int = SHARE_SCHEMA_ID) -> None:
    """One event per number, each with its own event id, acknowledged before returning."""
    codec = share_codec(schema_id)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    try:
        for i in numbers:
            value = {"header": envelope.header("telecom.test", f"k{i}", "1", 0), "msisdn": f"09{i:08d}",
                     "match_score": 1.0}
            producer.send(topic, key=f"k{i}".encode(), value=codec.encode(schema_id, value))
        producer.flush(timeout=30)
    finally:
        producer.close()
