"""Source positions on the compacted ``gsp.connect.offsets`` topic (JSON, as Kafka Connect does).

Key: the connector name. Value: its position. The latest value per key wins.

The embedded broker keeps topics in memory only: when it is restarted every
stored position is gone, and so is everything the connector published. The
store remembers where its last position landed, so :meth:`OffsetStore.lost`
can tell that the broker lost it (the partition's end offset fell back below
that record, or the topic is gone) and the runner replays from the beginning.
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
        self._last: TopicPartition | None = None  # where the last stored position landed …
        self._last_offset = -1                     # … and at which offset
        self._watcher: KafkaConsumer | None = None

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
        metadata = future.get(timeout=30)
        self._last, self._last_offset = TopicPartition(metadata.topic, metadata.partition), metadata.offset

    def lost(self, *, timeout_s: float = 5.0) -> bool:
        """True if the broker no longer holds the last position stored here (it was restarted empty).

        Each position is its own one-record batch, so even Tansu's end offset (the last batch's base + 1)
        is past it while the broker keeps it. Raises kafka-python's errors when the broker does not answer.
        """
        if self._last is None:
            return False
        if self._watcher is None:
            self._watcher = KafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False,
                                          client_id="gsp-offsets-watch")
        partitions = self._watcher.partitions_for_topic(self._topic)
        if not partitions or self._last.partition not in partitions:
            return True
        end = self._watcher.end_offsets([self._last], timeout_ms=int(timeout_s * 1000))[self._last]
        return bool(end <= self._last_offset)

    def forget(self) -> None:
        """Nothing is stored any more (the broker lost it): stop checking until the next store."""
        self._last, self._last_offset = None, -1

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
