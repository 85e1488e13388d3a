"""Reading a whole topic as it is now, on a broker whose end offsets can fall short.

The embedded broker answers ListOffsets with the last record batch's base offset + 1, so a topic
counts as read only once every position is past the end offsets *and* a poll returned nothing.
"""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition

__all__ = ["read_whole"]


def read_whole(bootstrap: str, topic: str, *, timeout_s: float, client_id: str,
               **config: Any) -> tuple[list[Any], bool]:
    """Every message of ``topic`` from its beginning, and whether it was read to its end within ``timeout_s``
    (False: what was read by then). A topic that does not exist is empty and read whole."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, client_id=client_id, **config)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not tps:
            return [], True
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            polled = consumer.poll(timeout_ms=300, max_records=5000)
            for batch in polled.values():
                out.extend(batch)
            if not polled and all(consumer.position(tp) >= end[tp] for tp in tps):
                return out, True
        return out, False
    finally:
        consumer.close()
