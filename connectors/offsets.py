"""Source positions on the compacted ``gsp.connect.offsets`` topic (JSON, as Kafka Connect does).

Key: the connector name. Value: its position. The latest value per key wins.
"""

from __future__ import annotations

import json
import time
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from schemas import topics

__all__ = ["OffsetStore"]


class OffsetStore:
    def __init__(self, bootstrap: str, producer: KafkaProducer, *, topic: str = topics.CONNECT_OFFSETS) -> None:
        self._bootstrap = bootstrap
        self._producer = producer
        self._topic = topic

    def load(self, name: str, *, timeout_s: float = 30.0) -> dict[str, Any] | None:
        """The last stored position of a connector, reading the topic to its end."""
        consumer = KafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False,
                                 client_id=f"gsp-offsets-{name}")
        try:
            partitions = consumer.partitions_for_topic(self._topic) or set()
            tps = [TopicPartition(self._topic, p) for p in partitions]
            if not tps:
                return None
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            end = consumer.end_offsets(tps)
            found: dict[str, Any] | None = None
            deadline = time.monotonic() + timeout_s
            while any(consumer.position(tp) < end[tp] for tp in tps):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading {self._topic} took longer than {timeout_s}s")
                for batch in consumer.poll(timeout_ms=200).values():
                    for message in batch:
                        if message.key == name.encode():
                            found = None if message.value is None else json.loads(message.value)
            return found
        finally:
            consumer.close()

    def store(self, name: str, position: dict[str, Any]) -> None:
        """Store and wait for the broker's acknowledgement."""
        future = self._producer.send(self._topic, key=name.encode(), value=json.dumps(position).encode())
        future.get(timeout=30)
